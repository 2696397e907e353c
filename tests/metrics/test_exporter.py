"""The simulated exporter: gauges per node from annotations or stable defaults, over HTTP."""

from __future__ import annotations

import asyncio

import aiohttp

from berth.metrics.exporter import SIM_METRICS, default_value, render, start_exporter

from .helpers import node


def test_render_uses_annotations_then_stable_defaults() -> None:
    nodes = [
        node("node-b", annotations={"sim.berth.io/http-request-seconds": "0.05"}),
        node(
            "node-a",
            annotations={"sim.berth.io/price": "oops", "sim.berth.io/cpu-utilization": "70"},
        ),
        {"metadata": {}},  # no name: skipped
    ]
    text = render(nodes)
    lines = text.splitlines()
    assert lines[0] == (
        "# HELP berth_sim_http_request_seconds Simulated mean HTTP request time on the node, "
        "in seconds."
    )
    assert lines[1] == "# TYPE berth_sim_http_request_seconds gauge"
    latency, _cpu, price = SIM_METRICS
    assert (
        f'berth_sim_http_request_seconds{{node="node-a"}} {default_value(latency, "node-a")!r}'
        in lines
    )
    assert 'berth_sim_http_request_seconds{node="node-b"} 0.05' in lines
    assert 'berth_sim_cpu_utilization{node="node-a"} 70.0' in lines
    assert f'berth_sim_price{{node="node-a"}} {default_value(price, "node-a")!r}' in lines
    assert text.endswith("\n") and text.count("\n") == 3 * 4
    # defaults are deterministic and inside their range
    for metric in SIM_METRICS:
        value = default_value(metric, "node-a")
        assert metric.low <= value < metric.high
        assert value == default_value(metric, "node-a")
    assert default_value(latency, "node-a") != default_value(latency, "node-b")


def test_label_values_are_escaped() -> None:
    assert 'node="we\\"ird\\\\"' in render([{"metadata": {"name": 'we"ird\\'}}])


def test_served_over_http_with_nodes_read_per_scrape() -> None:
    nodes = [node("node-a", annotations={"sim.berth.io/price": "1.5"})]

    async def scenario() -> tuple[str, str, str]:
        runner = await start_exporter(nodes=lambda: nodes, port=0)
        port = runner.port
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    first = await resp.text()
                    content_type = resp.headers["Content-Type"]
                nodes[0]["metadata"]["annotations"]["sim.berth.io/price"] = "0.25"
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    second = await resp.text()
        finally:
            await runner.stop()
        return first, second, content_type

    first, second, content_type = asyncio.run(scenario())
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'berth_sim_price{node="node-a"} 1.5' in first
    assert 'berth_sim_price{node="node-a"} 0.25' in second
