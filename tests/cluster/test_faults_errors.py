"""Fault injection (rates, status codes, latency, admin endpoint) and clean `Status` errors for
malformed requests: bad JSON, unknown resources, wrong methods, oversized bodies."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from berth.cluster import EmbeddedCluster, FaultRule

from .conftest import api_client, pod_body


@pytest.fixture(scope="module")
def faulty() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=1, admin=True, max_body_bytes=64 * 1024) as c:
        yield c


def _request(
    c: EmbeddedCluster, method: str, path: str, body: bytes | None = None, ctype: str = ""
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(c.url + path, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_error_rate_per_verb_and_subresource(faulty: EmbeddedCluster) -> None:
    v1 = client.CoreV1Api(api_client(faulty))
    v1.create_namespaced_pod("default", pod_body("f1"))
    faulty.faults.set_rules(FaultRule(verb="create", resource="pods/binding", rate=1.0, status=503))
    try:
        with pytest.raises(ApiException) as exc:
            v1.create_namespaced_pod_binding(
                "f1", "default", {"target": {"name": "node-001"}}, _preload_content=False
            )
        assert exc.value.status == 503
        assert json.loads(exc.value.body)["reason"] == "ServiceUnavailable"
        v1.create_namespaced_pod("default", pod_body("f2"))  # plain pod creates are untouched
    finally:
        faulty.faults.clear()
    v1.create_namespaced_pod_binding(
        "f1", "default", {"target": {"name": "node-001"}}, _preload_content=False
    )


def test_partial_rate_and_latency(faulty: EmbeddedCluster) -> None:
    faulty.faults.seed = 1
    faulty.faults.set_rules(FaultRule(verb="list", resource="nodes", rate=0.5, status=500))
    try:
        codes = [_request(faulty, "GET", "/api/v1/nodes")[0] for _ in range(60)]
    finally:
        faulty.faults.clear()
    assert set(codes) == {200, 500} and 10 < codes.count(500) < 50
    faulty.faults.set_rules(FaultRule(verb="get", latency=0.2))
    try:
        start = time.monotonic()
        assert _request(faulty, "GET", "/api/v1/nodes/node-001")[0] == 200
        assert time.monotonic() - start >= 0.2
    finally:
        faulty.faults.clear()


def test_admin_endpoint_sets_rules(faulty: EmbeddedCluster) -> None:
    rules = {"rules": [{"verb": "get", "resource": "nodes", "rate": 1.0, "status": 429}]}
    code, body = _request(faulty, "PUT", "/berth-admin/faults", json.dumps(rules).encode())
    assert code == 200 and body["rules"][0]["status"] == 429
    try:
        code, body = _request(faulty, "GET", "/api/v1/nodes/node-001")
        assert code == 429 and body["kind"] == "Status" and body["reason"] == "TooManyRequests"
    finally:
        _request(faulty, "PUT", "/berth-admin/faults", b'{"rules": []}')
    assert _request(faulty, "GET", "/api/v1/nodes/node-001")[0] == 200
    code, body = _request(faulty, "PUT", "/berth-admin/faults", b"not json")
    assert code == 400 and body["kind"] == "Status"


@pytest.mark.parametrize(
    ("method", "path", "body", "ctype", "code", "reason"),
    [
        ("POST", "/api/v1/namespaces/default/pods", b"{bad", "application/json", 400, "BadRequest"),
        ("POST", "/api/v1/namespaces/default/pods", b"[1]", "application/json", 400, "BadRequest"),
        ("GET", "/api/v1/widgets", None, "", 404, "NotFound"),
        ("GET", "/api/v1/namespaces/default/pods/absent", None, "", 404, "NotFound"),
        (
            "PUT",
            "/api/v1/namespaces/default/pods",
            b"{}",
            "application/json",
            405,
            "MethodNotAllowed",
        ),
        ("POST", "/api/v1/nodes/node-001", b"{}", "application/json", 405, "MethodNotAllowed"),
        ("GET", "/api/v1/namespaces/default/pods/x/binding", None, "", 405, "MethodNotAllowed"),
        (
            "PATCH",
            "/api/v1/nodes/node-001",
            b"{}",
            "application/yaml",
            415,
            "UnsupportedMediaType",
        ),
        # server-side apply without a field manager (upstream: PatchOptions are invalid)
        ("PATCH", "/api/v1/nodes/node-001", b"{}", "application/apply-patch+yaml", 422, "Invalid"),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"{" + b" " * 70000 + b"}",
            "application/json",
            413,
            "RequestEntityTooLarge",
        ),
        ("GET", "/api/v1/pods?labelSelector=a%20in%20(", None, "", 400, "BadRequest"),
        ("GET", "/api/v1/pods?watch=true&resourceVersion=abc", None, "", 400, "BadRequest"),
    ],
)
def test_malformed_requests_get_status(
    faulty: EmbeddedCluster,
    method: str,
    path: str,
    body: bytes | None,
    ctype: str,
    code: int,
    reason: str,
) -> None:
    got_code, got = _request(faulty, method, path, body, ctype)
    assert (got_code, got["kind"], got["reason"]) == (code, "Status", reason)
    assert got["status"] == "Failure" and got["code"] == code and got["message"]


@pytest.mark.parametrize("path", ["/apis/nope.io/v1/things", "/nothing/here", "/apis/nope.io"])
def test_paths_outside_the_api_get_the_plain_404(faulty: EmbeddedCluster, path: str) -> None:
    """kube-apiserver's mux: a path no API group serves is Go's plain-text 404, not a Status
    (kubectl reports the resource type it cannot map)."""
    with urllib.request.urlopen(faulty.url + "/version") as ok:
        assert ok.status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(faulty.url + path)
    assert err.value.code == 404
    assert err.value.read() == b"404 page not found\n"


def test_discovery_documents(faulty: EmbeddedCluster) -> None:
    assert _request(faulty, "GET", "/version")[1]["gitVersion"].startswith("v1.37")
    assert _request(faulty, "GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"] for g in _request(faulty, "GET", "/apis")[1]["groups"]}
    assert groups == {
        "admissionregistration.k8s.io",
        "apps",
        "batch",
        "discovery.k8s.io",
        "events.k8s.io",
        "coordination.k8s.io",
        "policy",
        "scheduling.k8s.io",
        "scheduling.x-k8s.io",
        "storage.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
    }
    core = {r["name"] for r in _request(faulty, "GET", "/api/v1")[1]["resources"]}
    assert {
        "pods",
        "pods/status",
        "pods/binding",
        "pods/eviction",
        "nodes",
        "nodes/status",
        "events",
        "configmaps",
        "namespaces",
        "bindings",
    } <= core
    pg = _request(faulty, "GET", "/apis/scheduling.x-k8s.io/v1alpha1")[1]["resources"]
    assert pg[0]["name"] == "podgroups" and pg[0]["namespaced"] is True
