"""DefaultPreemption: when a pod fits nowhere, find lower-priority pods whose eviction makes room.

Transcribed from upstream's plugins/defaultpreemption/default_preemption.go and
framework/preemption/preemption.go: eligibility (preemptionPolicy, victims of an earlier
preemption still terminating), candidate nodes (only those a filter found Unschedulable, never
UnschedulableAndUnresolvable), a bounded dry run from a random offset, victim selection with
reprieves (PDB-violating victims first, most important first) and the pick among candidates.
"Does the pod fit without these pods?" runs the profile's real PreFilter + Filter on the state
with the pods removed, and the state is always restored. The plugin only decides: the front
evicts the victims (in memory for `berth simulate`, through the API for `berth run`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from berth.framework.plugin import CycleState, PostFilterPlugin, PostFilterResult
from berth.framework.status import SUCCESS, Code, Status, error, unresolvable, unschedulable
from berth.objects.pdb import PDB
from berth.objects.pod import PodInfo
from berth.plugins.registry import register
from berth.state.whatif import what_if

NAME = "DefaultPreemption"

NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREFIX = "preemption: "
INT32_SPAN = 2**31  # upstream adds MaxInt32+1 to each priority before summing

log = logging.getLogger("berth.preemption")


class DefaultPreemptionArgs(BaseModel):
    """Upstream DefaultPreemptionArgs (v1), defaults applied, ValidateDefaultPreemptionArgs."""

    model_config = ConfigDict(extra="forbid")

    minCandidateNodesPercentage: int = 10
    minCandidateNodesAbsolute: int = 100

    @field_validator("minCandidateNodesPercentage")
    @classmethod
    def _percentage_in_range(cls, v: int) -> int:
        if not 0 <= v <= 100:
            raise PydanticCustomError(
                "invalid", "Invalid value: {value}: not in valid range [0, 100]", {"value": v}
            )
        return v

    @field_validator("minCandidateNodesAbsolute")
    @classmethod
    def _absolute_in_range(cls, v: int) -> int:
        if v < 0:
            raise PydanticCustomError(
                "invalid", "Invalid value: {value}: not in valid range [0, inf)", {"value": v}
            )
        return v

    @model_validator(mode="after")
    def _not_both_zero(self) -> DefaultPreemptionArgs:
        if self.minCandidateNodesPercentage == 0 and self.minCandidateNodesAbsolute == 0:
            raise PydanticCustomError(
                "value_error",
                "minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time "
                "as minCandidateNodesAbsolute",
            )
        return self


@dataclass(slots=True)
class Candidate:
    """A node where evicting `victims` (most important first) lets the pod fit."""

    node: str
    victims: list[PodInfo]
    pdb_violations: int


def more_important_key(now: float) -> Callable[[PodInfo], tuple[int, float]]:
    """Sort key for upstream util.MoreImportantPod: higher priority, then earlier start time
    (a pod that has not started counts as starting now, as GetPodStartTime does)."""
    return lambda p: (-p.priority, p.start_time or now)


def filter_pods_with_pdb_violation(
    pods: list[PodInfo], pdbs: list[PDB]
) -> tuple[list[PodInfo], list[PodInfo]]:
    """upstream filterPodsWithPDBViolation: (violating, non-violating), order kept."""
    allowed = [p.disruptions_allowed for p in pdbs]
    violating: list[PodInfo] = []
    non_violating: list[PodInfo] = []
    for pod in pods:
        violated = False
        if pod.labels:
            for i, pdb in enumerate(pdbs):
                if pdb.namespace != pod.namespace or not pdb.selector.matches(pod.labels):
                    continue
                if pod.name in pdb.disrupted_pods:
                    continue  # already processed by the API server: not a violation
                allowed[i] -= 1
                if allowed[i] < 0:
                    violated = True
        (violating if violated else non_violating).append(pod)
    return violating, non_violating


def pick_one_node_for_preemption(candidates: list[Candidate], *, now: float) -> Candidate | None:
    """upstream pickOneNodeForPreemption: fewest PDB violations, lowest highest-victim priority,
    smallest priority sum, fewest victims, latest earliest-start of the highest-priority
    victims, then the first candidate."""
    if not candidates:
        return None

    def earliest_start(c: Candidate) -> float:
        top = c.victims[0].priority
        return min((v.start_time or now) for v in c.victims if v.priority == top)

    score_funcs: list[Callable[[Candidate], float]] = [
        lambda c: -c.pdb_violations,
        lambda c: -c.victims[0].priority,
        lambda c: -sum(v.priority + INT32_SPAN for v in c.victims),
        lambda c: -len(c.victims),
        earliest_start,
    ]
    remaining = candidates
    for f in score_funcs:
        scores = [f(c) for c in remaining]
        best = max(scores)
        remaining = [c for c, s in zip(remaining, scores, strict=True) if s == best]
        if len(remaining) == 1:
            break
    return remaining[0]


class DefaultPreemption(PostFilterPlugin):
    name = NAME
    args: DefaultPreemptionArgs

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args or DefaultPreemptionArgs(), handle=handle)

    # ----- PostFilter --------------------------------------------------------------------------
    def post_filter(
        self, cycle: CycleState, pod: PodInfo, diagnosis: Any
    ) -> tuple[PostFilterResult | None, Status]:
        del cycle  # every dry run starts from a fresh CycleState on the modified state
        result, status = self.preempt(pod, diagnosis)
        if status.message:
            return result, Status(status.code, (PREFIX + status.message,))
        return result, status

    def preempt(self, pod: PodInfo, diagnosis: Any) -> tuple[PostFilterResult | None, Status]:
        """upstream Evaluator.Preempt (without extenders)."""
        state = self.state
        statuses: dict[str, Status] = diagnosis.node_statuses()
        nominated = pod.nominated_node or self.handle.ports.nominator.node_of(pod.key) or ""
        eligible, msg = self.pod_eligible_to_preempt_others(pod, nominated, statuses.get(nominated))
        if not eligible:
            return None, unschedulable(msg)
        all_nodes = state.node_indices()
        potential = [
            int(i)
            for i in all_nodes
            if (s := statuses.get(state.names[i])) is not None and s.code == Code.UNSCHEDULABLE
        ]
        candidates: list[Candidate] = []
        node_status: dict[str, Status] = {}
        errors: list[str] = []
        if potential:
            offset = self.handle.rng.randrange(len(potential))
            wanted = self.num_candidates(len(potential))
            candidates, node_status, errors = self.dry_run(pod, potential, offset, wanted)
        if not candidates:
            if errors:
                return None, error(*errors)
            message = _fit_message(len(all_nodes), node_status)
            return PostFilterResult(nominated_node=""), unschedulable(message)
        best = pick_one_node_for_preemption(candidates, now=time.time())
        assert best is not None
        log.debug(
            "preemption candidate chosen",
            extra={"pod": pod.key, "node": best.node, "victims": len(best.victims)},
        )
        return PostFilterResult(nominated_node=best.node, victims=tuple(best.victims)), SUCCESS

    def pod_eligible_to_preempt_others(
        self, pod: PodInfo, nominated: str, nominated_status: Status | None
    ) -> tuple[bool, str]:
        """upstream PodEligibleToPreemptOthers."""
        if pod.preemption_policy == "Never":
            return False, NOT_ELIGIBLE_NEVER
        if nominated:
            if (
                nominated_status is not None
                and nominated_status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
            ):
                return True, ""  # the nominated node cannot help any more: preempt again
            idx = self.state.index.get(nominated)
            if idx is not None:
                for p in self.state.node_pods[idx].values():
                    if p.priority < pod.priority and p.terminating and p.preempted_by_scheduler:
                        return False, NOT_ELIGIBLE_TERMINATING
        return True, ""

    def num_candidates(self, num_nodes: int) -> int:
        """upstream calculateNumCandidates."""
        n = num_nodes * self.args.minCandidateNodesPercentage // 100
        n = max(n, self.args.minCandidateNodesAbsolute)
        return min(n, num_nodes)

    def dry_run(
        self, pod: PodInfo, potential: list[int], offset: int, wanted: int
    ) -> tuple[list[Candidate], dict[str, Status], list[str]]:
        """upstream DryRunPreemption, sequentially: nodes from `offset` in order, stopping once
        `wanted` candidates are found with at least one that violates no PDB."""
        pdbs = self.pdbs()
        names = self.state.names
        non_violating: list[Candidate] = []
        violating: list[Candidate] = []
        node_status: dict[str, Status] = {}
        errors: list[str] = []
        n = len(potential)
        for i in range(n):
            idx = potential[(offset + i) % n]
            victims, violations, status = self.select_victims_on_node(pod, idx, pdbs)
            if status.ok and victims:
                c = Candidate(node=names[idx], victims=victims, pdb_violations=violations)
                (violating if violations else non_violating).append(c)
                if non_violating and len(non_violating) + len(violating) >= wanted:
                    break
                continue
            if status.ok:
                status = error(f"expected at least one victim pod on node {names[idx]!r}")
            if status.code == Code.ERROR:
                errors.append(status.message)
            node_status[names[idx]] = status
        return non_violating + violating, node_status, errors

    def select_victims_on_node(
        self, pod: PodInfo, node: int, pdbs: list[PDB]
    ) -> tuple[list[PodInfo], int, Status]:
        """upstream SelectVictimsOnNode: remove every lower-priority pod, check the pod fits,
        then reprieve as many as possible (PDB-violating ones first, most important first),
        as a what-if on the state (put back as it was afterwards)."""
        state = self.state
        fwk = self.framework
        potential = [p for p in state.node_pods[node].values() if p.priority < pod.priority]
        if not potential:
            return [], 0, unresolvable(NO_VICTIMS)
        with what_if(state) as hypothesis:
            for p in potential:
                hypothesis.remove(p.key)
            status = fwk.run_filters_with_nominated(pod, node)
            if not status.ok:
                return [], 0, status
            key = more_important_key(time.time())
            potential.sort(key=key)
            violating, non_violating = filter_pods_with_pdb_violation(potential, pdbs)
            victims: list[PodInfo] = []
            violations = 0
            for group, counts in ((violating, True), (non_violating, False)):
                for p in group:
                    hypothesis.restore(p.key)
                    if fwk.run_filters_with_nominated(pod, node).ok:
                        continue
                    hypothesis.remove(p.key)
                    victims.append(p)
                    violations += counts
            if violating and non_violating:
                victims.sort(key=key)
            return victims, violations, SUCCESS

    def pdbs(self) -> list[PDB]:
        return self.ports.disruption_budgets.all()


def _fit_message(num_all_nodes: int, node_status: dict[str, Status]) -> str:
    """upstream FitError.Error() for preemption's own diagnosis: the dry-run statuses, and
    `Preemption is not helpful for scheduling` for every node not tried."""
    histogram: Counter[str] = Counter()
    for status in node_status.values():
        histogram.update(status.reasons)
    absent = num_all_nodes - len(node_status)
    if absent > 0:
        histogram[NOT_HELPFUL] += absent
    reasons = sorted(f"{count} {reason}" for reason, count in histogram.items())
    msg = f"0/{num_all_nodes} nodes are available:"
    if reasons:
        msg += f" {', '.join(reasons)}."
    return msg


register(DefaultPreemption, DefaultPreemptionArgs)
