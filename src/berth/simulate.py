"""`berth simulate`: schedule the pending pods of a cluster dump offline and explain each decision.

Bound pods are loaded into the state; pending pods whose schedulerName matches a profile are
taken in queue order (priority descending, then creation time) and each placement is assumed,
so later pods see earlier ones, exactly as the live scheduler's cache would. When a pod fits
nowhere and DefaultPreemption nominates a node, the victims vanish from the state at once (there
is no graceful termination offline) and the pod is placed on its nominated node right away.

Gang scheduling (a profile enabling Coscheduling): pending pods are ordered by priority, then
their PodGroup's creation time and name, so a group's pods are decided one after another. A pod
held at Permit (its group is short of minMember) keeps its room and its decision is reported
once the group is complete (then all are placed) or rejected (a member fit nowhere: the waiting
members are released and reported pending with Coscheduling's reason). Offline no time passes,
so Permit timeouts never fire; instead, when the queue ends with a group still short of
minMember, its held pods are released and reported pending.

Scheduling gates (PreEnqueue, SchedulingGates): a pending pod a PreEnqueue plugin rejects is not
tried and takes no room; it is reported pending, in queue order, with `"gated": true`, no
per-node reasons and the message `SchedulingGates: waiting for scheduling gates: [a b]`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from berth.config.loader import Config
from berth.dump import Dump
from berth.engine import Engine, scheduler_name
from berth.feed import Feed, FeedListener
from berth.framework.algorithm import ScheduleResult
from berth.framework.cycle import (
    BindFailed,
    BindingOutcome,
    Error,
    Nominated,
    PermitRejected,
    Unschedulable,
    Waiting,
)
from berth.framework.ports import Ports
from berth.framework.status import SUCCESS, Code, Status
from berth.objects import ObjectError
from berth.objects.pod import PodInfo
from berth.plugins.coscheduling import NAME as COSCHEDULING
from berth.plugins.coscheduling import group_key, min_member
from berth.snapshot import feed_dump, pod_key

# Which pods' decisions name every rejected node's reasons: all, only the pods left pending
# (placed pods' reasons were 90% of `-o json` at 2,000 nodes), or none (the message only).
Reasons = Literal["all", "pending", "none"]


def parse_scores(text: str) -> int | None:
    """`--scores`: "none" (0), "top:N" (N) or "all" (None); raises ValueError."""
    if text == "all":
        return None
    if text == "none":
        return 0
    kind, _, count = text.partition(":")
    if kind == "top" and count.isdigit() and int(count) > 0:
        return int(count)
    raise ValueError(f"{text!r}: expected none, top:N (N > 0) or all")


@dataclass
class Decision:
    pod: str
    node: str | None
    reasons: dict[str, list[str]] = field(default_factory=dict)
    # The chosen node's total and, by `scores`, the best nodes' totals (the chosen one first).
    score: int | None = None
    scores: dict[str, int] = field(default_factory=dict)
    plugin_scores: dict[str, dict[str, int]] = field(default_factory=dict)
    message: str = ""
    error: str = ""
    preempted: list[str] = field(default_factory=list)
    nominated_node: str = ""
    gated: bool = False  # held by a PreEnqueue plugin (scheduling gates): never tried

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pod": self.pod, "node": self.node}
        if self.node is not None:
            out["score"] = self.score
        out.update(reasons=self.reasons, scores=self.scores, message=self.message)
        if self.plugin_scores:
            out["pluginScores"] = self.plugin_scores
        if self.nominated_node:
            out["nominatedNode"] = self.nominated_node
            out["preempted"] = self.preempted
        if self.gated:
            out["gated"] = True
        if self.error:
            out["error"] = self.error
        return out


class Simulation:
    """Loads a dump into an Engine and schedules its pending pods one by one."""

    def __init__(
        self,
        *,
        dump: Dump,
        config: Config,
        seed: int | None = None,
        top_scores: int | None = None,
        reasons: Reasons = "all",
    ) -> None:
        """`top_scores`: how many nodes' scores each decision keeps (None: all, 0: only the
        chosen node's total); `reasons`: whose decisions keep each rejected node's reasons
        (the table prints only the message)."""
        self.dump = dump
        self.top_scores = top_scores
        self.reasons = reasons
        self._sampled = False
        self.engine = Engine(config=config, ports=Ports(binder=self._bind), seed=seed)
        self.load_errors: list[str] = list(dump.malformed)
        # (pod key, the parsed pod or None when malformed, the problem) in queue order
        self.pending: list[tuple[str, PodInfo | None, str]] = []
        # Decisions of pods held at Permit, reported when their wait ends.
        self._held: dict[str, tuple[Decision, Waiting]] = {}
        # Pending pods of the dump that name no profile, by schedulerName: left alone, as
        # `berth run` leaves them, and counted so that a dump of default-scheduler pods does not
        # read as an empty cluster.
        self.others: Counter[str] = Counter()
        self._load()

    async def _bind(self, pod: PodInfo, node_name: str) -> Status:
        self.engine.state.add_pod(pod, node_name)
        return SUCCESS

    def _load(self) -> None:
        schedules, others = self.engine.schedules, self.others

        def responsible(raw: dict[str, Any]) -> bool:
            if schedules(raw):
                return True
            others[scheduler_name(raw)] += 1
            return False

        feed = Feed(
            state=self.engine.state,
            ports=self.engine.ports,
            responsible=responsible,
            listener=_Loading(self),
        )
        loading = feed.listener
        feed_dump(
            feed,
            self.dump,
            refused=lambda raw, exc: loading.malformed(
                "Pod", raw, exc, pending=self._would_be_pending(raw)
            ),
        )
        queue_order = self.engine.queue_order

        def order(item: tuple[str, PodInfo | None, str]) -> tuple[Any, ...]:
            key, pod, _ = item
            if pod is None:
                return (0, 0.0, key)
            # The engine's QueueSort, with the creation time as the time queued.
            return (*queue_order(pod, pod.created), pod.key)

        self.pending.sort(key=order)
        self.engine.prepare()  # the plugins' tables over the loaded state, as `berth run` does

    def _would_be_pending(self, raw: dict[str, Any]) -> bool:
        """Whether a pod the API server refused would have been one of this run's pending pods
        (then it is reported as a decision, not only as a load error)."""
        spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
        status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        assert isinstance(spec, dict) and isinstance(status, dict) and isinstance(meta, dict)
        return (
            not spec.get("nodeName")
            and status.get("phase") not in ("Succeeded", "Failed")
            and not meta.get("deletionTimestamp")
            and self.engine.schedules(raw)
        )

    async def _settle(self) -> list[Decision]:
        """Finish the pods whose wait at Permit ended: bind the allowed, release the rejected
        (whose Unreserve may reject more, hence the loop)."""
        out: list[Decision] = []
        waiting = self.engine.ports.waiting_pods
        while True:
            ended = [w for w in waiting if w.done]
            if not ended:
                return out
            for w in ended:
                decision, reserved = self._held.pop(w.key)
                _bound(decision, await self.engine.bind(reserved))
                out.append(decision)

    async def _release_incomplete(self) -> list[Decision]:
        """The queue is over: groups still short of minMember give their room back."""
        for w in self.engine.handle.ports.waiting_pods:
            key = group_key(w.pod)
            pg = self.engine.ports.pod_groups.get(key) or {}
            placed = sum(
                1 for o in self.engine.handle.ports.waiting_pods if group_key(o.pod) == key
            )
            w.reject(
                COSCHEDULING,
                f"PodGroup {key} did not reach minMember {min_member(pg)} ({placed} pods could "
                "be placed) before the simulation's queue ended",
            )
        return await self._settle()

    def sample_metrics(self) -> list[str]:
        """Take the one sample of every metric source the run scores with (node annotations
        work offline; a source that cannot be reached drops out of the score, as in the live
        scheduler). Returns a warning per source that was down; `run` calls it if needed."""
        if self._sampled:
            return []
        self._sampled = True
        return [
            f"metric source {name!r} unavailable; scored without it"
            for name in self.engine.sample_metrics()
        ]

    def run(self) -> Iterator[Decision]:
        self.sample_metrics()
        loop = asyncio.new_event_loop()
        try:
            for key, pod, problem in self.pending:
                if pod is None:
                    yield Decision(pod=key, node=None, error=problem, message=problem)
                    continue
                gate = self.engine.pre_enqueue(pod)
                if not gate.ok:
                    # Gated (upstream keeps it out of the active queue): not tried at all.
                    message = f"{gate.plugin}: {gate.message or gate.code}"
                    yield Decision(pod=pod.key, node=None, message=message, gated=True)
                    continue
                decision = loop.run_until_complete(self._decide(pod))
                if pod.key not in self._held:
                    yield decision
                if self._held:
                    yield from loop.run_until_complete(self._settle())
            if self._held:
                yield from loop.run_until_complete(self._release_incomplete())
        finally:
            loop.close()

    async def _decide(self, pod: PodInfo) -> Decision:
        engine = self.engine
        preempted: list[str] = []
        placed_reasons = self.reasons == "all"
        outcome = engine.schedule(pod, explain_scores=True, explain_reasons=placed_reasons)
        if isinstance(outcome, Nominated):
            # Offline, victims vanish at once: evict them and place the pod on its node.
            for victim in outcome.victims:
                engine.state.remove_pod(victim.key)
                preempted.append(victim.key)
            outcome = engine.schedule(pod, explain_scores=True, explain_reasons=placed_reasons)
        nominated = pod.nominated_node if preempted else ""
        if isinstance(outcome, Unschedulable):
            fit = outcome.fit
            return Decision(
                pod=pod.key,
                node=None,
                reasons=_reasons(fit.diagnosis.node_statuses()) if self.reasons != "none" else {},
                message=fit.message,
                preempted=preempted,
                nominated_node=nominated,
            )
        if outcome.result is None:  # a plugin broke its contract (explained runs keep results)
            assert isinstance(outcome, Error)
            message = outcome.status.message
            return Decision(pod=pod.key, node=None, error=message, message=message)
        decision = self._decided(pod, outcome.result, preempted, nominated)
        if isinstance(outcome, Error):  # Reserve or Permit rejected the node
            _failed(decision, outcome.status)
        elif isinstance(outcome, Waiting):
            # Held at Permit: it keeps its room; _settle reports it when the wait ends.
            self._held[pod.key] = (decision, outcome)
        else:
            _bound(decision, await engine.bind(outcome))
        return decision

    def _decided(
        self, pod: PodInfo, result: ScheduleResult, preempted: list[str], nominated: str
    ) -> Decision:
        """A placed pod's decision with what the run reports of it, named now (later pods
        change the state its slots and reasons are read from)."""
        top = self.top_scores
        score, scores = _chosen_and_best(result, top)
        return Decision(
            pod=pod.key,
            node=result.node,
            reasons=_reasons(result.diagnosis.walked_statuses()) if self.reasons == "all" else {},
            score=score,
            scores=scores,
            plugin_scores={}
            if top == 0
            else result.plugin_scores_of(None if top is None else scores),
            preempted=preempted,
            nominated_node=nominated,
        )


def _reasons(statuses: dict[str, Status]) -> dict[str, list[str]]:
    return {n: list(s.reasons) for n, s in statuses.items()}


def _chosen_and_best(result: ScheduleResult, top: int | None) -> tuple[int | None, dict[str, int]]:
    """The chosen node's total, and the totals of the `top` best scored nodes (None: all),
    the chosen node first, then by total (highest first) and name."""
    if result.scored is None or result.totals is None or not len(result.scored):
        return None, {}
    names = result.diagnosis.state.names
    scored, totals = result.scored, result.totals
    chosen = np.flatnonzero(scored == result.diagnosis.state.index[result.node])
    score = int(totals[chosen[0]]) if len(chosen) else None
    if top == 0:
        return score, {}
    if top is None:
        return score, result.scores
    # The `top` highest totals, and every node tied with the lowest of them (for the names).
    if top < len(totals):
        floor = np.partition(totals, len(totals) - top)[len(totals) - top]
        slots = np.flatnonzero(totals >= floor)
    else:
        slots = np.arange(len(totals))
    ranked = sorted((-int(totals[k]), names[int(scored[k])]) for k in slots.tolist())
    best: dict[str, int] = {}
    if score is not None:
        best[result.node] = score
    for negative, name in ranked:
        if len(best) >= top:
            break
        best.setdefault(name, -negative)
    return score, best


def _failed(decision: Decision, status: Status) -> None:
    decision.node = None
    decision.message = f"{status.plugin}: {status.message or status.code}"
    if status.code == Code.ERROR:
        decision.error = decision.message


def _bound(decision: Decision, outcome: BindingOutcome) -> None:
    """The decision as the binding cycle ended it (the in-memory binder records a placement)."""
    if isinstance(outcome, PermitRejected | BindFailed):
        _failed(decision, outcome.status)


class _Loading(FeedListener):
    """The dump's pending pods, and what could not be loaded."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation

    def pending(self, pod: PodInfo, *, added: bool) -> None:
        self.simulation.pending.append((pod.key, pod, ""))

    def malformed(
        self, kind: str, raw: dict[str, Any], error: ObjectError, *, pending: bool = False
    ) -> None:
        if pending:
            self.simulation.pending.append((pod_key(raw), None, str(error)))
        else:
            self.simulation.load_errors.append(str(error))


