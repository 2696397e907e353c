"""PodTopologySpread: DoNotSchedule constraints as a filter, ScheduleAnyway ones as a score.

Upstream: pkg/scheduler/framework/plugins/podtopologyspread/{common,filtering,scoring}.go.
PreFilter/PreScore count matching pods per topology domain once per decision: NumPy sums by label
code over the state's per-node counter for (namespace, selector), which ClusterState keeps current
as pods come and go (built on first use), so a decision is O(nodes) whatever the group's size;
Filter and Score are array lookups per node.

Default constraints (defaultingType System or List) apply to a pod without constraints of its own,
with the selector built from the Services, ReplicaSets, StatefulSets and ReplicationControllers
that select or own it (the workloads store, upstream helper.DefaultSelector); a pod none of them
selects is not spread by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from berth.framework.events import NODE, POD, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
)
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable, unschedulable
from berth.objects.names import qualified_name_errors
from berth.objects.pod import PodInfo, SpreadConstraint
from berth.objects.selectors import EVERYTHING, LabelSelector
from berth.plugins.helpers import tolerates_node_taints
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, ClusterState, IndexArray, IntArray, LabelColumn
from berth.state.nodemasks import pod_node_selector_mask

NAME = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"

DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
SYSTEM_DEFAULTING = "System"
LIST_DEFAULTING = "List"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"
_MAX_INT32 = 2**31 - 1

_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME
_COUNTER_KEY = "Counter" + NAME


def _constraint(key: str, max_skew: int) -> SpreadConstraint:
    return SpreadConstraint(max_skew, key, SCHEDULE_ANYWAY, EVERYTHING, 1, "Honor", "Ignore")


# plugin.go systemDefaultConstraints; the selector is replaced per pod.
SYSTEM_DEFAULT_CONSTRAINTS = (_constraint(LABEL_HOSTNAME, 3), _constraint(LABEL_ZONE, 5))


# ----- args ------------------------------------------------------------------------------------
def _quote(v: Any) -> str:
    return (
        '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, str)
        else str(v)
    )


class DefaultConstraint(BaseModel):
    """A v1.TopologySpreadConstraint as it appears in PodTopologySpreadArgs.defaultConstraints."""

    model_config = ConfigDict(extra="forbid")

    # Missing fields decode to Go's zero values, so validation reports them as upstream does.
    maxSkew: int = Field(default=0, validate_default=True)
    topologyKey: str = Field(default="", validate_default=True)
    whenUnsatisfiable: str = Field(default="", validate_default=True)
    labelSelector: dict[str, Any] | None = None
    minDomains: int | None = None
    nodeAffinityPolicy: Literal["Honor", "Ignore"] | None = None
    nodeTaintsPolicy: Literal["Honor", "Ignore"] | None = None
    matchLabelKeys: list[str] = Field(default_factory=list)

    @field_validator("maxSkew")
    @classmethod
    def _max_skew(cls, v: int) -> int:
        if v <= 0:
            raise PydanticCustomError(
                "invalid", "Invalid value: {v}: not in valid range (0, inf)", {"v": v}
            )
        return v

    @field_validator("topologyKey")
    @classmethod
    def _topology_key(cls, v: str) -> str:
        if not v:
            raise PydanticCustomError("required", "Required value: can not be empty")
        errs = qualified_name_errors(v)
        if errs:
            raise PydanticCustomError(
                "invalid", "Invalid value: {v}: {msg}", {"v": _quote(v), "msg": errs[0]}
            )
        return v

    @field_validator("whenUnsatisfiable")
    @classmethod
    def _when(cls, v: str) -> str:
        if not v:
            raise PydanticCustomError("required", "Required value: can not be empty")
        if v not in (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY):
            raise PydanticCustomError(
                "not_supported",
                'Unsupported value: {v}: supported values: "DoNotSchedule", "ScheduleAnyway"',
                {"v": _quote(v)},
            )
        return v

    @field_validator("labelSelector")
    @classmethod
    def _no_selector(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            raise PydanticCustomError(
                "forbidden",
                "Forbidden: constraint must not define a selector, as they deduced for each pod",
            )
        return v

    def to_constraint(self) -> SpreadConstraint:
        return SpreadConstraint(
            max_skew=self.maxSkew,
            topology_key=self.topologyKey,
            when_unsatisfiable=self.whenUnsatisfiable,
            selector=EVERYTHING,  # replaced per pod by the default selector
            min_domains=self.minDomains if self.minDomains is not None else 1,
            node_affinity_policy=self.nodeAffinityPolicy or "Honor",
            node_taints_policy=self.nodeTaintsPolicy or "Ignore",
        )


class PodTopologySpreadArgs(BaseModel):
    """Upstream PodTopologySpreadArgs (v1), defaults applied ("" defaulting type -> System)."""

    model_config = ConfigDict(extra="forbid")

    defaultConstraints: list[DefaultConstraint] = Field(default_factory=list)
    defaultingType: str = SYSTEM_DEFAULTING

    @field_validator("defaultingType")
    @classmethod
    def _defaulting_type(cls, v: str) -> str:
        if v == "":
            return SYSTEM_DEFAULTING
        if v not in (SYSTEM_DEFAULTING, LIST_DEFAULTING):
            raise PydanticCustomError(
                "not_supported",
                'Unsupported value: {v}: supported values: "System", "List"',
                {"v": _quote(v)},
            )
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> PodTopologySpreadArgs:
        if self.defaultingType == SYSTEM_DEFAULTING and self.defaultConstraints:
            raise PydanticCustomError(
                "value_error",
                'defaultingType: Invalid value: "System": when .defaultConstraints are not empty',
            )
        seen: set[tuple[str, str]] = set()
        for i, c in enumerate(self.defaultConstraints):
            pair = (c.topologyKey, c.whenUnsatisfiable)
            if pair in seen:
                raise PydanticCustomError(
                    "value_error",
                    "defaultConstraints[{i}]: Duplicate value: {v}",
                    {"i": i, "v": _quote(f"{{{pair[0]}, {pair[1]}}}")},
                )
            seen.add(pair)
        return self


# ----- node inclusion --------------------------------------------------------------------------
class _Counter:
    """Per-decision caches: matching pods per node slot, inclusion masks."""

    def __init__(self, state: ClusterState, pod: PodInfo) -> None:
        self.state = state
        self.pod = pod
        self._counts: dict[LabelSelector, IntArray] = {}
        self._affinity: BoolArray | None = None
        self._taints: BoolArray | None = None

    def pods_per_node(self, selector: LabelSelector) -> IntArray:
        """upstream countPodsMatchSelector for every node slot (same namespace, not terminating;
        an empty selector counts nothing)."""
        cached = self._counts.get(selector)
        if cached is not None:
            return cached
        # A copy: the cycle keeps what it saw even if the state changes under it (preemption).
        out = self.state.matching_pods_per_node(self.pod.namespace, selector).copy()
        self._counts[selector] = out
        return out

    def included(self, c: SpreadConstraint) -> BoolArray:
        """upstream matchNodeInclusionPolicies for every slot."""
        state = self.state
        mask = state.present.copy()
        if c.node_affinity_policy == "Honor":
            if self._affinity is None:
                # slots whose node matches the pod's nodeSelector and required node affinity
                self._affinity = pod_node_selector_mask(state, self.pod, None)
            mask &= self._affinity
        if c.node_taints_policy == "Honor":
            if self._taints is None:
                slots = np.arange(len(state.present), dtype=np.intp)
                self._taints = tolerates_node_taints(state, self.pod, slots)
            mask &= self._taints
        return mask


def _has_all_keys(state: ClusterState, constraints: list[SpreadConstraint]) -> BoolArray:
    """upstream nodeLabelsMatchSpreadConstraints for every slot."""
    mask = state.present.copy()
    for c in constraints:
        mask &= state.label_column(c.topology_key).codes >= 0
    return mask


# ----- cycle state -----------------------------------------------------------------------------
@dataclass
class _FilterConstraint:
    constraint: SpreadConstraint
    column: LabelColumn
    match_num: IntArray  # label code -> matching pods in that domain; last slot (code -1): 0
    min_match: int
    self_match: int


@dataclass
class _PreFilterState:
    constraints: list[_FilterConstraint] = field(default_factory=list)


@dataclass
class _ScoreConstraint:
    constraint: SpreadConstraint
    column: LabelColumn
    weight: float
    domain: IntArray | None = None  # slot -> domain code (missing label -> the "" domain)
    counts: IntArray | None = None  # domain code -> matching pods
    per_node: IntArray | None = None  # hostname: slot -> matching pods on that node


@dataclass
class _PreScoreState:
    constraints: list[_ScoreConstraint] = field(default_factory=list)
    ignored: BoolArray | None = None  # slot -> ignored (filtered node lacking a topology key)


class PodTopologySpread(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        pod = (
            ActionType.ADD
            | ActionType.UPDATE_POD_LABEL
            | ActionType.UPDATE_POD_TOLERATION
            | ActionType.DELETE
        )
        node = (
            ActionType.ADD
            | ActionType.DELETE
            | ActionType.UPDATE_NODE_LABEL
            | ActionType.UPDATE_NODE_TAINT
        )
        return (on(POD, pod), on(NODE, node))

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args if args is not None else PodTopologySpreadArgs(), handle=handle)
        pts_args: PodTopologySpreadArgs = self.args
        self.system_defaulted = pts_args.defaultingType == SYSTEM_DEFAULTING
        self.default_constraints: tuple[SpreadConstraint, ...] = (
            SYSTEM_DEFAULT_CONSTRAINTS
            if self.system_defaulted
            else tuple(c.to_constraint() for c in pts_args.defaultConstraints)
        )

    def _constraints(self, pod: PodInfo, action: str) -> list[SpreadConstraint]:
        """The pod's `action` constraints, else the defaults with the pod's default selector."""
        if pod.spread_constraints:
            return [c for c in pod.spread_constraints if c.when_unsatisfiable == action]
        defaults = [c for c in self.default_constraints if c.when_unsatisfiable == action]
        if not defaults:
            return []
        selector = self.ports.workloads.default_selector(pod)
        if selector.is_everything:  # upstream: selector.Empty()
            return []
        return [replace(c, selector=selector) for c in defaults]

    def _counter(self, cycle: CycleState, pod: PodInfo) -> _Counter:
        """One per cycle, so PreFilter and PreScore share the per-node pod counts."""
        counter: _Counter | None = cycle.read(_COUNTER_KEY)
        if counter is None or counter.pod is not pod or counter.state is not self.state:
            counter = _Counter(self.state, pod)
            cycle.write(_COUNTER_KEY, counter)
        return counter

    # ----- PreFilter / Filter ------------------------------------------------------------------
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        s = self._pre_filter_state(cycle, pod)
        cycle.write(_PRE_FILTER_KEY, s)
        if not s.constraints:
            return None, SKIP
        return None, SUCCESS

    def _pre_filter_state(self, cycle: CycleState, pod: PodInfo) -> _PreFilterState:
        constraints = self._constraints(pod, DO_NOT_SCHEDULE)
        s = _PreFilterState()
        if not constraints:
            return s
        state = self.state
        counter = self._counter(cycle, pod)
        has_all = _has_all_keys(state, constraints)
        for c in constraints:
            col = state.label_column(c.topology_key)
            eligible = np.flatnonzero(has_all & counter.included(c))
            codes = col.codes.take(eligible)
            per_node = counter.pods_per_node(c.selector).take(eligible)
            # One extra trailing slot: label code -1 (no label) reads it and finds 0.
            size = len(col.values) + 1
            # eligible nodes have every topology key, so codes >= 0 here
            match_num = np.bincount(codes, weights=per_node, minlength=size).astype(np.int64)
            registered = np.bincount(codes, minlength=size) > 0  # a domain counts at 0 pods too
            domains = int(registered.sum())
            min_match = int(match_num[registered].min()) if domains else _MAX_INT32
            if domains < c.min_domains:
                min_match = 0
            self_match = 1 if c.selector.matches(pod.labels) else 0
            s.constraints.append(_FilterConstraint(c, col, match_num, min_match, self_match))
        return s

    def _state_for_filter(self, cycle: CycleState, pod: PodInfo) -> _PreFilterState:
        s: _PreFilterState | None = cycle.read(_PRE_FILTER_KEY)
        if s is None:
            s = self._pre_filter_state(cycle, pod)
            cycle.write(_PRE_FILTER_KEY, s)
        return s

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        s = self._state_for_filter(cycle, pod)
        ok = np.ones(len(nodes), dtype=bool)
        for fc in s.constraints:
            codes = fc.column.codes[nodes]
            has = codes >= 0
            skew = fc.match_num[codes] + fc.self_match - fc.min_match
            ok &= has & (skew <= fc.constraint.max_skew)
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        s = self._state_for_filter(cycle, pod)
        for fc in s.constraints:
            code = int(fc.column.codes[node])
            if code < 0:
                return unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH)
            skew = int(fc.match_num[code]) + fc.self_match - fc.min_match
            if skew > fc.constraint.max_skew:
                return unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        return SUCCESS

    # ----- PreScore / Score --------------------------------------------------------------------
    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        state = self.state
        if state.num_nodes == 0:
            return SKIP
        constraints = self._constraints(pod, SCHEDULE_ANYWAY)
        if not constraints:
            return SKIP
        # Only non-system-default rules require every topology label on a node, so nodes without
        # a zone label still get hostname spreading.
        require_all = bool(pod.spread_constraints) or not self.system_defaulted
        counter = self._counter(cycle, pod)
        has_all = _has_all_keys(state, constraints)
        ignored = np.zeros(len(state.present), dtype=bool)
        if require_all:
            ignored[nodes] = ~has_all[nodes]
        kept = nodes[~ignored[nodes]]
        eligible_base = has_all if require_all else state.present
        s = _PreScoreState(ignored=ignored)
        for c in constraints:
            col = state.label_column(c.topology_key)
            if c.topology_key == LABEL_HOSTNAME:
                size = len(nodes) - int(ignored[nodes].sum())
                s.constraints.append(
                    _ScoreConstraint(
                        c, col, math.log(size + 2), per_node=counter.pods_per_node(c.selector)
                    )
                )
                continue
            # A node without the label belongs to the "" domain (only reachable with system
            # defaults, where labels are not required).
            empty = col.values.get("", len(col.values))
            domain = np.where(col.codes >= 0, col.codes, empty).astype(np.int64)
            registered = np.zeros(len(col.values) + 1, dtype=bool)
            registered[domain[kept]] = True
            eligible = eligible_base & counter.included(c) & registered[domain]
            counts = np.bincount(
                domain[eligible],
                weights=counter.pods_per_node(c.selector)[eligible],
                minlength=len(col.values) + 1,
            ).astype(np.int64)
            weight = math.log(int(registered.sum()) + 2)
            s.constraints.append(_ScoreConstraint(c, col, weight, domain=domain, counts=counts))
        cycle.write(_PRE_SCORE_KEY, s)
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        s: _PreScoreState | None = cycle.read(_PRE_SCORE_KEY)
        if s is None or s.ignored is None:
            return np.zeros(len(nodes), dtype=np.int64)
        total = np.zeros(len(nodes), dtype=np.float64)
        for sc in s.constraints:
            has = sc.column.codes[nodes] >= 0
            if sc.per_node is not None:
                cnt = sc.per_node[nodes]
            else:
                assert sc.domain is not None and sc.counts is not None
                cnt = sc.counts[sc.domain[nodes]]
            # scoreForCount: float64(cnt)*weight + float64(maxSkew-1), summed per constraint.
            term = cnt.astype(np.float64) * sc.weight + float(sc.constraint.max_skew - 1)
            total = total + np.where(has, term, 0.0)
        # int64(math.Round(score)): half away from zero; total - trunc(total) is exact.
        whole = np.trunc(total)
        raw: IntArray = (whole + np.sign(total) * (np.abs(total - whole) >= 0.5)).astype(np.int64)
        raw[s.ignored[nodes]] = 0
        return raw

    def normalize(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray, scores: IntArray
    ) -> IntArray:
        s: _PreScoreState | None = cycle.read(_PRE_SCORE_KEY)
        if s is None or s.ignored is None or not len(scores):
            return scores
        valid = ~s.ignored[nodes]
        out = np.zeros(len(scores), dtype=np.int64)
        if not valid.any():
            return out
        lo = int(scores[valid].min())
        hi = max(0, int(scores[valid].max()))
        if hi == 0:
            out[valid] = MAX_NODE_SCORE
        else:
            out[valid] = MAX_NODE_SCORE * (hi + lo - scores[valid]) // hi
        return out


register(PodTopologySpread, PodTopologySpreadArgs)
