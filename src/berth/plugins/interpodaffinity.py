"""InterPodAffinity: required pod (anti-)affinity as a filter, preferred terms as a score.

Upstream: pkg/scheduler/framework/plugins/interpodaffinity/{filtering,scoring}.go. PreFilter and
PreScore count matches per (topologyKey, value), as upstream does, but only over the pods that
can match: the state's label indexes give the pods carrying a label a selector requires, and the
placed pods whose terms require a label the incoming pod carries. Filter and Score then map every
node's label code to those counts with NumPy. The trap this module avoids: matching every pod of
a namespace (or every pod with affinity) against a selector on every decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator
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
from berth.objects.pod import AffinityTerm, PodInfo
from berth.objects.selectors import LabelSelector
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, ClusterState, IndexArray, IntArray, LabelColumn

NAME = "InterPodAffinity"
ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH = (
    "node(s) didn't satisfy existing pods anti-affinity rules"
)
ERR_REASON_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod anti-affinity rules"

DEFAULT_HARD_POD_AFFINITY_WEIGHT = 1
MIN_HARD_POD_AFFINITY_WEIGHT = 0
MAX_HARD_POD_AFFINITY_WEIGHT = 100

_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME

TopologyPair = tuple[str, str]


class InterPodAffinityArgs(BaseModel):
    """Upstream InterPodAffinityArgs (v1), defaults applied."""

    model_config = ConfigDict(extra="forbid")

    hardPodAffinityWeight: int = DEFAULT_HARD_POD_AFFINITY_WEIGHT
    ignorePreferredTermsOfExistingPods: bool = False

    @field_validator("hardPodAffinityWeight")
    @classmethod
    def _weight_in_range(cls, v: int) -> int:
        if not MIN_HARD_POD_AFFINITY_WEIGHT <= v <= MAX_HARD_POD_AFFINITY_WEIGHT:
            raise PydanticCustomError(
                "invalid",
                "Invalid value: {value}: not in valid range [0, 100]",
                {"value": v},
            )
        return v


@dataclass(frozen=True, slots=True)
class _IncomingTerm:
    """One of the incoming pod's terms with its namespaceSelector merged into `namespaces`.

    Upstream (mergeAffinityTermNamespacesIfNotEmpty) lists the namespaces whose labels match the
    selector and adds them; an empty `{}` selector is left as is and so matches every namespace.
    """

    selector: LabelSelector
    namespaces: frozenset[str]
    all_namespaces: bool
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo) -> bool:
        return (self.all_namespaces or pod.namespace in self.namespaces) and self.selector.matches(
            pod.labels
        )


def _merge_term(term: AffinityTerm, state: ClusterState, weight: int = 0) -> _IncomingTerm:
    sel = term.namespace_selector
    namespaces = term.namespaces
    everything = False
    if sel is not None and not sel.matches_nothing:
        if sel.is_everything:
            everything = True
        else:
            namespaces = namespaces | frozenset(
                ns for ns, labels in state.namespace_labels.items() if sel.matches(labels)
            )
    return _IncomingTerm(term.selector, namespaces, everything, term.topology_key, weight)


def _slot(state: ClusterState, key: str) -> int | None:
    """The node slot of the placed pod `key`, or None when its node is unknown to the state."""
    node_name = state.pod_node.get(key)
    return None if node_name is None else state.index.get(node_name)


def _placed_pods(state: ClusterState, pods: Iterable[PodInfo]) -> Iterator[tuple[PodInfo, int]]:
    """(pod, node slot) for those of `pods` that sit on a node the state knows."""
    for p in pods:
        idx = _slot(state, p.key)
        if idx is not None:
            yield p, idx


def _candidate_pods(
    state: ClusterState, terms: Iterable[_IncomingTerm]
) -> Iterable[tuple[str, PodInfo]]:
    """(key, pod) for existing pods that may match at least one of `terms` (a superset): by
    namespace, then through the state's label index when a selector requires a label."""
    found: dict[str, PodInfo] = {}
    for t in terms:
        if t.selector.matches_nothing:
            continue
        namespaces = list(state.pods_by_namespace) if t.all_namespaces else t.namespaces
        for ns in namespaces:
            for p in state.pods_selected_in(ns, t.selector):
                found[p.key] = p
    return found.items()


def _lookup(state: ClusterState, key: str, values: dict[str, int]) -> tuple[LabelColumn, IntArray]:
    """The label column of `key` and a table: code + 1 -> the count of that value (0: missing)."""
    col = state.label_column(key)
    table = np.zeros(len(col.values) + 1, dtype=np.int64)
    for value, count in values.items():
        code = col.values.get(value)
        if code is not None:
            table[code + 1] = count
    return col, table


