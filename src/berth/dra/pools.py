"""The resource pools a node can use (upstream structured/internal/incubating/pools_incubating.go).

A pool is the devices one driver publishes under one name, possibly in several ResourceSlices
of one generation. A pool the node sees only partly (not all `resourceSliceCount` slices of its
newest generation) is incomplete; one with duplicate device names or bad counter references is
invalid: neither is allocated from, and `allocationMode: All` refuses to run on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from berth.objects.dra import NodeSelector, SliceInfo

PoolID = tuple[str, str]  # (driver, pool)


@dataclass(slots=True)
class Node:
    """What node selection needs of a node (None for "no node", as in upstream's tests)."""

    name: str
    labels: dict[str, str]
    declared_features: frozenset[str] = frozenset()


@dataclass(slots=True)
class Pool:
    id: PoolID
    incomplete: bool = False
    invalid: bool = False
    invalid_reason: str = ""
    slices: list[SliceInfo] = field(default_factory=list)  # targeting the node, by name
    slices_elsewhere: list[SliceInfo] = field(default_factory=list)
    counter_sets: dict[str, dict[str, Decimal]] = field(default_factory=dict)


def node_matches(
    node: Node | None, node_name: str, all_nodes: bool, selector: NodeSelector | None
) -> bool:
    """upstream NodeMatches."""
    if node_name:
        return node is not None and node.name == node_name
    if all_nodes:
        return True
    if selector is not None:
        return node is not None and selector.matches(node.labels, node.name)
    return False


def _relevant(sl: SliceInfo, node: Node | None) -> bool | None:
    if sl.node_name or sl.all_nodes or sl.node_selector is not None:
        return node_matches(node, sl.node_name, sl.all_nodes, sl.node_selector)
    if sl.per_device_node_selection:
        return any(
            node_matches(node, d.node_name, d.all_nodes, d.node_selector) for d in sl.devices
        )
    return None  # some future way of node selection: skipped


def gather_pools(
    slices_for_node: Iterable[SliceInfo],
    node: Node | None,
    all_slices: Sequence[SliceInfo],
    *,
    partitionable_devices: bool = True,
) -> list[Pool]:
    """upstream GatherPools (DRADeviceCompatibilityGroups off: slices using groups are
    ignored, which leaves their pool incomplete)."""
    pools: dict[PoolID, list[SliceInfo]] = {}
    for sl in slices_for_node:
        if not partitionable_devices and (sl.per_device_node_selection or sl.shared_counters):
            continue
        if sl.uses_compatibility_groups:
            continue
        if not _relevant(sl, node):
            continue
        current = pools.get(sl.pool_id)
        if current is None or sl.generation > current[0].generation:
            pools[sl.pool_id] = [sl]
        elif sl.generation == current[0].generation:
            current.append(sl)
    result: list[Pool] = []
    with_binding_conditions: list[Pool] = []
    for pool_id, slices in pools.items():
        want = slices[0].slice_count
        if len(slices) == want:
            pool = _build_pool(pool_id, slices, [], partitionable_devices)
        else:
            obsolete, all_of_pool = _slices_in_pool(all_slices, pool_id, slices[0].generation)
            if obsolete:
                continue
            all_of_pool = [s for s in all_of_pool if not s.uses_compatibility_groups]
            if len(all_of_pool) != want:
                result.append(Pool(pool_id, incomplete=True))
                continue
            pool = _build_pool(pool_id, slices, all_of_pool, partitionable_devices)
        if any(d.binding_conditions for s in pool.slices for d in s.devices):
            with_binding_conditions.append(pool)
        else:
            result.append(pool)
    result.sort(key=lambda p: p.id)
    with_binding_conditions.sort(key=lambda p: p.id)
    return result + with_binding_conditions


def _slices_in_pool(
    all_slices: Sequence[SliceInfo], pool_id: PoolID, generation: int
) -> tuple[bool, list[SliceInfo]]:
    """upstream checkSlicesInPool: (a newer generation exists, the slices of `generation`)."""
    out = []
    for sl in all_slices:
        if sl.pool_id != pool_id:
            continue
        if sl.generation == generation:
            out.append(sl)
        elif sl.generation > generation:
            return True, []
    return False, out


def _build_pool(
    pool_id: PoolID,
    slices: list[SliceInfo],
    all_of_pool: list[SliceInfo],
    partitionable: bool,
) -> Pool:
    slices = sorted(slices, key=lambda s: s.name)
    device_slices: list[SliceInfo] = []
    counter_slices: list[SliceInfo] = []
    elsewhere: list[SliceInfo] = []
    for sl in slices:
        (counter_slices if partitionable and sl.shared_counters else device_slices).append(sl)
    if len(slices) < len(all_of_pool):
        seen = {s.name for s in slices}
        for sl in all_of_pool:
            if sl.name in seen:
                continue
            (counter_slices if partitionable and sl.shared_counters else elsewhere).append(sl)
    names: set[str] = set()
    for sl in device_slices:
        for d in sl.devices:
            if d.name in names:
                return Pool(pool_id, invalid=True, invalid_reason=f"duplicate device name {d.name}")
            names.add(d.name)
    if not partitionable:
        return Pool(pool_id, slices=device_slices)
    counter_sets: dict[str, dict[str, Decimal]] = {}
    for sl in counter_slices:
        for name, counters in sl.shared_counters:
            if name in counter_sets:
                return Pool(
                    pool_id, invalid=True, invalid_reason=f"duplicate counter set name {name}"
                )
            counter_sets[name] = counters
    for group in (device_slices, elsewhere):
        for sl in group:
            for d in sl.devices:
                for set_name, counters in d.consumes_counters:
                    cs = counter_sets.get(set_name)
                    if cs is None:
                        return Pool(
                            pool_id,
                            invalid=True,
                            invalid_reason=f"counter set {set_name} not found",
                        )
                    for counter in counters:
                        if counter not in cs:
                            return Pool(
                                pool_id,
                                invalid=True,
                                invalid_reason=(
                                    f"counter {counter} not found in counter set {set_name}"
                                ),
                            )
    return Pool(
        pool_id, slices=device_slices, slices_elsewhere=elsewhere, counter_sets=counter_sets
    )
