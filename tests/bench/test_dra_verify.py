"""The DRA workload's check of the embedded cluster's final claims (`verify_cluster`): a valid
end state passes with its checks counted, and each way a scheduler could break it is caught."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from berth.bench.dra import DRIVER, verify_cluster

JSON = dict[str, Any]
NS = "bench"


def _allocation(node: str, device: str) -> JSON:
    return {
        "devices": {
            "results": [{"request": "req-0", "driver": DRIVER, "pool": node, "device": device}]
        },
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        },
    }


def _pod(name: str, node: str, claim: str) -> JSON:
    return {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {
            "nodeName": node,
            "resourceClaims": [{"name": "resource", "resourceClaimTemplateName": "t"}],
        },
        "status": {"resourceClaimStatuses": [{"name": "resource", "resourceClaimName": claim}]},
    }


def _claim(name: str, node: str, device: str, *, pod: str) -> JSON:
    return {
        "metadata": {"name": name, "namespace": NS},
        "status": {
            "allocation": _allocation(node, device),
            "reservedFor": [{"resource": "pods", "name": pod, "uid": f"uid-{pod}"}],
        },
    }


def _state() -> tuple[list[JSON], list[JSON]]:
    pods = [_pod("p0", "node-0", "p0-resource"), _pod("p1", "node-1", "p1-resource")]
    claims = [
        _claim("p0-resource", "node-0", "basic-device-0", pod="p0"),
        _claim("p1-resource", "node-1", "basic-device-0", pod="p1"),
        # pre-allocated, held by no pod of the namespace: only its device's uniqueness counts
        {"metadata": {"name": "init-0", "namespace": "init"},
         "status": {"allocation": _allocation("node-0", "basic-device-1")}},
    ]  # fmt: skip
    return pods, claims


def test_a_valid_end_state_passes_and_counts_its_checks() -> None:
    pods, claims = _state()
    checks, violations = verify_cluster(pods, claims, namespace=NS)
    assert violations == []
    # per pod: its claim (1), the device unique (1), on its node (1), the nodeSelector (1);
    # the pre-allocated claim: its device unique (1)
    assert checks == 2 * 4 + 1


def _same_device(pods: list[JSON], claims: list[JSON]) -> None:
    claims[1]["status"]["allocation"] = _allocation("node-0", "basic-device-1")
    pods[1]["spec"]["nodeName"] = "node-0"


def _off_node(pods: list[JSON], claims: list[JSON]) -> None:
    pods[0]["spec"]["nodeName"] = "node-1"


def _unreserved(pods: list[JSON], claims: list[JSON]) -> None:
    claims[0]["status"]["reservedFor"] = []


def _unallocated(pods: list[JSON], claims: list[JSON]) -> None:
    del claims[0]["status"]["allocation"]


def _missing(pods: list[JSON], claims: list[JSON]) -> None:
    del claims[0]


@pytest.mark.parametrize(
    ("name", "breaks", "wanted"),
    [
        (
            "device allocated twice",
            _same_device,
            "node-0/basic-device-1 allocated to bench/p1-resource and init/init-0",
        ),
        ("device not on the pod's node", _off_node, "is not on node node-1"),
        ("claim not reserved for its pod", _unreserved, "p0-resource: reserved for []"),
        ("claim not allocated", _unallocated, "p0-resource: not allocated"),
        ("pod without its claim", _missing, "pod p0: no claim"),
    ],
)
def test_each_broken_end_state_is_caught(
    name: str, breaks: Callable[[list[JSON], list[JSON]], None], wanted: str
) -> None:
    pods, claims = copy.deepcopy(_state())
    breaks(pods, claims)
    _, violations = verify_cluster(pods, claims, namespace=NS)
    assert any(wanted in v for v in violations), violations


def _shared(claim: JSON, share: str | None) -> None:
    result = claim["status"]["allocation"]["devices"]["results"][0]
    if share is None:
        result.pop("shareID", None)
    else:
        result["shareID"] = share


@pytest.mark.parametrize(
    ("row", "first", "second", "broken"),
    [
        (
            "two-shares-of-one-device",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "aaaaaaaa-0000-4000-8000-000000000002",
            False,
        ),
        (
            "one-share-twice",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "aaaaaaaa-0000-4000-8000-000000000001",
            True,
        ),
        ("a-share-of-a-device-held-whole", None, "aaaaaaaa-0000-4000-8000-000000000002", True),
        ("a-device-held-whole-and-shared", "aaaaaaaa-0000-4000-8000-000000000001", None, True),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith("aaaa") else "",
)
def test_a_shared_device_is_in_several_claims_under_distinct_shares(
    row: str, first: str | None, second: str | None, broken: bool
) -> None:
    """Consumable capacity: shares of one device are several allocations of it, one share ID
    each; a device held whole is in no other allocation."""
    pods, claims = _state()
    _same_device(pods, claims)
    claims[0]["status"]["allocation"] = _allocation("node-0", "basic-device-1")
    _shared(claims[0], first)
    _shared(claims[1], second)
    claims.pop()  # the pre-allocated claim holds basic-device-1 whole
    _, violations = verify_cluster(pods, claims, namespace=NS)
    assert bool(violations) == broken, (row, violations)
