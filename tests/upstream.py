"""The real control plane for the tests: one per session, started on first use and reset before
each test to what it held when it became ready, so a test sees a fresh cluster of its own nodes
(the same shape as the embedded cluster's) at a few API calls' cost instead of a restart.

`UpstreamCluster` is what a test gets: the EmbeddedCluster surface that exists on a real server
(`kubeconfig_path`, `url`, `ca_path`, `add_nodes`, `denials`, `requests_by`), the denials read
from kube-apiserver's audit log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.cluster.nodes import NodeShape
from berth.secretfile import write_private
from berth.upstream import ControlPlane, Options, UpstreamError, find_binary
from berth.upstream.controlplane import kubeconfig_text

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
# The CSI provisioner the tests' StorageClasses name, simulated beside the real PV controller.
PROVISIONER = "csi.example.com"  # a CSI driver name is a DNS subdomain
UNCACHED = "leases.coordination.k8s.io"
# Created by the control plane itself and needed by it: never deleted by a reset.
_SYSTEM_SERVICE_OBJECTS = {("endpoints", "default", "kubernetes")}
# Workloads first (else their controllers recreate what a reset deletes), pods after them.
_FIRST = (
    "deployments",
    "statefulsets",
    "daemonsets",
    "cronjobs",
    "jobs",
    "replicasets",
    "replicationcontrollers",
)
_LAST = ("pods", "persistentvolumeclaims", "persistentvolumes", "nodes", "namespaces")


def ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable_reason() -> str | None:
    """Why the upstream half cannot run here, or None when it can."""
    if os.environ.get("BERTH_UPSTREAM") == "skip":
        return "Go is not installed: the real control plane cannot be built"
    try:
        find_binary()
    except UpstreamError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Resource:
    group_version: str  # "v1" or "apps/v1"
    name: str
    namespaced: bool
    collection_delete: bool

    def path(self, namespace: str = "") -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if namespace:
            return f"{base}/namespaces/{namespace}/{self.name}"
        return f"{base}/{self.name}"


@dataclass(frozen=True)
class AuditDenial:
    """A request kube-apiserver answered 403, from its audit log."""

    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    message: str


class UpstreamSession:
    """The session's control plane (simulated kubelet and audit log on) and its baseline."""

    def __init__(self) -> None:
        self.plane = ControlPlane(
            Options(
                kubelet=True,
                provisioners=(PROVISIONER,),
                audit=True,
                # Leases are watched straight from etcd, so that compacting it provokes a watch
                # from an expired resourceVersion at once (the watch cache replays a snapshot
                # until it has dropped events, which takes 75 s at least).
                extra_args={"kube-apiserver": (f"--watch-cache-sizes={UNCACHED}#0",)},
            )
        )
        self.baseline: set[str] = set()
        self.resources: list[Resource] = []

    def start(self) -> None:
        self.plane.start()
        self.apply_file(DEPLOY / "podgroup-crd.yaml")
        self._wait_established("podgroups.scheduling.x-k8s.io")
        self.resources = self._discover()
        self.baseline = {uid for _, _, uid, _ in self._objects()}

    def stop(self) -> None:
        self.plane.stop()

    # -- API helpers ---------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)
    ) -> Any:
        code, answer = self.plane.request(method, path, body)
        if code not in ok:
            raise AssertionError(f"{method} {path}: {code} {answer}")
        return answer

    def apply_file(self, path: Path) -> None:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                self.create(doc)

    def create(self, doc: dict[str, Any]) -> Any:
        """POST one manifest document (its kind's plural from discovery-free rules below)."""
        group_version = doc["apiVersion"]
        plural = _PLURALS.get(doc["kind"]) or doc["kind"].lower() + "s"
        namespace = doc["metadata"].get("namespace", "")
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
        return self.call("POST", path, doc, ok=(201,))

    def _wait_established(self, crd: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
            conds = {
                c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []
            }
            if conds.get("Established") == "True":
                return
            time.sleep(0.1)
        raise AssertionError(f"CRD {crd} not established in {timeout}s")

    def _discover(self) -> list[Resource]:
        versions = ["v1"]
        for group in self.call("GET", "/apis")["groups"]:
            versions.append(group["preferredVersion"]["groupVersion"])
        found: list[Resource] = []
        for gv in versions:
            listing = self.call("GET", "/api/v1" if gv == "v1" else f"/apis/{gv}")
            for r in listing["resources"]:
                verbs = set(r.get("verbs") or ())
                if "/" in r["name"] or not {"list", "delete"} <= verbs:
                    continue
                found.append(Resource(gv, r["name"], r["namespaced"], "deletecollection" in verbs))
        # events.k8s.io/v1 events are core/v1 events: one of the two is enough
        return [r for r in found if not (r.name == "events" and r.group_version != "v1")]

    def _objects(self) -> Iterator[tuple[Resource, str, str, dict[str, Any]]]:
        """(resource, namespace, uid, object) of everything stored."""

        def listing(resource: Resource) -> tuple[Resource, list[dict[str, Any]]]:
            code, answer = self.plane.request("GET", resource.path())
            return resource, (answer or {}).get("items", []) if code == 200 else []

        with ThreadPoolExecutor(max_workers=8) as pool:
            for resource, items in pool.map(listing, self.resources):
                for obj in items:
                    meta = obj["metadata"]
                    yield resource, meta.get("namespace", ""), meta["uid"], obj

    # -- reset ---------------------------------------------------------------------------------

    def reset(self, *, nodes: int, zones: int, shape: NodeShape, timeout: float = 90) -> None:
        """Delete everything created since the baseline, then create `nodes` fresh nodes."""
        deadline = time.monotonic() + timeout
        stripped = False
        while True:
            left = [
                (r, ns, obj)
                for r, ns, uid, obj in self._objects()
                if uid not in self.baseline
                and (r.name, ns, obj["metadata"]["name"]) not in _SYSTEM_SERVICE_OBJECTS
            ]
            if not left:
                break
            if time.monotonic() > deadline:
                names = sorted(f"{r.name}/{ns}/{o['metadata']['name']}" for r, ns, o in left)
                raise AssertionError(f"reset: still there after {timeout:.0f}s: {names[:20]}")
            self._delete(left, strip_finalizers=stripped)
            # Finalizers (PV/PVC protection, namespaces) usually clear within seconds; a test
            # that leaves one stuck must not poison the next test.
            stripped = time.monotonic() > deadline - timeout / 2
            time.sleep(0.2)
        if nodes:
            self.plane.create_nodes(count=nodes, total=nodes, zones=zones, shape=shape)

    def _delete(
        self, left: list[tuple[Resource, str, dict[str, Any]]], *, strip_finalizers: bool
    ) -> None:
        def rank(item: tuple[Resource, str, dict[str, Any]]) -> int:
            name = item[0].name
            if name in _FIRST:
                return 0
            return 2 + _LAST.index(name) if name in _LAST else 1

        body = {"gracePeriodSeconds": 0, "propagationPolicy": "Background"}
        for stage in sorted({rank(item) for item in left}):
            batch = [item for item in left if rank(item) == stage]

            def delete(item: tuple[Resource, str, dict[str, Any]]) -> None:
                resource, ns, obj = item
                meta = obj["metadata"]
                path = f"{resource.path(ns)}/{meta['name']}"
                if strip_finalizers and meta.get("finalizers"):
                    self.plane.request(
                        "PATCH",
                        path,
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
                if meta.get("deletionTimestamp") is None or resource.name == "pods":
                    self.plane.request("DELETE", path, body)

            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(delete, batch))

    def audit_mark(self) -> int:
        try:
            return self.plane.audit_log.stat().st_size
        except FileNotFoundError:
            return 0

    def audit_since(self, mark: int) -> Iterator[dict[str, Any]]:
        import json

        with self.plane.audit_log.open("rb") as f:
            f.seek(mark)
            for line in f:
                if line.strip():
                    yield json.loads(line)


_PLURALS = {
    "CustomResourceDefinition": "customresourcedefinitions",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "PriorityClass": "priorityclasses",
    "StorageClass": "storageclasses",
    "PersistentVolume": "persistentvolumes",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PodDisruptionBudget": "poddisruptionbudgets",
}


class UpstreamCluster:
    """A test's view of the session's control plane after a reset."""

    kind = "upstream"

    def __init__(
        self, session: UpstreamSession, *, zones: int, shape: NodeShape, nodes: int
    ) -> None:
        self.session = session
        self.plane = session.plane
        self._zones = zones
        self._shape = shape
        self._nodes = nodes
        self._mark = session.audit_mark()

    @property
    def url(self) -> str:
        return self.plane.url

    @property
    def kubeconfig_path(self) -> Path:
        return self.plane.kubeconfig_path

    @property
    def ca_path(self) -> Path:
        return self.plane.ca_path

    def add_nodes(self, *, count: int) -> list[dict[str, Any]]:
        created = self.plane.create_nodes(
            count=count,
            first=self._nodes + 1,
            total=self._nodes + count,
            zones=self._zones,
            shape=self._shape,
        )
        self._nodes += count
        return created

    def service_account_kubeconfig(self, *, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig authenticating as the ServiceAccount (a TokenRequest token, 1 h)."""
        token = self.session.call(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
            ok=(201,),
        )["status"]["token"]
        text = kubeconfig_text(server=self.url, ca=self.ca_path, user=name, token=token)
        return write_private(path, text.encode())

    def _audit(self) -> Iterator[dict[str, Any]]:
        return self.session.audit_since(self._mark)

    @property
    def denials(self) -> list[AuditDenial]:
        out = []
        for event in self._audit():
            status = event.get("responseStatus") or {}
            if status.get("code") != 403:
                continue
            ref = event.get("objectRef") or {}
            out.append(
                AuditDenial(
                    user=event["user"]["username"],
                    verb=event["verb"],
                    resource=ref.get("resource", ""),
                    subresource=ref.get("subresource", ""),
                    namespace=ref.get("namespace", ""),
                    message=status.get("message", ""),
                )
            )
        return out

    def requests_by(self, user: str) -> int:
        return sum(1 for e in self._audit() if e["user"]["username"] == user)

    def granted(self, user: str) -> set[tuple[str, str, str, str]]:
        """(user, verb, group, resource[/subresource]) of the requests `user` was allowed."""
        out = set()
        for e in self._audit():
            if e["user"]["username"] != user or (e.get("responseStatus") or {}).get("code") == 403:
                continue
            ref = e.get("objectRef") or {}
            resource = ref.get("resource", "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            out.add((user, e["verb"], ref.get("apiGroup", ""), resource))
        return out


SERVERS = ("embedded", "upstream")
# Skip reasons shared by many tests.
needs_faults = pytest.mark.embedded_only(
    "injects faults into the API server (FaultRule), which only the embedded one has"
)


def clusters(
    request: Any,
    *,
    nodes: int = 3,
    zones: int = 2,
    cpu: str = "4",
    memory: str = "16Gi",
    **embedded: Any,
) -> Iterator[Any]:
    """The body of a `cluster` fixture parametrised over SERVERS: an EmbeddedCluster, or the
    session's control plane reset to the same nodes. A test marked
    `@pytest.mark.embedded_only("why")` is skipped on upstream with that reason."""
    from berth.cluster import EmbeddedCluster

    if request.param == "embedded":
        with EmbeddedCluster(
            nodes=nodes, zones=zones, node_cpu=cpu, node_memory=memory, **embedded
        ) as c:
            yield c
        return
    yield upstream_cluster(request, nodes=nodes, zones=zones, cpu=cpu, memory=memory)


def upstream_cluster(
    request: Any, *, nodes: int, zones: int, cpu: str, memory: str
) -> UpstreamCluster:
    """The session's control plane, reset to `nodes` fresh nodes (or the test skipped, when it
    is marked embedded_only)."""
    marker = request.node.get_closest_marker("embedded_only")
    if marker is not None:
        pytest.skip(f"embedded only: {marker.args[0]}")
    session: UpstreamSession = request.getfixturevalue("upstream_session")
    shape = NodeShape(cpu=cpu, memory=memory)
    session.reset(nodes=nodes, zones=zones, shape=shape)
    return UpstreamCluster(session, zones=zones, shape=shape, nodes=nodes)