def _by_key(counts: dict[TopologyPair, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (k, v), c in counts.items():
        out.setdefault(k, {})[v] = c
    return out


@dataclass
class _PreFilterState:
    affinity_terms: tuple[_IncomingTerm, ...] = ()
    anti_affinity_terms: tuple[_IncomingTerm, ...] = ()
    affinity_counts: dict[TopologyPair, int] = field(default_factory=dict)
    anti_affinity_counts: dict[TopologyPair, int] = field(default_factory=dict)
    existing_anti_affinity_counts: dict[TopologyPair, int] = field(default_factory=dict)
    pod_matches_own_terms: bool = False
    # key -> (label column, code+1 -> count), built once for the vectorised Filter.
    tables: dict[tuple[str, str], tuple[LabelColumn, IntArray]] = field(default_factory=dict)


@dataclass
class _PreScoreState:
    topology_score: dict[str, dict[str, int]] = field(default_factory=dict)


def _add(counts: dict[TopologyPair, int], node_labels: dict[str, str], key: str, n: int) -> None:
    value = node_labels.get(key)
    if value is None:
        return
    pair = (key, value)
    total = counts.get(pair, 0) + n
    if total == 0:
        counts.pop(pair, None)  # upstream deletes pairs that drop to zero
    else:
        counts[pair] = total


class InterPodAffinity(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (
            on(POD, ActionType.ADD | ActionType.UPDATE_POD_LABEL | ActionType.DELETE),
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),
        )

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args if args is not None else InterPodAffinityArgs(), handle=handle)
        self.ipa_args: InterPodAffinityArgs = self.args

    # ----- PreFilter ---------------------------------------------------------------------------
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        s = self._pre_filter_state(pod)
        cycle.write(_PRE_FILTER_KEY, s)
        if (
            not s.existing_anti_affinity_counts
            and not s.affinity_terms
            and not s.anti_affinity_terms
        ):
            return None, SKIP
        return None, SUCCESS

    def _pre_filter_state(self, pod: PodInfo) -> _PreFilterState:
        state = self.state
        s = _PreFilterState(
            affinity_terms=tuple(_merge_term(t, state) for t in pod.required_affinity),
            anti_affinity_terms=tuple(_merge_term(t, state) for t in pod.required_anti_affinity),
        )
        ns_labels = state.namespace_labels
        # Existing pods' required anti-affinity against the incoming pod (the symmetric check).
        for existing, idx in _placed_pods(state, state.anti_affinity_holders(pod)):
            labels = state.node(idx).labels
            for et in existing.required_anti_affinity:
                if et.matches_pod(pod, ns_labels):
                    _add(s.existing_anti_affinity_counts, labels, et.topology_key, 1)
        # The incoming pod's required terms against existing pods.
        if s.affinity_terms or s.anti_affinity_terms:
            for key, existing in _candidate_pods(state, s.affinity_terms + s.anti_affinity_terms):
                matches_all = bool(s.affinity_terms) and all(
                    t.matches(existing) for t in s.affinity_terms
                )
                anti = [t for t in s.anti_affinity_terms if t.matches(existing)]
                if not matches_all and not anti:
                    continue  # selectors first: most pods match nothing, skip the node lookup
                slot = _slot(state, key)
                if slot is None:
                    continue
                labels = state.node(slot).labels
                if matches_all:
                    for t in s.affinity_terms:
                        _add(s.affinity_counts, labels, t.topology_key, 1)
                for t in anti:
                    _add(s.anti_affinity_counts, labels, t.topology_key, 1)
        s.pod_matches_own_terms = bool(s.affinity_terms) and all(
            t.matches(pod) for t in s.affinity_terms
        )
        for kind, counts in (
            ("affinity", s.affinity_counts),
            ("anti", s.anti_affinity_counts),
            ("existing", s.existing_anti_affinity_counts),
        ):
            for key, values in _by_key(counts).items():
                s.tables[(kind, key)] = _lookup(state, key, values)
        return s

    # ----- Filter ------------------------------------------------------------------------------
    def _checks(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray
    ) -> tuple[BoolArray, BoolArray, BoolArray]:
        """Per node: affinity satisfied, anti-affinity satisfied, existing anti-affinity ok."""
        s: _PreFilterState | None = cycle.read(_PRE_FILTER_KEY)
        if s is None:
            s = self._pre_filter_state(pod)
            cycle.write(_PRE_FILTER_KEY, s)
        state = self.state
        n = len(nodes)
        affinity_ok = np.ones(n, dtype=bool)
        if s.affinity_terms:
            has_keys = np.ones(n, dtype=bool)
            pods_exist = np.ones(n, dtype=bool)
            for t in s.affinity_terms:
                codes = state.label_column(t.topology_key).codes[nodes]
                has_keys &= codes >= 0
                entry = s.tables.get(("affinity", t.topology_key))
                if entry is None:
                    pods_exist[:] = False
                else:
                    pods_exist &= entry[1][codes + 1] > 0
            # The first pod of a group whose affinity points at itself may go anywhere that has
            # the topology labels, as long as no pod anywhere matched all terms.
            first_pod = not s.affinity_counts and s.pod_matches_own_terms
            affinity_ok = has_keys & (pods_exist | first_pod)
        anti_ok = np.ones(n, dtype=bool)
        if s.anti_affinity_counts:
            for t in s.anti_affinity_terms:
                entry = s.tables.get(("anti", t.topology_key))
                if entry is not None:
                    codes = entry[0].codes[nodes]
                    anti_ok &= ~((codes >= 0) & (entry[1][codes + 1] > 0))
        existing_ok = np.ones(n, dtype=bool)
        for (kind, _key), (col, table) in s.tables.items():
            if kind == "existing":
                codes = col.codes[nodes]
                existing_ok &= ~((codes >= 0) & (table[codes + 1] > 0))
        return affinity_ok, anti_ok, existing_ok

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        affinity_ok, anti_ok, existing_ok = self._checks(cycle, pod, nodes)
        ok: BoolArray = affinity_ok & anti_ok & existing_ok
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        affinity_ok, anti_ok, existing_ok = self._checks(
            cycle, pod, np.array([node], dtype=np.intp)
        )
        if not affinity_ok[0]:
            return unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)
        if not anti_ok[0]:
            return unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH)
        if not existing_ok[0]:
            return unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH)
        return SUCCESS

    # ----- Score -------------------------------------------------------------------------------
    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        if not len(nodes):
            return SKIP
        has_constraints = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if self.ipa_args.ignorePreferredTermsOfExistingPods and not has_constraints:
            return SKIP
        state = self.state
        ns_labels = state.namespace_labels
        score: dict[TopologyPair, int] = {}
        touched = False

        def process(term_key: str, node_labels: dict[str, str], weight: int) -> None:
            nonlocal touched
            value = node_labels.get(term_key)
            if value is None:
                return
            touched = True  # upstream creates the entry even when the weights cancel out
            pair = (term_key, value)
            score[pair] = score.get(pair, 0) + weight

        # The incoming pod's preferred terms against every existing pod they can match.
        affinity = [_merge_term(t, state, w) for w, t in pod.preferred_affinity]
        anti = [_merge_term(t, state, w) for w, t in pod.preferred_anti_affinity]
        for key, existing in _candidate_pods(state, affinity + anti):
            hits = [(t, t.weight) for t in affinity if t.matches(existing)]
            hits += [(t, -t.weight) for t in anti if t.matches(existing)]
            if not hits:
                continue
            idx = _slot(state, key)
            if idx is None:
                continue
            labels = state.node(idx).labels
            for t, w in hits:
                process(t.topology_key, labels, w)
        # Existing pods' terms against the incoming pod (only pods with affinity can contribute).
        hard_weight = self.ipa_args.hardPodAffinityWeight
        for existing, idx in _placed_pods(state, state.affinity_holders(pod)):
            labels = state.node(idx).labels
            if hard_weight > 0:
                for et in existing.required_affinity:
                    if et.matches_pod(pod, ns_labels):
                        process(et.topology_key, labels, hard_weight)
            for w, et in existing.preferred_affinity:
                if et.matches_pod(pod, ns_labels):
                    process(et.topology_key, labels, w)
            for w, et in existing.preferred_anti_affinity:
                if et.matches_pod(pod, ns_labels):
                    process(et.topology_key, labels, -w)
        if not touched:
            return SKIP
        cycle.write(_PRE_SCORE_KEY, _PreScoreState(topology_score=_by_key(score)))
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        s: _PreScoreState | None = cycle.read(_PRE_SCORE_KEY)
        out = np.zeros(len(nodes), dtype=np.int64)
        if s is None:
            return out
        for key, values in s.topology_score.items():
            col, table = _lookup(self.state, key, values)
            codes = col.codes[nodes]
            out += np.where(codes >= 0, table[codes + 1], 0)
        return out

    def normalize(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray, scores: IntArray
    ) -> IntArray:
        s: _PreScoreState | None = cycle.read(_PRE_SCORE_KEY)
        if s is None or not s.topology_score or not len(scores):
            return scores
        lo = int(scores.min())
        diff = int(scores.max()) - lo
        if diff <= 0:
            return np.zeros(len(scores), dtype=np.int64)
        # int64(100.0 * (float64(s - min) / float64(diff))): truncation toward zero.
        frac = (scores - lo).astype(np.float64) / float(diff)
        out: IntArray = np.trunc(float(MAX_NODE_SCORE) * frac).astype(np.int64)
        return out


register(InterPodAffinity, InterPodAffinityArgs)
