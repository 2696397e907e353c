"""Sysdig Monitor source: the data API the Sysdig scheduler examples use (`POST /api/data/`).

Request (as sdcclient's `get_data` builds it, bearer token in `Authorization`):
    {"metrics": [{"id": "host.hostName"},
                 {"id": "net.http.request.time",
                  "aggregations": {"time": "timeAvg", "group": "avg"}}],
     "dataSourceType": "host", "last": 60, "sampling": 60, "filter": "..."}
Answer: {"data": [{"t": 1700000000, "d": ["host-a", 0.012]}, ...], "start": ..., "end": ...}
where `d` lists the segmentation key's value, then the metric's value. A query is a metric id,
optionally with its aggregations: `net.http.request.time` or `net.http.request.time:max:max`.
"""

from __future__ import annotations

import math
from typing import Any

import aiohttp

from berth.metrics.base import (
    FetchResult,
    NodeDirectory,
    Source,
    SourceError,
    auth_headers,
    request_json,
    ssl_context,
)
from berth.metrics.table import MetricKey

DATA_PATH = "/api/data/"
DEFAULT_TIME_AGGREGATION = "timeAvg"
DEFAULT_GROUP_AGGREGATION = "avg"


def request_body(
    query: str,
    *,
    segment_by: str,
    data_source_type: str,
    window: int,
    filter_expr: str | None,
) -> dict[str, Any]:
    """The /api/data body for one metric over the last `window` seconds, one sample per host."""
    metric, _, rest = query.partition(":")
    time_agg, _, group_agg = rest.partition(":")
    body: dict[str, Any] = {
        "metrics": [
            {"id": segment_by},
            {
                "id": metric,
                "aggregations": {
                    "time": time_agg or DEFAULT_TIME_AGGREGATION,
                    "group": group_agg or DEFAULT_GROUP_AGGREGATION,
                },
            },
        ],
        "dataSourceType": data_source_type,
        "last": window,
        "sampling": window,
    }
    if filter_expr:
        body["filter"] = filter_expr
    return body


class SysdigSource(Source):
    async def fetch(
        self, key: MetricKey, *, nodes: NodeDirectory, session: aiohttp.ClientSession | None
    ) -> FetchResult:
        cfg = self.config
        assert session is not None and cfg.url is not None
        body = request_body(
            key.query,
            segment_by=cfg.segmentBy,
            data_source_type=cfg.dataSourceType,
            window=max(int(cfg.window), 1),
            filter_expr=cfg.filter,
        )
        headers = {**auth_headers(cfg), "Content-Type": "application/json"}
        _, answer = await request_json(
            session,
            "POST",
            cfg.url + DATA_PATH,
            headers=headers,
            json_body=body,
            ssl_option=ssl_context(cfg),
        )
        return parse_data_answer(answer, key=key, nodes=nodes)


def _seconds(t: Any) -> float | None:
    if isinstance(t, bool) or not isinstance(t, int | float):
        return None
    value = float(t)
    if value > 1e14:  # microseconds
        return value / 1e6
    if value > 1e11:  # milliseconds
        return value / 1e3
    return value


def parse_data_answer(body: Any, *, key: MetricKey, nodes: NodeDirectory) -> FetchResult:
    """Node values from an /api/data answer; the latest row per host wins."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SourceError("answer has no data list", reason="malformed")
    out = FetchResult(values={})
    seen_unmatched: set[str] = set()
    for i, row in enumerate(body["data"]):
        if not isinstance(row, dict) or not isinstance(row.get("d"), list) or len(row["d"]) < 2:
            raise SourceError(f"data[{i}] has no d: [host, value]", reason="malformed")
        host, value = row["d"][0], row["d"][1]
        if value is None:
            continue  # no data for this host in the window
        if (
            not isinstance(host, str)
            or isinstance(value, bool)
            or not isinstance(value, int | float)
        ):
            raise SourceError(f"data[{i}].d is not [host name, number]", reason="malformed")
        node = nodes.resolve(host, match=key.node_match)
        if node is None:
            if host not in seen_unmatched:
                seen_unmatched.add(host)
                out.unmatched.append(f"host {host!r}")
            continue
        if not math.isfinite(float(value)):
            continue
        t = _seconds(row.get("t"))
        if node in out.values and t is not None and out.times.get(node, -math.inf) > t:
            continue
        out.values[node] = float(value)
        if t is not None:
            out.times[node] = t
    return out


__all__ = ["SysdigSource", "parse_data_answer", "request_body"]
