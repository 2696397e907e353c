"""`berth webhook`'s server: AdmissionReviews in and out over TLS, dry runs answered but not
counted, malformed and oversized bodies refused, metrics, certificate rotation, and the
command's one-line errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from berth.config import parse_config
from berth.config.webhook import WebhookConfiguration
from berth.webhook import server as server_module
from berth.webhook.health import LeaderHealth, _Observation
from berth.webhook.server import WebhookOptions, WebhookServer, certificate_files


def review(uid: str = "u", *, dry_run: bool = False, namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": namespace,
            "name": "p",
            "object": {
                "metadata": {"name": "p"},
                "spec": {"schedulerName": "default-scheduler", "containers": []},
            },
            "dryRun": dry_run,
        },
    }


@asynccontextmanager
async def serving(
    tmp_path: Path, *, healthy: bool = True
) -> AsyncIterator[tuple[WebhookServer, aiohttp.ClientSession, str]]:
    config = parse_config({"webhook": {"rules": [{"namespaces": ["ml"]}]}})
    cert, key, ca = certificate_files(cert_dir=tmp_path / "tls", hosts=["127.0.0.1"])
    h = LeaderHealth(
        connection=None, namespace="kube-system", name="berth", settings=WebhookConfiguration()
    )
    srv = WebhookServer(
        config=config,
        connection=None,
        options=WebhookOptions(bind_address="127.0.0.1:0", tls_cert_file=cert, tls_key_file=key),
        health=h,
    )
    await srv.start()
    context = ssl.create_default_context(cafile=str(ca))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        if healthy:  # observed last, so a slow set-up on a loaded machine cannot make it stale
            import time

            h.observe(
                _Observation(
                    checked_at=time.monotonic(),
                    holder="a:1",
                    renewed_at=time.time(),
                    duration=15,
                    readyz_ok=True,
                )
            )
        try:
            yield srv, session, f"https://127.0.0.1:{srv.port}"
        finally:
            await srv.stop()


async def metric(session: aiohttp.ClientSession, base: str, line: str) -> float:
    async with session.get(base + "/metrics") as r:
        text = await r.text()
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    raise AssertionError(f"{line} not in /metrics")


def test_routes_and_counts_but_not_dry_runs(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path) as (_srv, session, base):
            async with session.post(base + "/mutate", json=review("u1")) as r:
                assert r.status == 200 and r.content_type == "application/json"
                answer = await r.json()
            assert answer["response"]["uid"] == "u1" and answer["response"]["allowed"] is True
            patch = json.loads(base64.b64decode(answer["response"]["patch"]))
            assert {"op": "add", "path": "/spec/schedulerName", "value": "berth"} in patch
            async with session.post(base + "/mutate", json=review("u2", dry_run=True)) as r:
                dry = await r.json()
            assert dry["response"]["patch"] == answer["response"]["patch"]
            async with session.post(base + "/mutate", json=review("u3", namespace="other")) as r:
                assert "patch" not in (await r.json())["response"]
            routed = 'berth_webhook_routed_total{reason="healthy",to="berth"}'
            assert await metric(session, base, routed) == 1.0
            assert (
                await metric(session, base, 'berth_webhook_requests_total{result="routed"}') == 2.0
            )
            assert (
                await metric(session, base, 'berth_webhook_requests_total{result="unchanged"}')
                == 1.0
            )
            assert await metric(session, base, "berth_webhook_berth_healthy") == 1.0

    asyncio.run(body())


def test_unhealthy_berth_sends_pods_to_the_default_scheduler(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path, healthy=False) as (_srv, session, base):
            async with session.get(base + "/readyz") as r:
                assert r.status == 503  # no check has completed
            async with session.post(base + "/mutate", json=review()) as r:
                patch = json.loads(base64.b64decode((await r.json())["response"]["patch"]))
            notes = patch[-1]["value"]
            assert notes["berth.io/routed-to"] == "default-scheduler"
            assert notes["berth.io/routing-reason"].startswith("Berth unavailable: no health check")
            assert not any(op["path"] == "/spec/schedulerName" for op in patch)
            routed = 'berth_webhook_routed_total{reason="not-checked",to="default-scheduler"}'
            assert await metric(session, base, routed) == 1.0

    asyncio.run(body())


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"{not json", 400),
        (json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), 400),
        (b"[" * 150 + b"]" * 150, 400),
        (b"{" + b" " * (8 * 1024 * 1024) + b"}", 413),
    ],
    ids=["not-json", "not-a-review", "too-deep", "too-large"],
)
def test_malformed_bodies_are_refused(tmp_path: Path, data: bytes, status: int) -> None:
    async def body() -> None:
        async with serving(tmp_path) as (_srv, session, base):
            headers = {"Content-Type": "application/json"}
            async with session.post(base + "/mutate", data=data, headers=headers) as r:
                assert r.status == status
            async with session.get(base + "/healthz") as r:  # and the server carries on
                assert r.status == 200

    asyncio.run(body())


def test_rotated_certificate_is_served_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from berth.cluster.tls import generate

    monkeypatch.setattr(server_module, "CERT_RELOAD_SECONDS", 0.1)

    async def body() -> None:
        async with serving(tmp_path) as (srv, _session, base):
            fresh = generate(directory=tmp_path / "other", hosts=["127.0.0.1"])
            cert, key = srv.options.tls_cert_file, srv.options.tls_key_file
            shutil.copy(fresh.key_path, key)
            shutil.copy(fresh.cert_path, cert)
            os.utime(cert, (1e9, 2e9))
            await asyncio.sleep(0.5)
            context = ssl.create_default_context(cafile=str(fresh.ca_path))
            async with (
                aiohttp.ClientSession() as other,
                other.get(base + "/healthz", ssl=context) as r,
            ):
                assert r.status == 200

    asyncio.run(body())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            "error: kube-apiserver calls webhooks over HTTPS only: give --tls-cert-file and "
            "--tls-private-key-file, or --cert-dir to make a certificate",
        ),
        (
            ["--cert-dir", "D", "--bind-address", "nowhere"],
            "error: berth webhook: Invalid value for '--bind-address': 'nowhere': expected "
            "host:port (see 'berth webhook --help')",
        ),
        (["--cert-dir", "D", "--path", "mutate"], "error: --path: 'mutate' must start with /"),
    ],
)
def test_command_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / a) if a == "D" else a for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "berth", "webhook", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == message


def test_bad_config_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("webhook: {schedulerName: nope}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "berth",
            "webhook",
            "--config",
            str(cfg),
            "--cert-dir",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "webhook.schedulerName: 'nope' is not a profile (profiles: berth)" in done.stderr
    assert "Traceback" not in done.stderr
