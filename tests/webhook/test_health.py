"""When the Berth leader counts as healthy: each verdict from what the last check read, on
clocks the test drives, and the Lease read through the official client from a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster
from berth.config.webhook import WebhookConfiguration
from berth.kube.client import connect
from berth.webhook import health
from berth.webhook.health import LeaderHealth, _Observation, readyz_url


class Clock:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0


def checker(clock: Clock, **settings: Any) -> LeaderHealth:
    return LeaderHealth(
        connection=None,
        namespace="kube-system",
        name="berth",
        settings=WebhookConfiguration(**settings),
        wall=lambda: clock.wall,
        monotonic=lambda: clock.mono,
    )


def seen(clock: Clock, **kw: Any) -> _Observation:
    base: dict[str, Any] = {
        "checked_at": clock.mono,
        "holder": "127.0.0.1:10259",
        "renewed_at": clock.wall - 1,
        "duration": 15.0,
        "readyz_ok": True,
        "readyz_detail": "ok",
    }
    return _Observation(**{**base, **kw})


@pytest.mark.parametrize(
    ("reading", "reason", "detail"),
    [
        (
            {"missing": True, "error": "404 Not Found"},
            health.LEASE_MISSING,
            "no Lease kube-system/berth: no Berth leader has run",
        ),
        (
            {"error": "403 Forbidden"},
            health.LEASE_UNREADABLE,
            "cannot read Lease kube-system/berth: 403 Forbidden",
        ),
        (
            {"holder": None},
            health.LEASE_RELEASED,
            "Lease kube-system/berth has no holder (released)",
        ),
        (
            {"renewed_at": 1_000_000.0 - 20},
            health.LEASE_EXPIRED,
            "Lease kube-system/berth of 127.0.0.1:10259 last renewed 20.0s ago, more than 15s",
        ),
        (
            {"renewed_at": None},
            health.LEASE_EXPIRED,
            "Lease kube-system/berth of 127.0.0.1:10259 last renewed never, more than 15s",
        ),
        (
            {
                "readyz_ok": False,
                "readyz_detail": "GET http://127.0.0.1:10259/readyz: 503 not ready",
            },
            health.READYZ_FAILED,
            "leader 127.0.0.1:10259 is not ready: GET http://127.0.0.1:10259/readyz: 503 not ready",
        ),
        (
            {},
            health.HEALTHY,
            "leader 127.0.0.1:10259 healthy: Lease renewed 1.0s ago (limit 15s), /readyz ok",
        ),
    ],
    ids=["missing", "unreadable", "released", "expired", "never-renewed", "readyz", "healthy"],
)
def test_verdicts(reading: dict[str, Any], reason: str, detail: str) -> None:
    clock = Clock()
    h = checker(clock)
    h.observe(seen(clock, **reading))
    verdict = h.verdict()
    assert (verdict.healthy, verdict.reason, verdict.detail) == (
        reason == health.HEALTHY,
        reason,
        detail,
    )


def test_no_check_yet_is_unhealthy() -> None:
    verdict = checker(Clock()).verdict()
    assert (verdict.healthy, verdict.reason) == (False, health.NOT_CHECKED)


def test_the_lease_ages_between_checks_and_a_stalled_checker_is_seen() -> None:
    clock = Clock()
    h = checker(clock, maxLeaseAge="4s")
    h.observe(seen(clock))
    assert h.verdict().healthy
    clock.wall += 3.5
    clock.mono += 3.5
    assert h.verdict().reason == health.LEASE_EXPIRED  # 4.5 s since the renewal, no new check
    clock.mono += 10
    assert h.verdict().reason == health.CHECK_STALLED


def test_a_clock_behind_the_leaders_is_caught_by_the_monotonic_age() -> None:
    """The leader's renewTime looks recent by this clock (it runs behind), but the record has
    not changed for longer than the lease: the leader is gone."""
    clock = Clock()
    h = checker(clock)
    ahead = clock.wall + 30  # the leader's clock is 30 s ahead
    h.observe(seen(clock, renewed_at=ahead))
    for _ in range(16):
        clock.wall += 1
        clock.mono += 1
        h.observe(seen(clock, renewed_at=ahead))
    verdict = h.verdict()
    assert verdict.reason == health.LEASE_EXPIRED and verdict.detail.endswith(
        "16.0s ago, more than 15s"
    )


def test_lease_duration_comes_from_the_lease_unless_configured() -> None:
    clock = Clock()
    h = checker(clock)
    h.observe(seen(clock, renewed_at=clock.wall - 6, duration=5.0))
    assert h.verdict().reason == health.LEASE_EXPIRED
    h = checker(clock, maxLeaseAge="10s")
    h.observe(seen(clock, renewed_at=clock.wall - 6, duration=5.0))
    assert h.verdict().healthy


@pytest.mark.parametrize(
    ("holder", "url"),
    [
        ("127.0.0.1:10259", "http://127.0.0.1:10259/readyz"),
        ("10.0.3.7:10259", "http://10.0.3.7:10259/readyz"),
        ("[fd00::7]:10259", "http://[fd00::7]:10259/readyz"),
        (
            "berth-0.berth.kube-system.svc:10259",
            "http://berth-0.berth.kube-system.svc:10259/readyz",
        ),
        ("node-1_5f3a9c2e", None),  # berth run's default identity: not an address
        ("evil.example/x?", None),
        ("a@b:1", None),
    ],
)
def test_readyz_url_from_the_holder(holder: str, url: str | None) -> None:
    assert readyz_url("http://{holderIdentity}/readyz", holder) == url


def test_check_reads_the_lease_from_the_api_server() -> None:
    async def body(cluster: EmbeddedCluster) -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        probed: list[str] = []

        async def probe(url: str) -> tuple[bool, str]:
            probed.append(url)
            return True, "ok"

        h = LeaderHealth(
            connection=conn,
            namespace="kube-system",
            name="berth",
            settings=WebhookConfiguration(),
            probe=probe,
        )
        try:
            await h.check_once()
            assert h.verdict().reason == health.LEASE_MISSING
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "berth"},
                "spec": {
                    "holderIdentity": "127.0.0.1:1",
                    "leaseDurationSeconds": 15,
                    "renewTime": stamp,
                    "acquireTime": stamp,
                },
            }
            response = await conn.request(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", lease
            )
            assert response.status == 201
            response.release()
            await h.check_once()
            verdict = h.verdict()
            assert verdict.healthy, verdict
            assert probed == ["http://127.0.0.1:1/readyz"]
        finally:
            await h.close()
            await conn.close()

    with EmbeddedCluster(nodes=1) as cluster:
        asyncio.run(body(cluster))
