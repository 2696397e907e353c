"""End to end with a real Prometheus: the simulated exporter is scraped every second, the
refresher queries Prometheus, and pods scheduled through the engine with
examples/metrics-prometheus.yaml (plus the default plugins) follow the best latency; Prometheus
going away, coming back, or answering slowly never stops or slows a decision.

Needs the `prometheus` binary (Debian: `apt-get install -y prometheus`). Skipped when it is
absent, except under CI (CI=true), where its absence is a failure.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession, web
from prometheus_client import REGISTRY

from berth.config import parse_config
from berth.config.loader import Config
from berth.engine import Engine
from berth.framework.ports import Ports
from berth.metrics.exporter import start_exporter
from berth.metrics.refresher import Refresher
from berth.metrics.table import MetricKey
from berth.state.cluster import ClusterState
from tests.builders import make_state

from .helpers import LoopThread, free_port, node, place, serve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metrics-prometheus.yaml"
QUERY = "max by (node) (berth_sim_http_request_seconds)"
KEY = MetricKey("prom", QUERY, "node", "auto")
LATENCY = "sim.berth.io/http-request-seconds"
NODES = ("node-a", "node-b", "node-c")


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("the prometheus binary is required in CI: apt-get install -y prometheus")
    pytest.skip("prometheus binary not found (apt-get install -y prometheus)")


class Exporter:
    """The simulated exporter on its own loop thread, serving mutable node objects."""

    def __init__(self) -> None:
        self.nodes = [node(n, cpu="32", memory="128Gi") for n in NODES]
        self.thread = LoopThread()
        self.runner = self.thread.run(start_exporter(nodes=lambda: self.nodes, port=0))
        self.port: int = self.runner.port

    def set_latency(self, values: dict[str, float]) -> None:
        for raw in self.nodes:
            raw["metadata"]["annotations"] = {LATENCY: repr(values[raw["metadata"]["name"]])}

    def close(self) -> None:
        self.thread.run(self.runner.stop())
        self.thread.close()


class Prometheus:
    """A prometheus process on 127.0.0.1 scraping the exporter every second."""

    def __init__(self, binary: str, workdir: Path, target: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": "berth-sim", "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.workdir / "prometheus.log").read_text()[-2000:]
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("prometheus did not become ready within 30s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    try:
        yield exp
    finally:
        exp.close()


@pytest.fixture(scope="module")
def prometheus(
    exporter: Exporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    prom = Prometheus(
        prometheus_binary(), tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{exporter.port}"
    )
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


def example_config(url: str, **metric: Any) -> Config:
    """examples/metrics-prometheus.yaml with the source pointed at `url` (and metric overrides)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data = copy.deepcopy(data)
    data["metricSources"][0]["url"] = url
    data["profiles"][0]["pluginConfig"][0]["args"]["metrics"][0].update(metric)
    return parse_config(data)


def cluster_state() -> ClusterState:
    return make_state([node(n, cpu="32", memory="128Gi") for n in NODES])


async def wait_for_values(
    refresher: Refresher, want: dict[str, float], timeout: float = 15
) -> None:
    """Refresh until Prometheus answers `want` (it scrapes once a second)."""
    deadline = time.monotonic() + timeout
    last: dict[str, float] = {}
    while time.monotonic() < deadline:
        await refresher.refresh_source("prom")
        series = refresher.table.series(KEY)
        last = dict(series.values) if series is not None else {}
        if last == want:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"Prometheus answered {last}, not {want}")


def source_up() -> float | None:
    return REGISTRY.get_sample_value("berth_metric_source_up", {"source": "prom"})


def test_pods_follow_the_lowest_latency(exporter: Exporter, prometheus: Prometheus) -> None:
    config = example_config(prometheus.url)
    state = cluster_state()

    async def scenario() -> None:
        refresher = Refresher.from_config(config, state=state)
        engine = Engine(config=config, state=state, seed=1, ports=Ports(metrics=refresher.table))
        try:
            values = {"node-a": 0.3, "node-b": 0.05, "node-c": 0.2}
            exporter.set_latency(values)
            await wait_for_values(refresher, values)
            assert place(engine, count=5) == ["node-b"] * 5

            values = {"node-a": 0.3, "node-b": 0.5, "node-c": 0.01}
            exporter.set_latency(values)
            await wait_for_values(refresher, values)
            assert place(engine, count=5) == ["node-c"] * 5
        finally:
            await refresher.stop()

    asyncio.run(scenario())


