"""Small pieces several plugins share: taint toleration checks and default score normalisation."""

from __future__ import annotations

import numpy as np

from berth.framework.plugin import MAX_NODE_SCORE
from berth.objects.node import Taint
from berth.objects.pod import PodInfo, Toleration
from berth.state.cluster import BoolArray, ClusterState, IndexArray, IntArray

FILTER_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    return any(
        t.tolerates(key=taint.key, value=taint.value, effect=taint.effect) for t in tolerations
    )


def first_untolerated(
    taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...], effects: tuple[str, ...]
) -> Taint | None:
    """upstream FindMatchingUntoleratedTaint: the first `effects` taint nobody tolerates."""
    for taint in taints:
        if taint.effect in effects and not tolerates(tolerations, taint):
            return taint
    return None


def taint_groups_ok(
    state: ClusterState, pod: PodInfo, effects: tuple[str, ...] = FILTER_EFFECTS
) -> BoolArray:
    """Per distinct taint set in the cluster: does the pod tolerate all its `effects` taints?

    Nodes share a handful of taint sets, so this is evaluated once per set, then indexed."""
    return np.fromiter(
        (first_untolerated(ts, pod.tolerations, effects) is None for ts in state.taint_sets),
        dtype=bool,
        count=len(state.taint_sets),
    )


def tolerates_node_taints(state: ClusterState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
    ok: BoolArray = taint_groups_ok(state, pod)[state.taint_group[nodes]]
    return ok


def default_normalize(scores: IntArray, *, reverse: bool) -> IntArray:
    """upstream helper.DefaultNormalizeScore with MaxNodeScore 100."""
    if not len(scores):
        return scores
    max_count = int(scores.max())
    if max_count <= 0:
        if reverse:
            return np.full(len(scores), MAX_NODE_SCORE, dtype=np.int64)
        return scores.astype(np.int64)
    out = (MAX_NODE_SCORE * scores) // max_count
    if reverse:
        out = MAX_NODE_SCORE - out
    return out.astype(np.int64)


def _go_div(a: IntArray, b: IntArray) -> IntArray:
    """Integer division truncating toward zero, as Go's `/` on int64."""
    q: IntArray = np.where(b != 0, np.abs(a) // np.where(b == 0, 1, np.abs(b)), 0)
    return np.where((a < 0) != (b < 0), -q, q)


def broken_linear(shape: list[tuple[int, int]], p: IntArray) -> IntArray:
    """upstream helper.BuildBrokenLinearFunction (plugins/helper/shape_score.go) at each of `p`:
    `shape` is (utilization, score) points in increasing utilization, scores already scaled."""
    out = np.full(p.shape, shape[-1][1], dtype=np.int64)
    done = np.zeros(p.shape, dtype=bool)
    for i, (u, s) in enumerate(shape):
        here = ~done & (p <= u)
        if i == 0:
            out = np.where(here, s, out)
        else:
            pu, ps = shape[i - 1]
            num = (s - ps) * (p - pu)
            val = ps + _go_div(num, np.full(p.shape, u - pu, dtype=np.int64))
            out = np.where(here, val, out)
        done |= here
    return out
