"""`berth simulate` on dumps with DRA objects: devices are allocated, a node without a free
device is reported with DynamicResources' reason, and a pod asking for a device no node has stays
pending with upstream's message."""

from __future__ import annotations

import json
from typing import Any

import yaml
from click.testing import CliRunner

from berth.cli import main
from tests.builders import node, pod

GPU_CLASS = {
    "apiVersion": "resource.k8s.io/v1",
    "kind": "DeviceClass",
    "metadata": {"name": "gpu"},
    "spec": {"selectors": [{"cel": {"expression": 'device.driver == "gpu.example.com"'}}]},
}


def gpu_slice(node_name: str, devices: int) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node_name}-gpu"},
        "spec": {
            "driver": "gpu.example.com",
            "nodeName": node_name,
            "pool": {"name": node_name, "generation": 1, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": f"gpu-{i}",
                    "attributes": {"model": {"string": "a100"}},
                    "capacity": {"memory": {"value": "40Gi"}},
                }
                for i in range(devices)
            ],
        },
    }


def claim(name: str, selector: str | None = None) -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": "gpu", "count": 1}
    if selector:
        exactly["selectors"] = [{"cel": {"expression": selector}}]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": exactly}]}},
    }


def gpu_pod(name: str, claim_name: str) -> dict[str, Any]:
    raw = pod(name)
    raw["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": claim_name}]
    return raw


def simulate(*items: dict[str, Any]) -> dict[str, dict[str, Any]]:
    dump = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)})
    result = CliRunner().invoke(main, ["simulate", "-", "-o", "json", "--seed", "1"], input=dump)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return {d["pod"]: d for d in out}


def test_each_claim_gets_its_own_device_and_the_third_pod_waits() -> None:
    out = simulate(
        node("n1"),
        node("n2"),
        GPU_CLASS,
        gpu_slice("n1", 1),
        *(claim(f"c{i}") for i in range(3)),
        *(gpu_pod(f"p{i}", f"c{i}") for i in range(3)),
    )
    placed = [out[f"default/p{i}"]["node"] for i in range(3)]
    assert placed.count("n1") == 1  # one device: one pod
    assert placed.count(None) == 2  # n2 has no device at all
    waiting = next(d for d in out.values() if d["node"] is None)
    assert waiting["reasons"] == {
        "n1": ["cannot allocate all claims"],
        "n2": ["cannot allocate all claims"],
    }
    assert waiting["message"].startswith("0/2 nodes are available: 2 cannot allocate all claims.")


def test_claims_without_uids_are_counted_apart() -> None:
    # A dump's claims may lack metadata.uid; the API server gives each one on create. Counted
    # under one empty UID, the second pod's allocation replaced the first's and the third pod
    # got the device the first one holds (upstream: the third pod waits).
    claims = [claim(f"c{i}") for i in range(3)]
    for c in claims:
        del c["metadata"]["uid"]
    out = simulate(
        node("n1"),
        GPU_CLASS,
        gpu_slice("n1", 2),
        *claims,
        *(gpu_pod(f"p{i}", f"c{i}") for i in range(3)),
    )
    placed = [out[f"default/p{i}"]["node"] for i in range(3)]
    assert placed.count("n1") == 2  # two devices: two pods
    assert placed.count(None) == 1
    waiting = next(d for d in out.values() if d["node"] is None)
    assert waiting["reasons"] == {"n1": ["cannot allocate all claims"]}


def test_a_device_no_node_has_keeps_the_pod_pending() -> None:
    out = simulate(
        node("n1"),
        GPU_CLASS,
        gpu_slice("n1", 4),
        claim("big", 'device.capacity["gpu.example.com"].memory.compareTo(quantity("80Gi")) >= 0'),
        gpu_pod("wants-80gi", "big"),
        claim(
            "small", 'device.capacity["gpu.example.com"].memory.compareTo(quantity("40Gi")) >= 0'
        ),
        gpu_pod("wants-40gi", "small"),
    )
    assert out["default/wants-80gi"]["node"] is None
    assert out["default/wants-80gi"]["reasons"] == {"n1": ["cannot allocate all claims"]}
    assert out["default/wants-40gi"]["node"] == "n1"


def test_a_missing_claim_holds_the_pod_at_the_gate_with_upstreams_reason() -> None:
    # upstream's PreEnqueue: the pod is not tried until its claim exists
    out = simulate(node("n1"), GPU_CLASS, gpu_pod("orphan", "nope"))
    assert out["default/orphan"]["node"] is None
    assert out["default/orphan"]["gated"] is True
    assert out["default/orphan"]["message"] == (
        'DynamicResources: resourceclaim.resource.k8s.io "nope" not found'
    )


def taint_rule(name: str, *, device: str | None = None, effect: str = "NoSchedule") -> Any:
    selector: dict[str, Any] = {"driver": "gpu.example.com", "pool": "n1"}
    if device is not None:
        selector["device"] = device
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": name},
        "spec": {
            "deviceSelector": selector,
            "taint": {"key": "example.com/fault", "value": "fan", "effect": effect},
        },
    }


def tolerating(raw: dict[str, Any]) -> dict[str, Any]:
    raw["spec"]["devices"]["requests"][0]["exactly"]["tolerations"] = [
        {"key": "example.com/fault", "operator": "Exists", "effect": "NoSchedule"}
    ]
    return raw


def test_a_device_taint_rule_takes_its_devices_away_unless_tolerated() -> None:
    # upstream's DeviceTaintRule (GA in 1.37): its taint applies to every device it selects,
    # as if the slice carried it; a request's toleration lets it through
    out = simulate(
        node("n1"),
        GPU_CLASS,
        gpu_slice("n1", 2),
        taint_rule("gpu-0-fan", device="gpu-0"),
        *(claim(f"c{i}") for i in range(2)),
        *(gpu_pod(f"p{i}", f"c{i}") for i in range(2)),
    )
    placed = sorted(str(out[f"default/p{i}"]["node"]) for i in range(2))
    assert placed == ["None", "n1"]  # gpu-1 only
    out = simulate(
        node("n1"),
        GPU_CLASS,
        gpu_slice("n1", 2),
        taint_rule("whole-pool"),  # no device named: every device of the pool
        claim("c0"),
        gpu_pod("p0", "c0"),
        tolerating(claim("c1")),
        gpu_pod("p1", "c1"),
    )
    assert out["default/p0"]["node"] is None
    assert out["default/p0"]["reasons"] == {"n1": ["cannot allocate all claims"]}
    assert out["default/p1"]["node"] == "n1"
    # a rule with the None effect only marks the devices: they stay usable
    out = simulate(
        node("n1"),
        GPU_CLASS,
        gpu_slice("n1", 1),
        taint_rule("informational", effect="None"),
        claim("c0"),
        gpu_pod("p0", "c0"),
    )
    assert out["default/p0"]["node"] == "n1"