def test_burst_spreads_with_the_herd_estimate(exporter: Exporter, prometheus: Prometheus) -> None:
    config = example_config(prometheus.url, estimatePerPod=0.01)
    state = cluster_state()

    async def scenario() -> list[str]:
        refresher = Refresher.from_config(config, state=state)
        engine = Engine(config=config, state=state, seed=1, ports=Ports(metrics=refresher.table))
        try:
            values = {"node-a": 0.05, "node-b": 0.1, "node-c": 0.2}
            exporter.set_latency(values)
            await wait_for_values(refresher, values)
            return place(engine, count=50)
        finally:
            await refresher.stop()

    chosen = asyncio.run(scenario())
    counts = {n: chosen.count(n) for n in NODES}
    assert min(counts.values()) > 0 and max(counts.values()) < 50, counts
    assert counts["node-a"] > counts["node-b"] > counts["node-c"], counts


def test_prometheus_down_then_back(
    exporter: Exporter, prometheus: Prometheus, caplog: pytest.LogCaptureFixture
) -> None:
    config = example_config(prometheus.url)
    state = cluster_state()
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async def scenario() -> None:
        refresher = Refresher.from_config(config, state=state, clock=clock)
        engine = Engine(config=config, state=state, seed=1, ports=Ports(metrics=refresher.table))
        try:
            values = {"node-a": 0.2, "node-b": 0.3, "node-c": 0.05}
            exporter.set_latency(values)
            await wait_for_values(refresher, values)
            assert source_up() == 1.0

            prometheus.stop()
            assert await refresher.refresh_source("prom") is False
            assert source_up() == 0.0
            # the last values are younger than maxAge (30s): they still count
            assert place(engine, count=2) == ["node-c"] * 2
            # 31s later they are stale: the metric drops out, the other plugins decide
            offset[0] = 31.0
            assert len(place(engine, count=6)) == 6
            assert await refresher.refresh_source("prom") is False

            offset[0] = 0.0
            prometheus.start()
            deadline = time.monotonic() + 15
            while not await refresher.refresh_source("prom"):
                assert time.monotonic() < deadline, "source did not recover"
                await asyncio.sleep(0.2)
            assert source_up() == 1.0
            await wait_for_values(refresher, values)
            assert place(engine, count=2) == ["node-c"] * 2
        finally:
            await refresher.stop()

    with caplog.at_level(logging.INFO, logger="berth.metrics"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name == "berth.metrics"]
    assert sum(m.startswith("metric source prom is down: cannot connect") for m in messages) == 1
    assert any("metric latency has no value younger than maxAge 30s" in m for m in messages)
    assert "metric source prom recovered" in messages
    errors = REGISTRY.get_sample_value(
        "berth_metric_source_errors_total", {"source": "prom", "reason": "connection"}
    )
    assert errors is not None and errors >= 2


def test_a_slow_prometheus_never_stalls_a_decision(
    exporter: Exporter, prometheus: Prometheus
) -> None:
    """A proxy delays every answer by 1.5s (the source timeout is 2s): decisions taken while a
    refresh is in flight stay fast and use the values already in the table."""
    delay = [0.0]

    async def proxy(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay[0])
        url = prometheus.url + request.path
        async with ClientSession() as session, session.get(url, params=request.query) as resp:
            return web.Response(
                body=await resp.read(), status=resp.status, content_type="application/json"
            )

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", proxy)
        async with serve(app) as url:
            config = example_config(url)
            state = cluster_state()
            refresher = Refresher.from_config(config, state=state)
            engine = Engine(
                config=config, state=state, seed=1, ports=Ports(metrics=refresher.table)
            )
            try:
                values = {"node-a": 0.1, "node-b": 0.4, "node-c": 0.3}
                exporter.set_latency(values)
                await wait_for_values(refresher, values)
                delay[0] = 1.5
                for expect_up in (True, False):
                    if not expect_up:
                        delay[0] = 3.0  # beyond the 2s timeout
                    started = time.perf_counter()
                    refresh = asyncio.create_task(refresher.refresh_source("prom"))
                    await asyncio.sleep(0.1)  # the query is now waiting in the proxy
                    decision_times = []
                    for _ in range(20):
                        t0 = time.perf_counter()
                        assert place(engine) == ["node-a"]
                        decision_times.append(time.perf_counter() - t0)
                        await asyncio.sleep(0)  # let the refresher's I/O make progress
                    assert not refresh.done()
                    assert max(decision_times) < 0.1, decision_times
                    assert await refresh is expect_up
                    elapsed = time.perf_counter() - started
                    assert elapsed < 2.8  # bounded by the timeout even when slower
                assert source_up() == 0.0
            finally:
                await refresher.stop()

    asyncio.run(scenario())
