"""NodeAffinity: nodeSelector and required node affinity as a filter, preferred terms as a score.

Upstream: pkg/scheduler/framework/plugins/nodeaffinity/node_affinity.go and
component-helpers/scheduling/corev1/nodeaffinity. Requirements are evaluated over label columns
(one integer code per node), so a selector costs a few array operations however many nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from berth.framework.events import NODE, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import (
    CycleState,
    FilterPlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
)
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable
from berth.objects.errors import ObjectError
from berth.objects.pod import PodInfo
from berth.objects.selectors import (
    NodeSelectorTerm,
    parse_node_selector_term,
)
from berth.plugins.helpers import default_normalize
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray, IntArray
from berth.state.nodemasks import pod_node_selector_mask, term_mask, terms_mask

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT = "pod affinity terms conflict"


class NodeAffinityArgs(BaseModel):
    """addedAffinity: node affinity the scheduler enforces on every pod of this profile."""

    model_config = ConfigDict(extra="forbid")
    addedAffinity: dict[str, Any] | None = Field(default=None)

    @field_validator("addedAffinity")
    @classmethod
    def _parse(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _added_terms(value)
        return value


def _added_terms(
    raw: dict[str, Any],
) -> tuple[tuple[NodeSelectorTerm, ...] | None, tuple[tuple[int, NodeSelectorTerm], ...]]:
    unknown = set(raw) - {
        "requiredDuringSchedulingIgnoredDuringExecution",
        "preferredDuringSchedulingIgnoredDuringExecution",
    }
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    try:
        required = None
        req = raw.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            required = tuple(
                parse_node_selector_term(
                    t, where=f"nodeSelectorTerms[{i}]", kind="addedAffinity", name="args"
                )
                for i, t in enumerate(req.get("nodeSelectorTerms") or [])
            )
        preferred = []
        for i, w in enumerate(raw.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            weight = w.get("weight")
            if not isinstance(weight, int) or not 1 <= weight <= 100:
                raise ValueError(f"preferred[{i}].weight: must be in the range 1-100")
            preferred.append(
                (
                    weight,
                    parse_node_selector_term(
                        w.get("preference"),
                        where=f"preferred[{i}]",
                        kind="addedAffinity",
                        name="args",
                    ),
                )
            )
    except (ObjectError, AttributeError) as exc:
        raise ValueError(str(exc)) from None
    return required, tuple(preferred)


class NodeAffinity(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),)

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        added = args.addedAffinity if isinstance(args, NodeAffinityArgs) else None
        self.added_required, self.added_preferred = (
            _added_terms(added) if added is not None else (None, ())
        )

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        required = pod.required_node_terms
        if required is None and self.added_required is None and not pod.node_selector:
            return None, SKIP
        if not required:
            return None, SUCCESS
        names: set[str] | None = None
        for term in required:
            term_names: set[str] | None = None
            for req in term.fields:
                if req.key == "metadata.name" and req.operator == "In":
                    term_names = (
                        set(req.values) if term_names is None else term_names & set(req.values)
                    )
            if term_names is None:
                return None, SUCCESS
            names = term_names if names is None else names | term_names
        if names is not None and not names:
            return None, unresolvable(ERR_REASON_CONFLICT)
        if names:
            return PreFilterResult(frozenset(names)), SUCCESS
        return None, SUCCESS

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        mask = pod_node_selector_mask(self.state, pod, nodes)
        if self.added_required is not None:
            mask &= terms_mask(self.state, self.added_required, nodes)
        return mask

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        one = np.array([node], dtype=np.intp)
        if (
            self.added_required is not None
            and not terms_mask(self.state, self.added_required, one)[0]
        ):
            return unresolvable(ERR_REASON_ENFORCED)
        if not pod_node_selector_mask(self.state, pod, one)[0]:
            return unresolvable(ERR_REASON_POD)
        return SUCCESS

    def _preferred(self, pod: PodInfo) -> tuple[tuple[int, NodeSelectorTerm], ...]:
        return pod.preferred_node_terms + self.added_preferred

    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        return SUCCESS if self._preferred(pod) else SKIP

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        total = np.zeros(len(nodes), dtype=np.int64)
        for weight, term in self._preferred(pod):
            if weight:
                total += term_mask(self.state, term, nodes) * weight
        return total

    def normalize(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray, scores: IntArray
    ) -> IntArray:
        return default_normalize(scores, reverse=False)


register(NodeAffinity, NodeAffinityArgs)