def others_note(others: Counter[str], profiles: Iterable[str]) -> str | None:
    """One line for the pending pods a simulation left alone, or None when there are none."""
    total = sum(others.values())
    if not total:
        return None
    names = ", ".join(f"{name} {count}" for name, count in sorted(others.items()))
    pods = "pod names" if total == 1 else "pods name"
    return (
        f"{total} pending {pods} another scheduler ({names}), not simulated; this "
        f"configuration's profiles: {', '.join(profiles)}"
    )


def to_json_line(decision: Decision) -> bytes:
    """One decision as a JSON line (without the newline)."""
    return orjson.dumps(decision.to_json())


def format_table(decisions: list[Decision]) -> str:
    """A table for people: pod, node, best score or why it is pending."""
    rows = [("POD", "NODE", "SCORE", "WHY")]
    for d in decisions:
        if d.node:
            score = d.score
            why = f"preempted {', '.join(d.preempted)}" if d.preempted else ""
            rows.append((d.pod, d.node, "" if score is None else str(score), why))
        else:
            rows.append((d.pod, "<pending>", "", d.error or d.message))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        lines.append(
            "  ".join(r[i].ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else "")
        )
    placed = sum(1 for d in decisions if d.node)
    lines.append("")
    lines.append(f"{placed}/{len(decisions)} pending pods placed")
    return "\n".join(line.rstrip() for line in lines)
