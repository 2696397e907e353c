"""DynamicResources with consumable capacity: devices shared by several claims.

The index's allocated state is upstream's testGatherAllocatedState (dynamicresources_test.go,
1.37, its rows with DRAConsumableCapacity on, as 1.37's defaults have it); the plugin rows
follow one shared device through Filter, Reserve (in flight) and PreBind (status.allocation
with shareID and consumedCapacity), with upstream's fixtures (driver `some-driver`, node
`worker`, device `shared-instance`, capacity `example.com/capacity`).
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from berth.framework.status import Code
from berth.plugins.dynamicresources import _with_status
from berth.state.dra import DRAIndex
from tests.plugins.test_upstream_dynamicresources import (
    CLAIM,
    CLASS,
    DRIVER,
    NODE,
    POD_UID,
    Harness,
    allocation,
    claim,
    device_class,
    node_slice,
    pod_with_claim_name,
    worker,
)

SHARED = "shared-instance"
CAPACITY = "example.com/capacity"


def shared_allocation(
    share_id: str | None, consumed: str | None = None, device: str = SHARED
) -> dict[str, Any]:
    out = allocation(device=device)
    result = out["devices"]["results"][0]
    if share_id is not None:
        result["shareID"] = share_id
    if consumed is not None:
        result["consumedCapacity"] = {CAPACITY: consumed}
    return out


def claimed(name: str, alloc: dict[str, Any]) -> dict[str, Any]:
    return claim(name, owner=f"owner-{name}", alloc=alloc)


# upstream testGatherAllocatedState: (allocated claims, in-flight claims, dedicated devices,
# shared device IDs, consumed capacity of the shared device)
GATHER_ROWS = [
    ("no-claims", [], [], 0, 0, None),
    ("single-allocated-claim", [claimed("claim-1", allocation())], [], 1, 0, None),
    (
        "single-allocated-claim-with-shared-device",
        [claimed("claim-1", shared_allocation("share-123"))],
        [],
        0,
        1,
        None,
    ),
    (
        "single-allocated-claim-with-capacity",
        [claimed("claim-1", shared_allocation("share-123", "1"))],
        [],
        0,
        1,
        "1",
    ),
    (
        "mixed-allocated-claim",
        [claimed("claim-0", allocation()), claimed("claim-1", shared_allocation("share-123", "1"))],
        [],
        1,
        1,
        "1",
    ),
    (
        "add-inflight-allocated-claim-with-capacity",
        [claimed("claim-0", allocation()), claimed("claim-1", shared_allocation("share-123", "1"))],
        [claimed("claim-2", shared_allocation("share-456", "1"))],
        1,
        2,
        "2",
    ),
]


@pytest.mark.parametrize(
    ("row", "allocated", "in_flight", "dedicated", "shares", "consumed"),
    GATHER_ROWS,
    ids=[r[0] for r in GATHER_ROWS],
)
def test_gather_allocated_state(
    row: str,
    allocated: list[dict[str, Any]],
    in_flight: list[dict[str, Any]],
    dedicated: int,
    shares: int,
    consumed: str | None,
) -> None:
    index = DRAIndex()
    for obj in allocated:
        index.upsert(obj)
    for obj in in_flight:
        pending = claim(obj["metadata"]["name"], owner="x")
        index.upsert(pending)
        found = index.claim("default", pending["metadata"]["name"])
        assert found is not None
        index.signal_pending_allocation(_with_status(found, allocation=obj["status"]["allocation"]))
    assert sum(index.allocated.values()) == dedicated, row
    assert sum(index.share_counts.values()) == shares, row
    use = index.shared_use((DRIVER, NODE, SHARED))
    if consumed is None:
        assert use is None or CAPACITY not in use, row
    else:
        assert use is not None and use[CAPACITY] == Decimal(consumed), row


def shared_slice(value: str = "4", policy: dict[str, Any] | None = None) -> dict[str, Any]:
    capacity: dict[str, Any] = {"value": value}
    if policy is not None:
        capacity["requestPolicy"] = policy
    return node_slice(
        NODE, {"name": SHARED, "allowMultipleAllocations": True, "capacity": {CAPACITY: capacity}}
    )


def capacity_claim(name: str = CLAIM, amount: str = "1", owner: str = POD_UID) -> dict[str, Any]:
    request = {
        "name": "req-1",
        "exactly": {
            "deviceClassName": CLASS,
            "count": 1,
            "capacity": {"requests": {CAPACITY: amount}},
        },
    }
    return claim(name, owner=owner, requests=[request])


def test_with_shared_device_prebind_writes_share_and_consumed_capacity() -> None:
    """A claim asking for part of a shared device: Reserve holds the share in flight, PreBind
    writes it with its share ID and consumed capacity."""
    h = Harness([worker()], [capacity_claim(amount="1"), device_class(), shared_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    assert h.dra.shared_use((DRIVER, NODE, SHARED)) == {CAPACITY: Decimal(1)}
    assert not h.dra.is_allocated((DRIVER, NODE, SHARED))  # shared, not held alone
    assert h.pre_bind().ok
    stored = h.dra.claim("default", CLAIM)
    assert stored is not None and stored.allocation is not None
    result = stored.allocation.raw["devices"]["results"][0]
    uuid.UUID(result.pop("shareID"))
    assert result == {
        "request": "req-1",
        "driver": DRIVER,
        "pool": NODE,
        "device": SHARED,
        "consumedCapacity": {CAPACITY: "1"},
    }
    assert not h.dra.in_flight
    assert h.dra.shared_use((DRIVER, NODE, SHARED)) == {CAPACITY: Decimal(1)}


@pytest.mark.parametrize(
    ("row", "taken", "amount", "fits"),
    [
        ("shared-device-remaining-capacity", ["1", "2"], "1", True),
        ("shared-device-exhausted-capacity", ["1", "2"], "2", False),
        ("shared-device-first-share", [], "4", True),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("shared-") else "",
)
def test_capacity_of_other_shares(row: str, taken: list[str], amount: str, fits: bool) -> None:
    """Shares allocated to other claims consume the device's capacity of 4."""
    others = [
        claimed(f"other-{i}", shared_allocation(f"share-{i}", q)) for i, q in enumerate(taken)
    ]
    h = Harness(
        [worker()], [capacity_claim(amount=amount), device_class(), shared_slice(), *others]
    )
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    if fits:
        assert status.ok, row
    else:
        assert (status.code, status.reasons) == (
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            ("cannot allocate all claims",),
        ), row


