"""Prometheus source: PromQL instant queries over the HTTP API (`GET /api/v1/query`).

The answer must be an instant vector; each series is mapped to a node by one of its labels
(`nodeLabel`, e.g. `node`, or `instance` whose `host:port` is matched by host name or node
address). Series that match no node are returned as `unmatched` so the refresher can report
them: a wrong mapping is the commonest way metric-aware scheduling silently does nothing.
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

QUERY_PATH = "/api/v1/query"
# errorType values that mean the query is wrong, not that Prometheus is unwell.
QUERY_ERROR_TYPES = frozenset({"bad_data", "execution"})


class PrometheusSource(Source):
    async def fetch(
        self, key: MetricKey, *, nodes: NodeDirectory, session: aiohttp.ClientSession | None
    ) -> FetchResult:
        assert session is not None and self.config.url is not None
        _, body = await request_json(
            session,
            "GET",
            self.config.url + QUERY_PATH,
            headers=auth_headers(self.config),
            params={"query": key.query},
            ssl_option=ssl_context(self.config),
            accept_error_json=True,
        )
        return parse_query_answer(body, key=key, nodes=nodes)


def parse_query_answer(body: Any, *, key: MetricKey, nodes: NodeDirectory) -> FetchResult:
    """Node values from a `/api/v1/query` answer; SourceError naming what is wrong otherwise."""
    if not isinstance(body, dict):
        raise SourceError("answer is not a JSON object", reason="malformed")
    status = body.get("status")
    if status == "error":
        error_type = str(body.get("errorType") or "")
        message = f"query {key.query!r} failed: {error_type}: {body.get('error') or ''}"
        is_query_error = error_type in QUERY_ERROR_TYPES
        raise SourceError(
            message, reason="query" if is_query_error else "server", down=not is_query_error
        )
    data = body.get("data")
    if status != "success" or not isinstance(data, dict):
        raise SourceError("answer has no status 'success' and data object", reason="malformed")
    result_type = data.get("resultType")
    if result_type != "vector":
        raise SourceError(
            f"query {key.query!r} returns a {result_type}, not an instant vector with one "
            f"series per node (aggregate it, e.g. `max by ({key.node_label}) (...)`)",
            reason="query",
            down=False,
        )
    result = data.get("result")
    if not isinstance(result, list):
        raise SourceError("data.result is not a list", reason="malformed")
    out = FetchResult(values={})
    for i, sample in enumerate(result):
        labels, timestamp, value = _sample(sample, i)
        ident = labels.get(key.node_label)
        if ident is None:
            out.unmatched.append(f"series without label {key.node_label!r}: {_brief(labels)}")
            continue
        node = nodes.resolve(ident, match=key.node_match)
        if node is None:
            out.unmatched.append(f"{key.node_label}={ident!r}")
            continue
        if not math.isfinite(value):
            continue
        # several series on one node (no aggregation in the query): keep the largest.
        if node not in out.values or value > out.values[node]:
            out.values[node] = value
            out.times[node] = timestamp
    return out


def _sample(sample: Any, i: int) -> tuple[dict[str, str], float, float]:
    if not isinstance(sample, dict):
        raise SourceError(f"data.result[{i}] is not an object", reason="malformed")
    labels = sample.get("metric")
    pair = sample.get("value")
    if not isinstance(labels, dict) or not isinstance(pair, list) or len(pair) != 2:
        raise SourceError(f"data.result[{i}] has no metric and [time, value]", reason="malformed")
    try:
        timestamp = float(pair[0])
        value = float(pair[1])  # Prometheus sends values as strings ("0.25", "NaN", "+Inf")
    except (TypeError, ValueError):
        raise SourceError(f"data.result[{i}].value is not numeric", reason="malformed") from None
    return {str(k): str(v) for k, v in labels.items()}, timestamp, value


def _brief(labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())[:6])
    return "{" + inner + "}"


__all__ = ["PrometheusSource", "parse_query_answer"]
