"""The refresher against a local fake Prometheus: table updates, the up gauge and error counter,
one log line per transition, timeouts, unmatched series, the background loop; and the table's
placement log."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from berth.config import parse_config
from berth.config.metrics import MetricSource
from berth.metrics.refresher import Refresher, directory_from_state
from berth.metrics.table import MetricKey, MetricTable
from tests.builders import make_state

from .helpers import directory, node, serve


def sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


class FakeProm:
    """Answers /api/v1/query from `self.values`; `mode` switches to failures."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {"node-a": 0.1, "node-b": 0.2}
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "500":
            return web.Response(status=500, text="internal error")
        if self.mode == "bad_query":
            return web.json_response(
                {"status": "error", "errorType": "bad_data", "error": "parse error"}, status=400
            )
        result = [
            {"metric": {"node": n}, "value": [time.time(), str(v)]} for n, v in self.values.items()
        ]
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/query", self.handle)
        return app


KEY_QUERY = "max by (node) (latency)"


def refresher_for(url: str, name: str, **source: Any) -> Refresher:
    cfg = MetricSource.model_validate({"name": name, "type": "prometheus", "url": url, **source})
    return Refresher(
        sources=[cfg],
        keys=[MetricKey(name, KEY_QUERY)],
        nodes=lambda: directory("node-a", "node-b", "node-c"),
    )


