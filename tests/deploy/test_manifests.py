"""The manifests under deploy/ are valid Kubernetes 1.37 objects (official schemas, strict), the
shipped configuration loads, and the RBAC grants what `berth run` calls and nothing broader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from berth.config import parse_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            # kube-scheduler's own configuration is not an API object (no OpenAPI schema):
            # tests/extender/test_deploy_config.py checks it against upstream's types.
            if doc and not str(doc.get("apiVersion", "")).startswith("kubescheduler.config"):
                out.append((f"{path.name}[{i}] {doc['kind']}", doc))
    return out


@pytest.mark.parametrize(("name", "doc"), documents(), ids=[n for n, _ in documents()])
def test_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.37", strict=True)


def test_shipped_config_loads() -> None:
    cm = next(d for _, d in documents() if d["kind"] == "ConfigMap")
    config = parse_config(yaml.safe_load(cm["data"]["config.yaml"]))
    assert "berth" in config.profiles
    assert config.model.leaderElection.resourceName == "berth"


def rules() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, d in documents():
        if d["kind"] in ("ClusterRole", "Role"):
            out.extend(d["rules"])
    return out


def allowed(group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
        for r in rules()
    )


@pytest.mark.parametrize(
    ("group", "resource", "verb"),
    [
        ("", "pods", "watch"),
        ("", "nodes", "list"),
        ("", "namespaces", "watch"),
        ("", "pods/binding", "create"),
        ("", "pods/status", "patch"),
        ("", "pods", "delete"),  # preemption victims
        ("events.k8s.io", "events", "create"),
        ("events.k8s.io", "events", "patch"),  # series of repeated events
        ("coordination.k8s.io", "leases", "update"),
        ("", "persistentvolumeclaims", "watch"),
        ("", "persistentvolumes", "watch"),
        ("storage.k8s.io", "storageclasses", "watch"),
        ("storage.k8s.io", "csinodes", "watch"),
        ("", "persistentvolumeclaims", "patch"),  # selected-node annotation
        ("", "persistentvolumes", "update"),  # claimRef of a statically bound PV
    ],
)
def test_rbac_grants_what_berth_calls(group: str, resource: str, verb: str) -> None:
    assert allowed(group, resource, verb)


def test_rbac_is_least_privilege() -> None:
    for r in rules():
        assert "*" not in r["verbs"] and "*" not in r["resources"] and "*" not in r["apiGroups"]
        assert "secrets" not in r["resources"]
        assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(r["verbs"])
        if "delete" in r["verbs"]:
            # The one exception: preemption deletes victim pods, in a rule of its own that
            # grants nothing else (no other verb, no other resource, no subresource).
            assert r == {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}
    assert not allowed("", "nodes", "update")
    assert not allowed("", "nodes", "delete")
    assert not allowed("", "pods/binding", "delete")
    assert not allowed("", "pods", "create")
    # what Berth never calls (checked by enforcing the manifest: tests/live/test_rbac.py)
    assert not allowed("", "pods/status", "update")
    assert not allowed("", "persistentvolumeclaims", "update")
    assert not allowed("", "persistentvolumes", "patch")
    assert not allowed("", "events", "create")  # core/v1: Berth writes events.k8s.io/v1
    # events go through events.k8s.io/v1 only, created and patched, never updated
    assert not allowed("", "events", "create") and not allowed("", "events", "patch")
    assert not allowed("events.k8s.io", "events", "update")
