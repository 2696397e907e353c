"""Hostile clients of the embedded API server: stalled half-open connections kept forever,
unbounded connections and requests in flight, a body that never arrives, `timeoutSeconds=nan`
that never ends, Python exception text in 400s, and objects upstream refuses (negative requests,
unknown toleration operators, `nodeAffinity: 5`, another API version) stored anyway."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from berth.cluster import EmbeddedCluster

from .conftest import ClusterProcess, call, kubectl, needs_kubectl, pod, report

pytestmark = pytest.mark.timeout(120)


def closed_by_server(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_stalled_connections_are_closed_by_the_header_timeout(tmp_path: Path) -> None:
    c = ClusterProcess(tmp_path, "--nodes", "1", "--header-timeout", "1").start()
    try:
        stalled = []
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
            s.sendall(b"GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
            stalled.append(s)
        assert call(c.url + "/api/v1/nodes")[0] == 200  # others are still served
        started = time.monotonic()
        closed = sum(
            closed_by_server(s, max(0.1, 6 - (time.monotonic() - started))) for s in stalled
        )
        report(
            "stalled_connections_header_timeout_1s",
            {"opened": 300, "closed": closed, "seconds": round(time.monotonic() - started, 2)},
        )
        assert closed == 300, closed
        for s in stalled:
            s.close()
    finally:
        assert c.stop() == 0


def test_connections_beyond_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    c = ClusterProcess(tmp_path, "--nodes", "1", "--max-connections", "20").start()
    try:
        time.sleep(0.3)  # the start-up probe's connection is gone
        held = [socket.create_connection(("127.0.0.1", c.port), timeout=5) for _ in range(40)]
        time.sleep(0.3)
        refused = sum(closed_by_server(s, 0.2) for s in held)
        assert refused == 20, refused
        for s in held:
            s.close()
        time.sleep(0.3)
        assert call(c.url + "/api/v1/nodes")[0] == 200
    finally:
        assert c.stop() == 0


def test_requests_in_flight_are_capped_and_a_stalled_body_times_out(tmp_path: Path) -> None:
    c = ClusterProcess(
        tmp_path, "--nodes", "1", "--max-requests-inflight", "1", "--request-timeout", "5"
    ).start()
    try:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
        s.sendall(
            b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        deadline = time.monotonic() + 4  # the stalled body holds the one slot for 5 s
        while True:
            code, status = call(c.url + "/api/v1/nodes")
            if code == 429 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert code == 429 and status["details"]["retryAfterSeconds"] == 1, status
        s.settimeout(10)
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 504"), answer[:100]
        s.close()
        assert call(c.url + "/api/v1/nodes")[0] == 200
    finally:
        assert c.stop() == 0


def test_watch_timeouts_are_integers() -> None:
    with EmbeddedCluster(nodes=1) as c:
        for bad in ("nan", "1.5", "inf", "-", ""):  # upstream's strconv.ParseInt refuses all
            code, status = call(c.url + f"/api/v1/pods?watch=1&timeoutSeconds={bad}", timeout=5)
            assert code == 400 and "timeoutSeconds" in status["message"], (bad, status)


def test_every_watch_ends() -> None:
    with EmbeddedCluster(nodes=1, min_request_timeout=1) as c:
        started = time.monotonic()
        assert call(c.url + "/api/v1/nodes?watch=1", timeout=10)[0] == 200
        assert time.monotonic() - started < 5  # 1x to 2x --min-request-timeout, plus slack


PYTHON_WORDS = (
    "TypeError",
    "AttributeError",
    "KeyError",
    "ValueError",
    "object has no attribute",
    "{'",
)


def test_400s_never_show_python_exception_text() -> None:
    with EmbeddedCluster(nodes=1) as c:
        url = c.url + "/api/v1/namespaces/default"
        assert call(url + "/pods", method="POST", body=pod("p"))[0] == 201
        bad = [
            ("POST", "/pods", {"metadata": "x"}, "application/json"),
            ("POST", "/pods", {"metadata": {"name": "q"}, "spec": "x"}, "application/json"),
            (
                "POST",
                "/pods",
                {"metadata": {"name": "q"}, "spec": {"containers": [5]}},
                "application/json",
            ),
            ("PATCH", "/pods/p", [{"op": 5, "path": "/x"}], "application/json-patch+json"),
            ("PATCH", "/pods/p", [{"opx": "add"}], "application/json-patch+json"),
            ("PATCH", "/pods/p", {"spec": {"tolerations": "x"}}, "application/merge-patch+json"),
            ("POST", "/pods/p/binding", {"target": 5}, "application/json"),
            ("POST", "/pods/p/eviction", {"deleteOptions": 5}, "application/json"),
            ("POST", "/configmaps", "[", "application/json"),
        ]
        for method, path, body, ctype in bad:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            code, status = call(url + path, method=method, raw=raw, content_type=ctype)
            assert 400 <= code < 500, (path, body, status)
            message = status["message"]
            assert not any(w in message for w in PYTHON_WORDS), (path, body, message)


BAD_PODS = {
    "negative-requests": {
        "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "-1"}}}]
    },
    "unknown-toleration-operator": {
        "containers": [{"name": "c", "image": "i"}],
        "tolerations": [{"key": "k", "operator": "Sometimes", "effect": "NoSchedule"}],
    },
    "node-affinity-5": {
        "containers": [{"name": "c", "image": "i"}],
        "affinity": {"nodeAffinity": 5},
    },
}


@needs_kubectl
def test_objects_upstream_refuses_are_not_stored(tmp_path: Path) -> None:
    with EmbeddedCluster(nodes=1) as c:
        manifests = [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
            for name, spec in BAD_PODS.items()
        ]
        expected = {
            "negative-requests": "must be greater than or equal to 0",
            "unknown-toleration-operator": 'Unsupported value: "Sometimes"',
            "node-affinity-5": "cannot unmarshal number into Go struct field Affinity",
        }
        for m in manifests:
            f = tmp_path / f"{m['metadata']['name']}.json"
            f.write_text(json.dumps(m))
            got = kubectl(c.kubeconfig_path, "create", "-f", str(f))
            assert got.returncode != 0, m
            assert expected[m["metadata"]["name"]] in got.stderr, got.stderr
        other_version = {
            **manifests[0],
            "apiVersion": "apps/v1",
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
        code, status = call(
            c.url + "/api/v1/namespaces/default/pods", method="POST", body=other_version
        )
        assert code == 400 and "does not match the expected API version" in status["message"]
        listed = kubectl(c.kubeconfig_path, "get", "pods", "-o", "name")
        assert listed.returncode == 0 and listed.stdout.strip() == "", listed.stdout
