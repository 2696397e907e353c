"""Cluster state: columnar node arrays, pods per node, and indexes the plugins query.

Resource fit, taints, cordons and label selectors become NumPy operations over every node
(ARCHITECTURE: columnar node state). Pods are indexed by node, by namespace and by whether they
carry (anti-)affinity, so per-pod work never rescans the whole cluster. Assumed pods (chosen but
not yet bound) count exactly like bound ones until they are confirmed or forgotten.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt

from berth.objects.node import NodeInfo, Taint
from berth.objects.pod import AffinityTerm, PodInfo
from berth.objects.selectors import LabelSelector
from berth.state.nodetree import NodeTree, zone_key

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]

CPU, MEMORY, EPHEMERAL, PODS = 0, 1, 2, 3
BASE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")
MISSING = -1  # label code of a node without the label
LabelPair = tuple[str, str]
ANY_LABELS: LabelPair = ("", "")  # anchor of terms whose selector requires no particular label
# Per-(namespace, selector) counters kept at most (least recently used dropped first); each is one
# int64 per node slot, so 128 of them cost ~5 MB at 5,000 nodes.
MAX_SELECTOR_COUNTS = 128
# Label columns `prepare_label_columns` builds ahead of decisions, the keys most nodes carry first
# (real nodes carry 10-30 keys). Each is one int32 per node slot (~33 KB at 5,000 nodes) and a
# label change on a node rewrites one entry per column.
MAX_PREPARED_LABEL_COLUMNS = 32


def selector_anchor(selector: LabelSelector) -> tuple[str, frozenset[str]] | None:
    """A label key and the values one of which every pod `selector` matches must carry (its
    narrowest `In` requirement; matchLabels are `In` with one value), or None."""
    best = None
    for r in selector.requirements:
        if r.operator == "In" and (best is None or len(r.values) < len(best[1])):
            best = (r.key, r.values)
    return best


def _term_anchors(terms: Iterable[AffinityTerm]) -> set[LabelPair]:
    out: set[LabelPair] = set()
    for t in terms:
        if t.selector.matches_nothing:
            continue  # can never match a pod
        anchor = selector_anchor(t.selector)
        if anchor is None:
            out.add(ANY_LABELS)
        else:
            out.update((anchor[0], v) for v in anchor[1])
    return out


@dataclass(slots=True)
class LabelColumn:
    """One label key across all node slots: an int code per node and the code of each value."""

    codes: npt.NDArray[np.int32]
    values: dict[str, int]

    def code(self, value: str) -> int:
        return self.values.get(value, -2)  # -2 never appears in `codes`

    def has(self, codes: npt.NDArray[np.int32], wanted: Iterable[int]) -> BoolArray:
        """Whether each of `codes` (taken from this column) is one of the `wanted` codes.

        A lookup table indexed by code, not `np.isin` (which sorts: ~10x slower on the few
        values a selector names)."""
        want = [c for c in wanted if c >= 0]
        if not want:
            return np.zeros(len(codes), dtype=bool)
        if len(want) == 1:
            one: BoolArray = codes == want[0]
            return one
        table = np.zeros(len(self.values) + 1, dtype=bool)  # slot 0 is MISSING (-1)
        table[np.array(want, dtype=np.intp) + 1] = True
        hit: BoolArray = table.take(codes + 1)
        return hit


@dataclass(slots=True)
class _SelectorCounts:
    """Non-terminating pods of `namespace` that `selector` matches, per node slot."""

    namespace: str
    selector: LabelSelector
    counts: IntArray
    anchors: list[LabelPair]  # the label pairs (or ANY_LABELS) it is indexed under


class ClusterState:
    """Nodes and placed pods. Mutated between decisions; a decision reads it as a snapshot, and
    changes it only inside `berth.state.whatif.what_if`, which puts it back."""

    def __init__(self, *, capacity: int = 64) -> None:
        self.resources: list[str] = list(BASE_RESOURCES)
        self.resource_index: dict[str, int] = {r: i for i, r in enumerate(self.resources)}
        self._cap = capacity
        self.names: list[str] = [""] * capacity
        self.nodes: list[NodeInfo | None] = [None] * capacity
        self.index: dict[str, int] = {}
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self.present: BoolArray = np.zeros(capacity, dtype=bool)
        self.unschedulable: BoolArray = np.zeros(capacity, dtype=bool)
        # The scan order (upstream's snapshot nodeInfoList): the node tree's list, taken again
        # only when the set of nodes changed since it was last taken (a node's zone changing
        # moves it in the tree, not in the list, until then), as upstream's UpdateSnapshot.
        self.tree = NodeTree()
        self._order: IndexArray = np.zeros(0, dtype=np.intp)
        self._order.flags.writeable = False
        self._order_names: list[str] = []
        self._order_set: set[str] = set()
        self._new_names: set[str] = set()  # nodes added since, that the list lacks
        self._order_stale = False
        # Node x resource matrices, column-major: filters and scores read one resource over
        # thousands of nodes (`alloc[:, col].take(nodes)`, a contiguous gather, ~2x faster than
        # `alloc[nodes, col]` on a row-major array); writes touch one node and are rare.
        self.alloc: IntArray = np.zeros((capacity, len(self.resources)), dtype=np.int64, order="F")
        self.requested: IntArray = np.zeros(
            (capacity, len(self.resources)), dtype=np.int64, order="F"
        )
        self.nonzero: IntArray = np.zeros((capacity, 2), dtype=np.int64, order="F")
        self.taint_group: npt.NDArray[np.int32] = np.zeros(capacity, dtype=np.int32)
        self.taint_sets: list[tuple[Taint, ...]] = [()]
        self._taint_set_index: dict[tuple[Taint, ...], int] = {(): 0}
        self._label_cols: dict[str, LabelColumn] = {}
        # label key -> how many nodes carry it: a column of a key no node has needs no scan
        self._label_keys: Counter[str] = Counter()
        self.node_pods: list[dict[str, PodInfo]] = [{} for _ in range(capacity)]
        self.node_ports: dict[int, Counter[tuple[str, str, int]]] = {}
        self.image_nodes: dict[
            str, dict[int, int]
        ] = {}  # image name as the node lists it -> node -> size
        # image name -> a counter bumped whenever its holders change (ImageLocality caches
        # per-image arrays against it; a node update that keeps its images bumps nothing)
        self.image_generation: dict[str, int] = {}
        self.pods: dict[str, PodInfo] = {}
        self.pod_node: dict[str, str] = {}
        # pods placed on a node the state does not hold (yet, or any more), by node name
        self._orphans: dict[str, set[str]] = {}
        self.assumed: set[str] = set()
        self.pods_by_namespace: dict[str, dict[str, PodInfo]] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        # Indexes so per-decision work is proportional to the pods that can match, not to all
        # pods: namespace -> (label key, value) -> pods carrying it; and placed pods whose
        # required anti-affinity terms (resp. the terms PreScore reads: required affinity,
        # preferred affinity and anti-affinity) can only match pods carrying a given label.
        self.pods_by_label: dict[str, dict[LabelPair, dict[str, PodInfo]]] = {}
        self.anti_affinity_by_label: dict[LabelPair, dict[str, PodInfo]] = {}
        self.affinity_by_label: dict[LabelPair, dict[str, PodInfo]] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        # Volumes of placed pods: how many use each claim ("namespace/claim", upstream
        # StorageInfos.IsPVCUsedByPods) and the pods with inline GCE/EBS/RBD/iSCSI disks.
        self.pvc_users: Counter[str] = Counter()
        self.pods_with_disks: dict[str, PodInfo] = {}
        # Per node slot, the attachable volumes of its pods (`volume_refs`: claims and migrated
        # inline disks), and a generation bumped whenever a slot's refs change, so NodeVolumeLimits
        # finds the slots to recount with one array compare.
        self.node_volumes: dict[int, Counter[str]] = {}
        self.volume_gen: IntArray = np.zeros(capacity, dtype=np.int64)
        # Bumped when a slot gets or loses its node (`slots_version`), and when that or any
        # node's labels change (`labels_version`): caches over the node table key on them.
        self.slots_version = 0
        self.labels_version = 0
        # matching_pods_per_node: counters built on first use, then kept current by _account;
        # indexed by (namespace, label pair of the selector's anchor) so a pod only updates the
        # counters whose selector can match it.
        self._selector_counts: OrderedDict[tuple[str, LabelSelector], _SelectorCounts] = (
            OrderedDict()
        )
        self._selector_counts_by_label: dict[tuple[str, LabelPair], list[_SelectorCounts]] = {}
        self.version = 0

    # ----- nodes -------------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.index)

    def node_indices(self) -> IndexArray:
        """Slots holding a node, in the scan order (upstream's snapshot node list: zones in
        turn, see `berth.state.nodetree`); stable across decisions while the node set is.
        Read-only: callers that reorder it take a copy."""
        if self._order_stale:
            self._take_order()
        return self._order

    def _take_order(self) -> None:
        """upstream updateNodeInfoSnapshotList: the tree's list afresh when a node was added
        that the list lacks or one it has was removed; when only nodes that left came back
        (same names), the list keeps its order and only their slots are read again."""
        if self._new_names or len(self._order_names) != len(self.index):
            order = self.tree.list()
            names = self.names
            self._order_names = [names[i] for i in order.tolist()]
            self._order_set = set(self._order_names)
            self._new_names.clear()
        else:
            index = self.index
            order = np.fromiter(
                (index[n] for n in self._order_names), dtype=np.intp, count=len(index)
            )
        order.flags.writeable = False
        self._order = order
        self._order_stale = False

    def _grow(self) -> None:
        old = self._cap
        new = old * 2
        self.names.extend([""] * (new - old))
        self.nodes.extend([None] * (new - old))
        self.node_pods.extend({} for _ in range(new - old))
        self._free = list(range(new - 1, old - 1, -1)) + self._free
        self.present = np.concatenate([self.present, np.zeros(new - old, dtype=bool)])
        self.unschedulable = np.concatenate([self.unschedulable, np.zeros(new - old, dtype=bool)])
        pad = np.zeros((new - old, self.alloc.shape[1]), dtype=np.int64)
        self.alloc = np.asfortranarray(np.concatenate([self.alloc, pad]))
        self.requested = np.asfortranarray(np.concatenate([self.requested, pad]))
        self.nonzero = np.asfortranarray(
            np.concatenate([self.nonzero, np.zeros((new - old, 2), dtype=np.int64)])
        )
        self.taint_group = np.concatenate([self.taint_group, np.zeros(new - old, dtype=np.int32)])
        self.volume_gen = np.concatenate([self.volume_gen, np.zeros(new - old, dtype=np.int64)])
        for col in self._label_cols.values():
            col.codes = np.concatenate([col.codes, np.full(new - old, MISSING, dtype=np.int32)])
        for sc in self._selector_counts.values():
            sc.counts = np.concatenate([sc.counts, np.zeros(new - old, dtype=np.int64)])
        self._cap = new

    def resource_column(self, name: str) -> int:
        """The column of a resource, adding one (all zeros) the first time it is seen."""
        idx = self.resource_index.get(name)
        if idx is None:
            idx = len(self.resources)
            self.resources.append(name)
            self.resource_index[name] = idx
            pad = np.zeros((self._cap, 1), dtype=np.int64)
            self.alloc = np.asfortranarray(np.hstack([self.alloc, pad]))
            self.requested = np.asfortranarray(np.hstack([self.requested, pad]))
        return idx

    def upsert_node(self, node: NodeInfo) -> int:
        idx = self.index.get(node.name)
        if idx is None:
            if not self._free:
                self._grow()
            idx = self._free.pop()
            self.index[node.name] = idx
            self.names[idx] = node.name
            self.present[idx] = True
            self.node_pods[idx] = {}
            self.tree.add(idx, zone_key(node.labels))
            if node.name not in self._order_set:
                self._new_names.add(node.name)
            self._order_stale = True
            self.volume_gen[idx] += 1
            self.slots_version += 1
            self.labels_version += 1
        old = self.nodes[idx]
        same_images = old is not None and old.images == node.images
        if not same_images:
            self._drop_images(idx)
        relabelled = old is None or old.labels != node.labels
        if old is not None and relabelled:
            self.labels_version += 1
            self.tree.update(idx, zone_key(node.labels))
            self._count_label_keys(old, -1)
        self.nodes[idx] = node
        self.alloc[idx, :] = 0
        for res, amount in node.allocatable.items():
            column = self.resource_column(res)  # may widen the arrays: look them up after
            self.alloc[idx, column] = amount
        self.unschedulable[idx] = node.unschedulable
        taints = node.taints
        group = self._taint_set_index.get(taints)
        if group is None:
            group = len(self.taint_sets)
            self.taint_sets.append(taints)
            self._taint_set_index[taints] = group
        self.taint_group[idx] = group
        if relabelled:  # a status update keeps the labels: the columns stay as they are
            self._count_label_keys(node, +1)
            for lkey, col in self._label_cols.items():
                col.codes[idx] = self._code(col, node.labels.get(lkey))
        if not same_images:
            for names, size in node.images:
                for n in names:
                    self.image_nodes.setdefault(n, {})[idx] = size
                    self.image_generation[n] = self.image_generation.get(n, 0) + 1
        # Pods seen before their node (bound elsewhere first) are counted now.
        for key in self._orphans.pop(node.name, ()):
            if key not in self.node_pods[idx]:
                self._account(self.pods[key], idx, +1)
        self.version += 1
        return idx

    def remove_node(self, name: str) -> None:
        idx = self.index.pop(name, None)
        if idx is None:
            return
        self._drop_images(idx)
        self.tree.remove(idx)
        self._new_names.discard(name)
        self._order_stale = True
        self.present[idx] = False
        self.unschedulable[idx] = False
        self.alloc[idx, :] = 0
        self.requested[idx, :] = 0
        self.nonzero[idx, :] = 0
        self.taint_group[idx] = 0
        for col in self._label_cols.values():
            col.codes[idx] = MISSING
        old = self.nodes[idx]
        if old is not None:
            self._count_label_keys(old, -1)
        for sc in self._selector_counts.values():
            sc.counts[idx] = 0  # its pods stay known (pod_node) but are counted nowhere
        if self.node_pods[idx]:
            self._orphans.setdefault(name, set()).update(self.node_pods[idx])
        self.node_pods[idx] = {}
        self.node_ports.pop(idx, None)
        self.node_volumes.pop(idx, None)
        self.volume_gen[idx] += 1
        self.slots_version += 1
        self.labels_version += 1
        self.names[idx] = ""
        self.nodes[idx] = None
        self._free.append(idx)
        self.version += 1

    def _drop_images(self, idx: int) -> None:
        node = self.nodes[idx]
        if node is None:
            return
        for names, _ in node.images:
            for n in names:
                holders = self.image_nodes.get(n)
                self.image_generation[n] = self.image_generation.get(n, 0) + 1
                if holders is not None:
                    holders.pop(idx, None)
                    if not holders:
                        del self.image_nodes[n]

    def node(self, idx: int) -> NodeInfo:
        node = self.nodes[idx]
        assert node is not None, f"slot {idx} holds no node"
        return node

    # ----- labels ------------------------------------------------------------------------------
    @staticmethod
    def _code(col: LabelColumn, value: str | None) -> int:
        if value is None:
            return MISSING
        code = col.values.get(value)
        if code is None:
            code = len(col.values)
            col.values[value] = code
        return code

    def _count_label_keys(self, node: NodeInfo, sign: int) -> None:
        keys = self._label_keys
        for key in node.labels:
            left = keys[key] + sign
            if left > 0:
                keys[key] = left
            else:
                del keys[key]

    def label_column(self, key: str) -> LabelColumn:
        """Codes of label `key` on every slot, built on first use (or ahead of it by
        `prepare_label_columns`) and kept current after."""
        col = self._label_cols.get(key)
        if col is None:
            col = LabelColumn(np.full(self._cap, MISSING, dtype=np.int32), {})
            if self._label_keys[key] > 0:  # else no node has it: every slot is MISSING
                codes = col.codes
                for idx in self.index.values():
                    node = self.nodes[idx]
                    assert node is not None
                    codes[idx] = self._code(col, node.labels.get(key))
            self._label_cols[key] = col
        return col

    def prepare_label_columns(self, limit: int = MAX_PREPARED_LABEL_COLUMNS) -> None:
        """Build, between decisions, the columns of the label keys the most nodes carry, up to
        `limit` columns in all: a decision that selects on one of them no longer scans every
        node (~4 ms at 5,000 nodes) the first time. A no-op once they exist."""
        room = limit - len(self._label_cols)
        if room <= 0:
            return
        for key, _ in self._label_keys.most_common():
            if room <= 0:
                break
            if key not in self._label_cols:
                self.label_column(key)
                room -= 1

    # ----- namespaces --------------------------------------------------------------------------
    def set_namespace(self, name: str, labels: dict[str, str]) -> None:
        self.namespace_labels[name] = dict(labels)
        self.version += 1

    def remove_namespace(self, name: str) -> None:
        self.namespace_labels.pop(name, None)
        self.version += 1

    # ----- pods --------------------------------------------------------------------------------
    def _account(self, pod: PodInfo, idx: int, sign: int) -> None:
        req = self.requested[idx]
        for res, amount in pod.requests.items():
            col = self.resource_index.get(res)
            if col is None:
                col = self.resource_column(res)
                req = self.requested[idx]
            req[col] += sign * amount
        req[PODS] += sign
        self.nonzero[idx, CPU] += sign * pod.nonzero_cpu
        self.nonzero[idx, MEMORY] += sign * pod.nonzero_memory
        if sign > 0:
            self.node_pods[idx][pod.key] = pod
        else:
            self.node_pods[idx].pop(pod.key, None)
        if pod.host_ports:
            ports = self.node_ports.setdefault(idx, Counter())
            for p in pod.host_ports:
                ports[p] += sign
                if ports[p] <= 0:
                    del ports[p]
            if not ports:
                del self.node_ports[idx]
        if self._selector_counts and not pod.terminating:
            self._count_matching(pod, idx, sign)
        if pod.volumes:
            refs = volume_refs(pod)
            if refs:
                held = self.node_volumes.setdefault(idx, Counter())
                for ref in refs:
                    held[ref] += sign
                    if held[ref] <= 0:
                        del held[ref]
                if not held:
                    del self.node_volumes[idx]
                self.volume_gen[idx] += 1

    def add_pod(self, pod: PodInfo, node_name: str | None = None) -> None:
        """Count a pod on its node (bound, or assumed via `assume_pod`); replaces any old copy."""
        node_name = node_name or pod.node_name
        if not node_name:
            raise ValueError(f"pod {pod.key} has no node")
        self.remove_pod(pod.key)
        self.pods[pod.key] = pod
        self.pod_node[pod.key] = node_name
        self.pods_by_namespace.setdefault(pod.namespace, {})[pod.key] = pod
        if pod.has_affinity:
            self.pods_with_affinity[pod.key] = pod
        if pod.required_anti_affinity:
            self.pods_with_required_anti_affinity[pod.key] = pod
        self._index_labels(pod, add=True)
        if pod.volumes:
            self._index_volumes(pod, +1)
        idx = self.index.get(node_name)
        if idx is not None:
            self._account(pod, idx, +1)
        else:
            self._orphans.setdefault(node_name, set()).add(pod.key)
        self.version += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        node_name = self.pod_node.pop(key)
        self.assumed.discard(key)
        ns = self.pods_by_namespace.get(pod.namespace)
        if ns is not None:
            ns.pop(key, None)
            if not ns:
                del self.pods_by_namespace[pod.namespace]
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self._index_labels(pod, add=False)
        if pod.volumes:
            self._index_volumes(pod, -1)
        idx = self.index.get(node_name)
        if idx is not None and key in self.node_pods[idx]:
            self._account(pod, idx, -1)
        orphans = self._orphans.get(node_name)
        if orphans is not None:
            orphans.discard(key)
            if not orphans:
                del self._orphans[node_name]
        self.version += 1
        return pod

    def _index_volumes(self, pod: PodInfo, sign: int) -> None:
        for v in pod.volumes:
            if v.claim and not v.ephemeral:
                key = f"{pod.namespace}/{v.claim}"
                self.pvc_users[key] += sign
                if self.pvc_users[key] <= 0:
                    del self.pvc_users[key]
            elif v.disk_kind:
                if sign > 0:
                    self.pods_with_disks[pod.key] = pod
                else:
                    self.pods_with_disks.pop(pod.key, None)

    def _index_labels(self, pod: PodInfo, *, add: bool) -> None:
        key = pod.key
        by_label = self.pods_by_label.setdefault(pod.namespace, {})
        indexes: list[tuple[dict[LabelPair, dict[str, PodInfo]], Iterable[LabelPair]]] = [
            (by_label, pod.labels.items())
        ]
        if pod.has_affinity:
            indexes.append((self.anti_affinity_by_label, _term_anchors(pod.required_anti_affinity)))
            scored = [
                *pod.required_affinity,
                *(t for _, t in pod.preferred_affinity),
                *(t for _, t in pod.preferred_anti_affinity),
            ]
            indexes.append((self.affinity_by_label, _term_anchors(scored)))
        for index, pairs in indexes:
            for pair in pairs:
                if add:
                    index.setdefault(pair, {})[key] = pod
                    continue
                bucket = index.get(pair)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del index[pair]
        if not by_label:
            del self.pods_by_label[pod.namespace]

    def pods_selected_in(self, namespace: str, selector: LabelSelector) -> Iterator[PodInfo]:
        """Pods of `namespace` that `selector` may match (a superset, never missing one): those
        carrying one of the values of its narrowest `In` requirement, else every pod there."""
        anchor = selector_anchor(selector)
        if anchor is None:
            yield from self.pods_by_namespace.get(namespace, {}).values()
            return
        by_label = self.pods_by_label.get(namespace)
        if by_label is None:
            return
        key, values = anchor
        for v in values:
            yield from by_label.get((key, v), {}).values()

    # ----- per-node counts of the pods a selector matches ---------------------------------------
    def matching_pods_per_node(self, namespace: str, selector: LabelSelector) -> IntArray:
        """Per node slot, the non-terminating pods of `namespace` that `selector` matches
        (upstream countPodsMatchSelector on every node; an empty or null selector counts
        nothing). Built by one pass over the pods the label index returns on first use, then kept
        current by add_pod / remove_pod / node changes, so a later call is O(1). The array is the
        live counter: read it, copy it to keep it, never write to it."""
        if selector.is_everything or selector.matches_nothing:
            return np.zeros(self._cap, dtype=np.int64)
        key = (namespace, selector)
        sc = self._selector_counts.get(key)
        if sc is not None:
            self._selector_counts.move_to_end(key)
            return sc.counts
        counts = self._count_selected(namespace, selector)
        anchor = selector_anchor(selector)
        anchors = [ANY_LABELS] if anchor is None else [(anchor[0], v) for v in anchor[1]]
        sc = _SelectorCounts(namespace, selector, counts, anchors)
        self._selector_counts[key] = sc
        for pair in anchors:
            self._selector_counts_by_label.setdefault((namespace, pair), []).append(sc)
        if len(self._selector_counts) > MAX_SELECTOR_COUNTS:
            self._drop_selector_counts()
        return counts

    def _count_selected(self, namespace: str, selector: LabelSelector) -> IntArray:
        """The first build of a counter: one pass over the pods the label index returns, their
        slots counted at once (a pass over 500 pods cost ~1.5 ms at 5,000 nodes with a NumPy
        increment per pod). A selector that is only its anchor matches every pod the index
        returns for it, so it is not matched again."""
        anchor = selector_anchor(selector)
        if anchor is None:
            pods: Iterable[tuple[str, PodInfo]] = self.pods_by_namespace.get(namespace, {}).items()
        else:
            by_label = self.pods_by_label.get(namespace, {})
            pods = chain.from_iterable(by_label.get((anchor[0], v), {}).items() for v in anchor[1])
        only_anchor = anchor is not None and len(selector.requirements) == 1
        index, pod_node = self.index, self.pod_node
        slots = []
        for key, p in pods:
            if p.terminating or not (only_anchor or selector.matches(p.labels)):
                continue
            idx = index.get(pod_node.get(key, ""))
            if idx is not None:
                slots.append(idx)
        return np.bincount(np.array(slots, dtype=np.intp), minlength=self._cap).astype(np.int64)

    def _drop_selector_counts(self) -> None:
        _, old = self._selector_counts.popitem(last=False)
        for pair in old.anchors:
            bucket = self._selector_counts_by_label[(old.namespace, pair)]
            bucket.remove(old)
            if not bucket:
                del self._selector_counts_by_label[(old.namespace, pair)]

    def _count_matching(self, pod: PodInfo, idx: int, sign: int) -> None:
        """Update the counters whose selector matches `pod` (counted or uncounted on `idx`). A
        counter is listed under each value of its anchor key and a pod carries one value per
        key, so no counter is seen twice."""
        by_label = self._selector_counts_by_label
        ns = pod.namespace
        labels = pod.labels
        buckets = [by_label.get((ns, ANY_LABELS))]
        buckets.extend(by_label.get((ns, pair)) for pair in labels.items() if pair != ANY_LABELS)
        for bucket in buckets:
            if bucket:
                for sc in bucket:
                    if sc.selector.matches(labels):
                        sc.counts[idx] += sign

    @staticmethod
    def _holders(index: dict[LabelPair, dict[str, PodInfo]], pod: PodInfo) -> list[PodInfo]:
        found: dict[str, PodInfo] = dict(index.get(ANY_LABELS, {}))
        for pair in pod.labels.items():
            bucket = index.get(pair)
            if bucket:
                found.update(bucket)
        return list(found.values())

    def anti_affinity_holders(self, pod: PodInfo) -> list[PodInfo]:
        """Placed pods whose required anti-affinity terms may match `pod` (a superset of those
        that do: every term of every other pod needs a label `pod` lacks)."""
        return self._holders(self.anti_affinity_by_label, pod)

    def affinity_holders(self, pod: PodInfo) -> list[PodInfo]:
        """Placed pods whose required affinity or preferred (anti-)affinity terms may match
        `pod` (a superset of those that do)."""
        return self._holders(self.affinity_by_label, pod)

    def replace_pod(self, pod: PodInfo) -> None:
        """Swap the copy of a placed pod (same key) for `pod`, on the same node and as assumed as
        before (e.g. to mark a preemption victim terminating); a pod placed nowhere is left out."""
        node_name = self.pod_node.get(pod.key)
        if node_name is None:
            return
        if self.is_assumed(pod.key):
            self.assume_pod(pod, node_name)
        else:
            self.add_pod(pod, node_name)

    def assume_pod(self, pod: PodInfo, node_name: str) -> None:
        """Count `pod` on `node_name` before the bind lands, so the next decision sees it."""
        self.add_pod(pod, node_name)
        self.assumed.add(pod.key)

    def confirm_pod(self, key: str) -> None:
        """The bind of an assumed pod landed and nothing else about the pod changed: it stays
        counted where it is, no longer assumed."""
        self.assumed.discard(key)

    def forget_pod(self, key: str) -> None:
        """Undo `assume_pod` after a failed bind; a confirmed (bound) pod is left alone."""
        if key in self.assumed:
            self.remove_pod(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def node_of(self, key: str) -> str | None:
        return self.pod_node.get(key)


def volume_refs(pod: PodInfo) -> list[str]:
    """The pod's volumes that may count against a CSI attach limit: `namespace/claim` for a
    PVC or generic ephemeral volume, `\0driver\0handle` for a migrated inline disk."""
    refs = []
    for v in pod.volumes:
        if v.claim:
            refs.append(f"{pod.namespace}/{v.claim}")
        elif v.attach is not None:
            refs.append(f"\0{v.attach[0]}\0{v.attach[1]}")
    return refs


def normalize_image(name: str) -> str:
    """Upstream ImageLocality's rule: a name whose last ":" is not after its last "/" is untagged
    and means `:latest` ("localhost:5000/app" -> "localhost:5000/app:latest")."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name