def test_up_down_recovered(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTH_TEST_TOKEN", "tok-do-not-log")
    fake = FakeProm()
    name = "r-transitions"

    async def scenario() -> None:
        async with serve(fake.app()) as url:
            r = refresher_for(url, name, credentials={"tokenEnv": "BERTH_TEST_TOKEN"})
            try:
                assert await r.refresh_source(name) is True
                series = r.table.series(MetricKey(name, KEY_QUERY))
                assert series is not None and dict(series.values) == fake.values
                assert sample("berth_metric_source_up", {"source": name}) == 1.0

                fake.mode = "500"
                assert await r.refresh_source(name) is False
                assert await r.refresh_source(name) is False
                assert sample("berth_metric_source_up", {"source": name}) == 0.0
                errors = {"source": name, "reason": "http"}
                assert sample("berth_metric_source_errors_total", errors) == 2.0
                # the last values stay (they age out by maxAge in MetricScore)
                assert r.table.series(MetricKey(name, KEY_QUERY)) is series
                assert r.status()[name]["up"] is False
                assert "HTTP 500" in r.status()[name]["lastError"]

                fake.mode = "ok"
                fake.values = {"node-a": 0.3}
                assert await r.refresh_source(name) is True
                assert sample("berth_metric_source_up", {"source": name}) == 1.0
                new = r.table.series(MetricKey(name, KEY_QUERY))
                assert new is not None and dict(new.values) == {"node-a": 0.3}
                assert new.generation > series.generation
            finally:
                await r.stop()

    with caplog.at_level(logging.INFO, logger="berth.metrics"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name == "berth.metrics"]
    down = [m for m in messages if "is down" in m]
    assert len(down) == 1 and down[0].startswith(f"metric source {name} is down: HTTP 500")
    assert [m for m in messages if "recovered" in m] == [f"metric source {name} recovered"]
    assert "tok-do-not-log" not in caplog.text


def test_timeout_bounds_a_slow_source() -> None:
    fake = FakeProm()
    fake.delay = 2.0
    name = "r-timeout"

    async def scenario() -> float:
        async with serve(fake.app()) as url:
            r = refresher_for(url, name, timeout="200ms")
            try:
                started = time.perf_counter()
                assert await r.refresh_source(name) is False
                return time.perf_counter() - started
            finally:
                await r.stop()

    elapsed = asyncio.run(scenario())
    assert elapsed < 1.0
    assert sample("berth_metric_source_errors_total", {"source": name, "reason": "timeout"}) == 1.0
    assert sample("berth_metric_source_up", {"source": name}) == 0.0


def test_query_errors_and_unmatched_series_keep_the_source_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeProm()
    name = "r-query"

    async def scenario() -> None:
        async with serve(fake.app()) as url:
            r = refresher_for(url, name)
            try:
                fake.mode = "bad_query"
                assert await r.refresh_source(name) is True
                assert await r.refresh_source(name) is True
                fake.mode = "ok"
                fake.values = {"node-a": 1.0, "ghost": 2.0}
                assert await r.refresh_source(name) is True
                assert await r.refresh_source(name) is True
            finally:
                await r.stop()

    with caplog.at_level(logging.WARNING, logger="berth.metrics"):
        asyncio.run(scenario())
    assert sample("berth_metric_source_up", {"source": name}) == 1.0
    assert sample("berth_metric_source_errors_total", {"source": name, "reason": "query"}) == 2.0
    assert sample("berth_metric_unmatched_series_total", {"source": name}) == 2.0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("parse error" in m for m in messages) == 1
    unmatched = [m for m in messages if "ghost" in m]
    assert unmatched == [
        f"metric source {name}: node='ghost' in the answer to {KEY_QUERY!r} matches no node "
        "(nodeLabel 'node', match auto)"
    ]


def test_background_loop_refreshes_on_its_interval_and_on_request() -> None:
    fake = FakeProm()
    name = "r-loop"

    async def scenario() -> None:
        async with serve(fake.app()) as url:
            r = refresher_for(url, name, refreshInterval="100ms")
            async with r:
                for _ in range(100):
                    if fake.requests >= 3:
                        break
                    await asyncio.sleep(0.02)
                assert fake.requests >= 3
            count = fake.requests
            await asyncio.sleep(0.25)
            assert fake.requests == count  # stopped

            r = refresher_for(url, name, refreshInterval="1h")
            async with r:
                await asyncio.sleep(0.05)
                first = fake.requests
                r.refresh_soon(name)
                for _ in range(50):
                    if fake.requests > first:
                        break
                    await asyncio.sleep(0.02)
                assert fake.requests == first + 1

    asyncio.run(scenario())


def test_from_config_reads_node_annotations_from_the_state() -> None:
    config = parse_config(
        {
            "metricSources": [{"name": "price", "type": "node-annotation"}],
            "profiles": [
                {
                    "plugins": {"score": {"enabled": [{"name": "MetricScore"}]}},
                    "pluginConfig": [
                        {
                            "name": "MetricScore",
                            "args": {
                                "metrics": [
                                    {
                                        "name": "price",
                                        "source": "price",
                                        "query": "sim.berth.io/price",
                                    }
                                ]
                            },
                        }
                    ],
                }
            ],
        }
    )
    state = make_state(
        [
            node("node-a", annotations={"sim.berth.io/price": "0.4"}),
            node("node-b", annotations={"sim.berth.io/price": "0.1"}, address="10.0.0.2"),
            node("node-c"),
        ]
    )
    r = Refresher.from_config(config, state=state)
    assert asyncio.run(r.refresh_once()) == {"price": True}
    series = r.table.series(MetricKey("price", "sim.berth.io/price"))
    assert series is not None and dict(series.values) == {"node-a": 0.4, "node-b": 0.1}
    assert directory_from_state(state).resolve("10.0.0.2:9100") == "node-b"


def test_unknown_source_in_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="'nope' is not configured"):
        Refresher(sources=[], keys=[MetricKey("nope", "q")], nodes=lambda: directory())


# ----- the table's placement log -------------------------------------------------------------
def test_placement_log_forget_and_trim() -> None:
    now = [1000.0]
    table = MetricTable(clock=lambda: now[0], placement_retention=60.0)
    table.note_placement("a", "p1")
    table.note_placement("b", "p2")
    events, end, trimmed = table.events_since(0)
    assert [(e.node, e.sign) for e in events] == [("a", 1), ("b", 1)] and end == 2 and not trimmed
    table.forget_placement("p1")
    table.note_placement("c", "p2")  # moved: its old placement is taken back
    events, end, _ = table.events_since(2)
    assert [(e.node, e.sign) for e in events] == [("a", -1), ("b", -1), ("c", 1)] and end == 5
    assert table.recent_placements() == {"c": 1}
    now[0] += 61
    for i in range(2000):
        table.note_placement("d", f"q{i}")
    events, end, trimmed = table.events_since(0)
    assert trimmed and end == 2005
    assert len(events) == 2000 and {e.node for e in events} == {"d"}
    assert table.recent_placements() == {"d": 2000}
