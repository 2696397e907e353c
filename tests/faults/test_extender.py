"""The extender's weak spots: its bind verb bound any pod (kube-system included) for anyone who
could reach it, with no authentication option and no PodUID check; nothing capped its requests
in flight; a long decision held `/healthz` for as long as it ran."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from berth.cluster import EmbeddedCluster
from berth.cluster.tls import generate
from tests.builders import node
from tests.builders import pod as builder_pod
from tests.extender.conftest import args as extender_args
from tests.extender.conftest import post, serving

from .conftest import STARTED, call, env_without_cluster, free_port, report

pytestmark = pytest.mark.timeout(120)


class Extender:
    """`berth extender` as a child process against an embedded cluster."""

    def __init__(self, tmp: Path, kubeconfig: Path | None, *extra: str) -> None:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "berth",
            "extender",
            "--bind-address",
            f"127.0.0.1:{self.port}",
        ]
        if kubeconfig is not None:
            cmd += ["--kubeconfig", str(kubeconfig)]
        self.scheme = "https" if "--tls-cert" in extra else "http"
        self.proc = subprocess.Popen(
            [*cmd, *extra],
            env=env_without_cluster(tmp),
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "extender.log").open("w"),
        )
        STARTED.append(self.proc)
        self.log = tmp / "extender.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wait(self, ctx: ssl.SSLContext | None = None) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2, context=ctx) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError(self.log.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _system_pod(c: EmbeddedCluster) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "critical"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    code, created = call(c.url + "/api/v1/namespaces/kube-system/pods", method="POST", body=body)
    assert code == 201, created
    return str(created["metadata"]["uid"])


def _node_of(c: EmbeddedCluster) -> str | None:
    _, p = call(c.url + "/api/v1/namespaces/kube-system/pods/critical")
    return p["spec"].get("nodeName")


def _bind(
    url: str, uid: str, *, token: str | None = None, ctx: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    body = {"PodName": "critical", "PodNamespace": "kube-system", "PodUID": uid, "Node": "node-001"}
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + "/berth/bind", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bind_is_refused_without_authentication(tmp_path: Path) -> None:
    with EmbeddedCluster(nodes=1) as c:
        uid = _system_pod(c)
        ext = Extender(tmp_path, c.kubeconfig_path)
        try:
            ext.wait()
            code, out = _bind(ext.url, uid)
            assert code == 403 and "bind verb is disabled" in out["Error"], out
            assert _node_of(c) is None
        finally:
            ext.stop()


def test_bind_with_the_bind_token_and_a_matching_pod_uid(tmp_path: Path) -> None:
    token = tmp_path / "bind.token"
    token.write_text("b1nd-t0ken\n")
    with EmbeddedCluster(nodes=1) as c:
        uid = _system_pod(c)
        ext = Extender(tmp_path, c.kubeconfig_path, "--bind-token-file", str(token))
        try:
            ext.wait()
            assert _bind(ext.url, uid)[0] == 403
            assert _bind(ext.url, uid, token="wrong")[0] == 403
            assert _bind(ext.url, "", token="b1nd-t0ken") == (400, {"Error": "PodUID: required"})
            code, out = _bind(ext.url, "not-its-uid", token="b1nd-t0ken")
            assert code == 200 and "Precondition failed: UID" in out["Error"], out
            assert _node_of(c) is None
            assert _bind(ext.url, uid, token="b1nd-t0ken") == (200, {"Error": ""})
            assert _node_of(c) == "node-001"
        finally:
            ext.stop()


def _client_cert(ca_dir: Path, out: Path) -> tuple[Path, Path]:
    """A client certificate signed by the CA `generate` wrote in `ca_dir`."""
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-scheduler")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out / "client.crt", out / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_bind_with_a_client_certificate_of_the_client_ca(tmp_path: Path) -> None:
    certs = generate(directory=tmp_path / "pki", hosts=["127.0.0.1"])
    client_crt, client_key = _client_cert(tmp_path / "pki", tmp_path)
    with EmbeddedCluster(nodes=1) as c:
        uid = _system_pod(c)
        ext = Extender(
            tmp_path,
            c.kubeconfig_path,
            "--tls-cert",
            str(certs.cert_path),
            "--tls-key",
            str(certs.key_path),
            "--client-ca-file",
            str(certs.ca_path),
        )
        try:
            anonymous = ssl.create_default_context(cafile=str(certs.ca_path))
            ext.wait(anonymous)  # health probes need no certificate
            code, out = _bind(ext.url, uid, ctx=anonymous)
            assert code == 403 and "not authorized to bind" in out["Error"]
            scheduler = ssl.create_default_context(cafile=str(certs.ca_path))
            scheduler.load_cert_chain(client_crt, client_key)
            assert _bind(ext.url, uid, ctx=scheduler) == (200, {"Error": ""})
            assert _node_of(c) == "node-001"
        finally:
            ext.stop()


def test_requests_in_flight_are_capped(tmp_path: Path) -> None:
    ext = Extender(tmp_path, None, "--max-requests-inflight", "1")
    nodes = [node(f"n{i:05d}", labels={"zone": f"z{i % 5}"}) for i in range(3000)]
    body = json.dumps(extender_args(builder_pod("p", cpu="1"), *nodes)).encode()
    try:
        ext.wait()

        def filter_once() -> int:
            req = urllib.request.Request(
                ext.url + "/berth/filter", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status
            except urllib.error.HTTPError as exc:
                assert exc.headers.get("Content-Type", "").startswith("application/json")
                return exc.code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: filter_once(), range(8)))
        report("extender_inflight_cap_1", {"ok": codes.count(200), "refused_429": codes.count(429)})
        assert 200 in codes and 429 in codes, codes
        assert set(codes) <= {200, 429}
    finally:
        ext.stop()


def test_health_answers_while_a_decision_holds_the_engine() -> None:
    started = threading.Event()

    async def main() -> float:
        async with serving() as (url, server):
            original = server.adapter.filter

            def slow_filter(*a: Any, **k: Any) -> Any:
                started.set()
                time.sleep(1.5)  # a 20,000-node decision, as far as the loop is concerned
                return original(*a, **k)

            server.adapter.filter = slow_filter  # type: ignore[method-assign]
            health = f"http://127.0.0.1:{server.port}/healthz"

            def probe() -> float:
                assert started.wait(10)
                t = time.monotonic()
                with urllib.request.urlopen(health, timeout=10) as r:
                    assert r.status == 200
                return time.monotonic() - t

            probing = asyncio.ensure_future(asyncio.to_thread(probe))
            code, _ = await post(f"{url}/filter", extender_args(builder_pod("p"), node("n")))
            assert code == 200
            return await probing

    latency = asyncio.run(main())
    report("extender_health_during_1.5s_decision", {"healthz_ms": round(latency * 1000, 1)})
    assert latency < 0.5, latency
