"""The watch cache bounded in bytes, not only in events: 60 writes of 2.9 MiB took a cluster
from 71 to 602 MiB resident when only the event count was bounded. Now the cache holds at most
`--watch-cache-bytes` of events (older versions get 410 Gone) and keeps their bytes, not the
objects; a watcher that falls that far behind is closed and re-watches."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from berth.cluster import EmbeddedCluster

from .conftest import ClusterProcess, call, report

pytestmark = pytest.mark.timeout(180)
MIB = 1 << 20
BLOB = 2.9 * MIB
LIMITS = {"max_object_bytes": 3 * MIB, "max_body_bytes": 4 * MIB, "watch_cache_bytes": 32 * MIB}


def _write_blobs(url: str, count: int) -> list[int]:
    path = url + "/api/v1/namespaces/default/configmaps"
    code, body = call(path, method="POST", body={"metadata": {"name": "blob"}, "data": {}})
    assert code == 201, body
    rvs = []
    for i in range(count):
        patch = {"data": {"blob": chr(ord("a") + i % 26) * int(BLOB)}}
        code, body = call(
            path + "/blob", method="PATCH", body=patch, content_type="application/merge-patch+json"
        )
        assert code == 200, str(body)[:200]
        rvs.append(int(body["metadata"]["resourceVersion"]))
    return rvs


def test_the_watch_cache_holds_at_most_its_bytes() -> None:
    with EmbeddedCluster(nodes=1, **LIMITS) as c:
        rvs = _write_blobs(c.url, 60)
        cached = c.call(lambda core: core.store.cached_bytes)
        assert cached <= LIMITS["watch_cache_bytes"], cached
        events = c.call(lambda core: len(core.store._log))
        # A version the cache no longer holds: 410 Gone.
        code, gone = call(
            c.url + f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rvs[0]}"
        )
        assert code == 200 and gone["object"]["code"] == 410
        # A recent one replays what followed it.
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:
            s.sendall(
                f"GET /api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rvs[-3]}"
                "&timeoutSeconds=1 HTTP/1.0\r\n\r\n".encode()
            )
            data = b""
            while chunk := s.recv(1 << 20):
                data += chunk
        body = data.split(b"\r\n\r\n", 1)[1]
        replayed = [line for line in body.split(b"\n") if line.strip()]
        assert len(replayed) == 2, data[:300]
        report("watch_cache_bytes", {"writes": 60, "cached_bytes": cached, "cached_events": events})


def test_a_watcher_that_falls_behind_is_closed() -> None:
    """A client that opens a watch and never reads cannot make the server hold more than the
    watch-cache bytes for it."""
    with (
        EmbeddedCluster(nodes=1, **LIMITS) as c,
        socket.create_connection(("127.0.0.1", c.port), timeout=10) as s,
    ):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        assert c.call(lambda core: len(core.store.watchers())) == 1
        _write_blobs(c.url, 40)
        deadline = time.monotonic() + 10
        while c.call(lambda core: len(core.store.watchers())) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.call(lambda core: len(core.store.watchers())) == 0


def test_resident_memory_stays_bounded(tmp_path: Path) -> None:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in LIMITS.items()]
    c = ClusterProcess(tmp_path, "--nodes", "1", *flags).start()
    try:
        before = c.rss_kib()
        _write_blobs(c.url, 60)
        time.sleep(0.5)
        after = c.rss_kib()
        report(
            "watch_cache_rss",
            {"writes": 60, "rss_before_mib": before // 1024, "rss_after_mib": after // 1024},
        )
        # 60 x 2.9 MiB is 174 MiB of events; a 32 MiB cache plus the live object and the
        # interpreter's slack stays far below what keeping every version cost (531 MiB).
        assert (after - before) / 1024 < 200, (before, after)
    finally:
        assert c.stop() == 0
