"""Malformed objects that stopped a simulated controller for good: a binding to a list-valued
node name killed the kubelet, five PDB shapes the disruption controller, a PV with
`claimRef: "x"` broke every volume pass; a clean stop then exited 1 and lost the last
acknowledged write. Each object is refused at the API now, and one that gets into the store
anyway (an older data directory) is skipped while the controller goes on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster
from berth.cluster.resources import PDBS, PVCS, PVS

from .conftest import ClusterProcess, call, pod

pytestmark = pytest.mark.timeout(120)
NS = "/api/v1/namespaces/default"


def eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def running(c: EmbeddedCluster, name: str) -> bool:
    code, body = call(c.url + f"{NS}/pods/{name}")
    return code == 200 and body.get("status", {}).get("phase") == "Running"


def raw(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    """An object as the store holds it, for putting a malformed one past the API."""
    meta = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": "2026-01-01T00:00:00Z"}
    if kind == "PodDisruptionBudget":
        meta["namespace"] = "default"
    api = "policy/v1" if kind == "PodDisruptionBudget" else "v1"
    return {"apiVersion": api, "kind": kind, "metadata": meta, **fields}


def test_a_list_valued_node_name_is_refused_and_the_kubelet_goes_on() -> None:
    with EmbeddedCluster(nodes=2) as c:
        for name in ("victim", "next"):
            assert call(c.url + f"{NS}/pods", method="POST", body=pod(name))[0] == 201
        code, status = call(
            c.url + f"{NS}/pods/victim/binding",
            method="POST",
            body={"target": {"name": ["node-001"]}},
        )
        assert code == 400 and "of type string" in status["message"]
        code, status = call(c.url + f"{NS}/pods", method="POST", body=pod("direct", nodeName=["x"]))
        assert code == 400, status
        code, _ = call(
            c.url + f"{NS}/pods/next/binding", method="POST", body={"target": {"name": "node-001"}}
        )
        assert code == 201
        assert eventually(lambda: running(c, "next")), "the kubelet stopped"


BAD_PDBS = [
    {"minAvailable": "abc", "selector": {"matchLabels": {"app": "web"}}},
    {"maxUnavailable": "x%", "selector": {"matchLabels": {"app": "web"}}},
    {"minAvailable": {"a": 1}, "selector": {"matchLabels": {"app": "web"}}},
    {"minAvailable": 1, "selector": "app=web"},
    {"minAvailable": 1, "selector": {"matchExpressions": ["app"]}},
]


def test_malformed_pdbs_are_refused_and_one_in_the_store_stops_nothing() -> None:
    with EmbeddedCluster(nodes=1) as c:
        for i, spec in enumerate(BAD_PDBS):
            body = {"metadata": {"name": f"bad-{i}"}, "spec": spec}
            code, status = call(
                c.url + "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
                method="POST",
                body=body,
            )
            assert code in (400, 422), (spec, status)
        # Past the API (as an older data directory may hold them): the controller skips them.
        for i, spec in enumerate(BAD_PDBS):
            obj = raw("PodDisruptionBudget", f"stored-{i}", spec=spec)
            c.call(lambda core, o=obj: core.store.create(PDBS, o))
        good = {
            "metadata": {"name": "good"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        }
        code, _ = call(
            c.url + "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            method="POST",
            body=good,
        )
        assert code == 201
        body = pod("web")
        body["metadata"]["labels"] = {"app": "web"}
        assert call(c.url + f"{NS}/pods", method="POST", body=body)[0] == 201

        def counted() -> bool:
            _, pdb = call(c.url + "/apis/policy/v1/namespaces/default/poddisruptionbudgets/good")
            return pdb.get("status", {}).get("expectedPods") == 1

        assert eventually(counted), "the disruption controller stopped"


def test_a_pv_with_a_string_claim_ref_breaks_no_volume_pass() -> None:
    with EmbeddedCluster(nodes=1) as c:
        pv = {
            "metadata": {"name": "bad"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "claimRef": "x",
            },
        }
        code, status = call(c.url + "/api/v1/persistentvolumes", method="POST", body=pv)
        assert code == 400 and "claimRef" in status["message"]
        stored = raw("PersistentVolume", "stored-bad", spec=pv["spec"])
        c.call(lambda core: core.store.create(PVS, stored))
        good = {
            "metadata": {"name": "good"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]},
        }
        assert call(c.url + "/api/v1/persistentvolumes", method="POST", body=good)[0] == 201
        claim = {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "",
            },
        }
        assert call(c.url + f"{NS}/persistentvolumeclaims", method="POST", body=claim)[0] == 201

        def bound() -> bool:
            obj = c.call(lambda core: core.store.get(PVCS, "default", "data"))
            return bool(obj and obj.get("status", {}).get("phase") == "Bound")

        assert eventually(bound), "the volume controller stopped"


@pytest.mark.parametrize(
    "persist", [[], ["--persist-interval", "0.2"]], ids=["default", "write-behind"]
)
def test_a_clean_stop_after_bad_input_exits_0_and_keeps_the_last_write(
    tmp_path: Path, persist: list[str]
) -> None:
    data = tmp_path / "data"
    c = ClusterProcess(tmp_path, "--nodes", "1", "--data-dir", str(data), *persist)
    c.start()
    try:
        assert call(c.url + f"{NS}/pods", method="POST", body=pod("p"))[0] == 201
        call(c.url + f"{NS}/pods/p/binding", method="POST", body={"target": {"name": ["node-001"]}})
        for i, spec in enumerate(BAD_PDBS):
            call(
                c.url + "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
                method="POST",
                body={"metadata": {"name": f"bad-{i}"}, "spec": spec},
            )
        time.sleep(0.3)
        code, _ = call(
            c.url + f"{NS}/configmaps", method="POST", body={"metadata": {"name": "last"}}
        )
        assert code == 201
    finally:
        assert c.stop() == 0, c.log.read_text()[-2000:]
    c.start()
    try:
        assert call(c.url + f"{NS}/configmaps/last")[0] == 200
    finally:
        assert c.stop() == 0