def test_in_flight_share_counts_for_the_next_pod() -> None:
    """A share Reserve holds in flight consumes capacity before PreBind writes it."""
    second = capacity_claim("second-claim", amount="3", owner="5678")
    h = Harness([worker()], [capacity_claim(amount="2"), second, device_class(), shared_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    pod = pod_with_claim_name()
    pod["metadata"] |= {"name": "second", "uid": "5678"}
    pod["spec"]["resourceClaims"] = [{"name": "my-resource", "resourceClaimName": "second-claim"}]
    h2 = Harness([worker()], [])
    h2.dra, h2.plugin = h.dra, h.plugin
    assert h2.pre_filter(pod).ok
    status = h2.filter()[NODE]
    assert status.reasons == ("cannot allocate all claims",)  # 2 + 3 > 4
    h.plugin.unreserve(h.cycle, h.pod, NODE)
    h3 = Harness([worker()], [])
    h3.dra, h3.plugin = h.dra, h.plugin
    assert h3.pre_filter(pod).ok
    assert h3.filter()[NODE].ok  # the share is given back


def test_request_policy_rounds_the_share_up() -> None:
    """A validRange step rounds what the share consumes up (upstream roundUpRange)."""
    policy = {"default": "1", "validRange": {"min": "1", "max": "4", "step": "2"}}
    h = Harness([worker()], [capacity_claim(amount="2"), device_class(), shared_slice("8", policy)])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    assert h.pre_bind().ok
    stored = h.dra.claim("default", CLAIM)
    assert stored is not None and stored.allocation is not None
    assert stored.allocation.raw["devices"]["results"][0]["consumedCapacity"] == {CAPACITY: "3"}


def _random_objects(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes with shared (and some dedicated) devices of assorted capacities and policies,
    some already partly taken, and the pod's claim asking for a share."""
    rng = random.Random(seed)
    nodes, objs = [], []
    policies: list[dict[str, Any] | None] = [
        None,
        {"default": "1", "validRange": {"min": "1", "step": "2"}},
        {"default": "2", "validValues": ["1", "2", "4"]},
        {"default": "500m", "validRange": {"min": "500m", "max": "3", "step": "250m"}},
    ]
    for i in range(12):
        name = f"n{i}"
        nodes.append(worker(name))
        devices = []
        for j in range(rng.randint(0, 2)):
            capacity: dict[str, Any] = {"value": str(rng.choice([2, 4, 6]))}
            multi = rng.random() < 0.8
            policy = rng.choice(policies) if multi else None
            if policy is not None:
                capacity["requestPolicy"] = policy
            device: dict[str, Any] = {"name": f"d{j}", "capacity": {CAPACITY: capacity}}
            if multi:
                device["allowMultipleAllocations"] = True
            devices.append(device)
            if multi and rng.random() < 0.5:
                taken = str(rng.choice([1, 2, 3]))
                alloc = allocation(node=name, device=f"d{j}")
                alloc["devices"]["results"][0] |= {
                    "shareID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "consumedCapacity": {CAPACITY: taken},
                }
                objs.append(claimed(f"taken-{i}-{j}", alloc))
        if devices:
            objs.append(node_slice(name, *devices))
    amount = rng.choice([None, "1", "1500m", "2", "3"])
    count = rng.choice([1, 1, 2])
    exactly: dict[str, Any] = {"deviceClassName": CLASS, "count": count}
    if amount is not None:
        exactly["capacity"] = {"requests": {CAPACITY: amount}}
    objs += [claim(requests=[{"name": "req-1", "exactly": exactly}]), device_class()]
    return nodes, objs


def test_vectorised_filter_agrees_with_the_search_on_shared_devices() -> None:
    """The counting path over capacity columns decides every node as the allocator's search
    does, with shares already allocated, over 40 random clusters that place and reject."""
    outcomes: set[bool] = set()
    for seed in range(40):
        nodes, objs = _random_objects(seed)
        h = Harness(nodes, objs)
        assert h.pre_filter(pod_with_claim_name()).ok
        state = h.cycle.read("DynamicResources")
        assert state.fast is not None
        decided = h.plugin._fast_filter(state.fast, h.state.node_indices())
        assert decided is not None, seed  # the counting path decides, not the search
        fast = {n: s.ok for n, s in h.filter().items()}
        h2 = Harness(nodes, objs)
        assert h2.pre_filter(pod_with_claim_name()).ok
        h2.cycle.read("DynamicResources").fast = None
        slow = {n: s.ok for n, s in h2.filter().items()}
        assert fast == slow, seed
        outcomes.update(slow.values())
    assert outcomes == {True, False}


def test_a_capacity_beyond_the_columns_is_left_to_the_search() -> None:
    """A capacity no int64 milli-value holds (10^21) is not counted in columns: the search
    decides, and the share fits."""
    h = Harness(
        [worker()],
        [capacity_claim(amount="1"), device_class(), shared_slice("1000000000000000000002")],
    )
    assert h.pre_filter(pod_with_claim_name()).ok
    state = h.cycle.read("DynamicResources")
    assert state.fast is not None
    assert h.plugin._fast_filter(state.fast, h.state.node_indices()) is None
    assert h.filter()[NODE].ok
