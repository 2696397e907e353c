"""Node selector requirements and terms as boolean masks over node slots.

NodeAffinity, PodTopologySpread's node inclusion and a PersistentVolume's node affinity all ask
"which nodes does this selector match?"; the answer is read from the label columns of the node
table, one requirement at a time, never by a loop over nodes (upstream component-helpers
nodeaffinity). `nodes=None` answers for every slot, occupied or not.
"""

from __future__ import annotations

import numpy as np

from berth.objects.pod import PodInfo
from berth.objects.selectors import NodeSelectorTerm, Requirement, go_int
from berth.state.cluster import MISSING, BoolArray, ClusterState, IndexArray

NODE_NAME_FIELD = "metadata.name"


def _width(state: ClusterState, nodes: IndexArray | None) -> int:
    return len(state.present) if nodes is None else len(nodes)


def requirement_mask(state: ClusterState, req: Requirement, nodes: IndexArray | None) -> BoolArray:
    """Whether each node's labels satisfy one requirement (In, NotIn, Exists, DoesNotExist, Gt,
    Lt; a missing label satisfies NotIn and DoesNotExist only)."""
    col = state.label_column(req.key)
    codes = col.codes if nodes is None else col.codes.take(nodes)
    op = req.operator
    if op in ("In", "NotIn"):
        hit = col.has(codes, (col.code(v) for v in req.values))
        return hit if op == "In" else ~hit
    if op == "Exists":
        exists: BoolArray = codes != MISSING
        return exists
    if op == "DoesNotExist":
        absent: BoolArray = codes == MISSING
        return absent
    bound = go_int(next(iter(req.values)))
    if bound is None:  # a required term that cannot parse matches no node
        return np.zeros(len(codes), dtype=bool)
    ok_codes = []
    for value, code in col.values.items():
        number = go_int(value)
        if number is None:
            continue
        if (op == "Gt" and number > bound) or (op == "Lt" and number < bound):
            ok_codes.append(code)
    return col.has(codes, ok_codes)


def _name_field_mask(state: ClusterState, req: Requirement, nodes: IndexArray | None) -> BoolArray:
    named = np.zeros(len(state.present), dtype=bool)
    for value in req.values:
        idx = state.index.get(value)
        if idx is not None:
            named[idx] = True
    hit: BoolArray = named if nodes is None else named.take(nodes)
    return hit if req.operator == "In" else ~hit


def term_mask(
    state: ClusterState,
    term: NodeSelectorTerm,
    nodes: IndexArray | None,
    *,
    match_fields: bool = True,
) -> BoolArray:
    """One NodeSelectorTerm: all its requirements hold; an empty term matches no node.

    `match_fields=False` evaluates matchFields against a node whose name is "" (upstream
    volume.CheckNodeAffinity builds its node from the labels alone)."""
    width = _width(state, nodes)
    if not term.expressions and not term.fields:
        return np.zeros(width, dtype=bool)
    mask = np.ones(width, dtype=bool)
    for req in term.expressions:
        mask &= requirement_mask(state, req, nodes)
    for req in term.fields:  # metadata.name In/NotIn, the only field API validation allows
        if match_fields:
            mask &= _name_field_mask(state, req, nodes)
        elif not req.matches({NODE_NAME_FIELD: ""}):
            mask[:] = False
    return mask


def terms_mask(
    state: ClusterState,
    terms: tuple[NodeSelectorTerm, ...],
    nodes: IndexArray | None,
    *,
    match_fields: bool = True,
) -> BoolArray:
    """ORed node selector terms; no (non-empty) term matches no node."""
    mask = np.zeros(_width(state, nodes), dtype=bool)
    for term in terms:
        mask |= term_mask(state, term, nodes, match_fields=match_fields)
    return mask


def pod_node_selector_mask(
    state: ClusterState, pod: PodInfo, nodes: IndexArray | None
) -> BoolArray:
    """The pod's nodeSelector and required node affinity (upstream RequiredNodeAffinity.Match)."""
    mask = np.ones(_width(state, nodes), dtype=bool)
    for key, value in pod.node_selector.items():
        col = state.label_column(key)
        codes = col.codes if nodes is None else col.codes.take(nodes)
        mask &= codes == col.code(value)
    if pod.required_node_terms is not None:
        mask &= terms_mask(state, pod.required_node_terms, nodes)
    return mask
