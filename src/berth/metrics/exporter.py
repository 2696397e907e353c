"""A simulated node exporter: per-node gauges in Prometheus text format, for demos and tests.

`GET /metrics` serves `berth_sim_http_request_seconds`, `berth_sim_cpu_utilization` and
`berth_sim_price`, one series per node (`{node="..."}`). Values come from the node annotations
`sim.berth.io/http-request-seconds`, `sim.berth.io/cpu-utilization` and `sim.berth.io/price`, so
`berth annotate` (or a test) steers them; a node without the annotation gets a value derived
deterministically from its name. The app reads the nodes through a callable on every scrape, so
it can be mounted beside the embedded cluster (`berth cluster --metrics-port`) or run alone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from berth.listener import BoundedListener, bind_socket, start_listener

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class SimMetric:
    name: str
    annotation: str
    help: str
    low: float  # default values are spread over [low, high) by a hash of the node name
    high: float


SIM_METRICS: tuple[SimMetric, ...] = (
    SimMetric(
        "berth_sim_http_request_seconds",
        "sim.berth.io/http-request-seconds",
        "Simulated mean HTTP request time on the node, in seconds.",
        0.02,
        0.5,
    ),
    SimMetric(
        "berth_sim_cpu_utilization",
        "sim.berth.io/cpu-utilization",
        "Simulated CPU utilisation of the node, in percent.",
        5.0,
        95.0,
    ),
    SimMetric(
        "berth_sim_price",
        "sim.berth.io/price",
        "Simulated price of the node per hour.",
        0.05,
        2.0,
    ),
)

NodeSource = Callable[[], Iterable[Mapping[str, Any]]]


def default_value(metric: SimMetric, node: str) -> float:
    """A stable value in [low, high) from the node name (the same on every run and process)."""
    digest = hashlib.sha256(f"{metric.name}/{node}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return round(metric.low + fraction * (metric.high - metric.low), 4)


def _value(metric: SimMetric, node: Mapping[str, Any], name: str) -> float:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(metric.annotation) if isinstance(annotations, Mapping) else None
    if isinstance(text, str):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    return default_value(metric, name)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(nodes: Iterable[Mapping[str, Any]]) -> str:
    """The exposition text for `nodes` (raw v1 Node dicts)."""
    named = []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name")
        if isinstance(name, str) and name:
            named.append((name, node))
    named.sort(key=lambda pair: pair[0])
    lines: list[str] = []
    for metric in SIM_METRICS:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} gauge")
        for name, node in named:
            lines.append(f'{metric.name}{{node="{_escape(name)}"}} {_value(metric, node, name)!r}')
    return "\n".join(lines) + "\n"


def exporter_app(*, nodes: NodeSource, path: str = "/metrics") -> web.Application:
    """An aiohttp app serving the simulated gauges at `path`; `nodes()` is called per scrape."""

    async def metrics(request: web.Request) -> web.Response:
        del request
        return web.Response(
            body=render(list(nodes())).encode(), headers={"Content-Type": CONTENT_TYPE}
        )

    app = web.Application()
    app.router.add_get(path, metrics)
    return app


async def start_exporter(
    *, nodes: NodeSource, host: str = "127.0.0.1", port: int = 0
) -> BoundedListener:
    """Serve `exporter_app` on host:port (0: any free port) within the listener limits; the
    bound port is `.port`, stop with `await listener.stop()`."""
    return await start_listener(exporter_app(nodes=nodes), sock=bind_socket(host, port))


__all__ = ["SIM_METRICS", "SimMetric", "default_value", "exporter_app", "render", "start_exporter"]
