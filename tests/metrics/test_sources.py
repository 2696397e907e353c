"""Each metric source against a local aiohttp server speaking its API: the request it sends, the
answers it understands, and the errors (malformed, empty, wrong type, HTTP errors) it reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from berth.config.metrics import MetricSource
from berth.metrics.annotations import NodeFieldSource
from berth.metrics.base import FetchResult, NodeDirectory, NodeRecord, SourceError, strip_port
from berth.metrics.metrics_api import MetricsAPISource
from berth.metrics.prometheus import PrometheusSource
from berth.metrics.sysdig import SysdigSource, request_body
from berth.metrics.table import MetricKey

from .helpers import directory, json_app, serve

BODY_KEY = web.RequestKey("body", bytes)
NODES = directory("node-a", "node-b", "node-c", addresses={"node-b": "10.0.0.2"})


def run_fetch(
    source_cls: type[Any],
    config: dict[str, Any],
    key: MetricKey,
    handler: Callable[[web.Request], Any] | None,
    *,
    path: str = "/",
    method: str = "GET",
    nodes: NodeDirectory = NODES,
) -> tuple[FetchResult | SourceError, list[web.Request]]:
    """Fetch once from a server answering with `handler`; the result (or error) and requests."""
    seen: list[web.Request] = []

    async def wrapped(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        request[BODY_KEY] = await request.read()
        assert handler is not None
        return await handler(request)  # type: ignore[no-any-return]

    async def scenario() -> FetchResult | SourceError:
        async with serve(json_app(wrapped, path=path, method=method)) as url:
            cfg = MetricSource.model_validate({"url": url, **config})
            async with aiohttp.ClientSession() as session:
                try:
                    return await source_cls(cfg).fetch(key, nodes=nodes, session=session)  # type: ignore[no-any-return]
                except SourceError as exc:
                    return exc

    return asyncio.run(scenario()), seen


def answer(body: Any, status: int = 200) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.StreamResponse:
        del request
        if isinstance(body, str | bytes):
            return web.Response(body=body, status=status, content_type="text/plain")
        return web.json_response(body, status=status)

    return handler


def vector(*series: tuple[dict[str, str], str], t: float = 1700000000.5) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [t, v]} for m, v in series],
        },
    }


# ----- Prometheus ----------------------------------------------------------------------------
PROM = {"name": "prom", "type": "prometheus"}


def prom(
    body: Any,
    *,
    status: int = 200,
    key: MetricKey | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[FetchResult | SourceError, list[web.Request]]:
    return run_fetch(
        PrometheusSource,
        {**PROM, **(config or {})},
        key or MetricKey("prom", "q", "node"),
        answer(body, status),
        path="/api/v1/query",
    )


def test_prometheus_instant_query_maps_series_by_node_label() -> None:
    body = vector(({"node": "node-a"}, "0.25"), ({"node": "node-b"}, "1e-3"))
    result, reqs = prom(body, key=MetricKey("prom", 'max by (node) (x{job="a"})', "node"))
    assert isinstance(result, FetchResult)
    assert result.values == {"node-a": 0.25, "node-b": 0.001}
    assert result.times == {"node-a": 1700000000.5, "node-b": 1700000000.5}
    assert result.unmatched == []
    assert reqs[0].query["query"] == 'max by (node) (x{job="a"})'
    assert "Authorization" not in reqs[0].headers


@pytest.mark.parametrize(
    ("label", "value", "match", "node"),
    [
        ("instance", "node-a:9100", "auto", "node-a"),  # host name with the port stripped
        ("instance", "10.0.0.2:9100", "auto", "node-b"),  # an InternalIP with a port
        ("instance", "10.0.0.2", "address", "node-b"),
        ("instance", "node-a:9100", "address", None),  # address matching only
        ("instance", "10.0.0.2:9100", "name", None),  # name matching only
        ("node", "node-c", "name", "node-c"),
    ],
)
def test_prometheus_node_mapping(label: str, value: str, match: str, node: str | None) -> None:
    result, _ = prom(vector(({label: value}, "3")), key=MetricKey("prom", "q", label, match))
    assert isinstance(result, FetchResult)
    assert result.values == ({node: 3.0} if node else {})
    assert bool(result.unmatched) == (node is None)


def test_prometheus_reports_series_that_match_no_node() -> None:
    body = vector(
        ({"node": "node-a"}, "1"),
        ({"node": "gone-node"}, "2"),
        ({"instance": "x:1"}, "3"),
    )
    result, _ = prom(body)
    assert isinstance(result, FetchResult)
    assert result.values == {"node-a": 1.0}
    assert result.unmatched == [
        "node='gone-node'",
        "series without label 'node': {instance=\"x:1\"}",
    ]


def test_prometheus_keeps_the_largest_of_several_series_and_skips_nan() -> None:
    body = vector(
        ({"node": "node-a", "pod": "1"}, "0.1"),
        ({"node": "node-a", "pod": "2"}, "0.4"),
        ({"node": "node-b"}, "NaN"),
        ({"node": "node-c"}, "+Inf"),
    )
    result, _ = prom(body)
    assert isinstance(result, FetchResult)
    assert result.values == {"node-a": 0.4}


def test_prometheus_large_answer_is_read_whole() -> None:
    padding = "x" * 200
    series = [({"node": f"other-{i}", "pad": padding}, "1") for i in range(20000)]
    body = vector(({"node": "node-a"}, "0.5"), *series, ({"node": "node-c"}, "0.7"))
    assert len(json.dumps(body)) > 4 << 20
    result, _ = prom(body)
    assert isinstance(result, FetchResult)
    assert result.values == {"node-a": 0.5, "node-c": 0.7}
    assert len(result.unmatched) == 20000


def test_prometheus_empty_vector_is_no_values_not_an_error() -> None:
    result, _ = prom(vector())
    assert isinstance(result, FetchResult) and result.values == {} and result.unmatched == []


@pytest.mark.parametrize(
    ("body", "status", "reason", "down", "message"),
    [
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error"},
            400,
            "query",
            False,
            "failed: bad_data: parse error",
        ),
        (
            {"status": "error", "errorType": "unavailable", "error": "tsdb"},
            503,
            "server",
            True,
            "unavailable",
        ),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}},
            200,
            "query",
            False,
            "returns a scalar",
        ),
        (
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            200,
            "query",
            False,
            "not an instant vector",
        ),
        ("<html>oops</html>", 200, "malformed", True, "not JSON"),
        ("", 200, "malformed", True, "not a JSON object"),
        ([1, 2], 200, "malformed", True, "not a JSON object"),
        ({"status": "success"}, 200, "malformed", True, "data object"),
        (
            {"status": "success", "data": {"resultType": "vector", "result": {}}},
            200,
            "malformed",
            True,
            "not a list",
        ),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            200,
            "malformed",
            True,
            "data.result[0]",
        ),
        (vector(({"node": "node-a"}, "abc")), 200, "malformed", True, "not numeric"),
        ("bad gateway", 502, "http", True, "HTTP 502"),
    ],
)
def test_prometheus_errors(body: Any, status: int, reason: str, down: bool, message: str) -> None:
    result, _ = prom(body, status=status)
    assert isinstance(result, SourceError), result
    assert result.reason == reason
    assert result.down is down
    assert message in str(result)


def test_prometheus_sends_bearer_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_TEST_PROM_TOKEN", "s3cret-token")
    result, reqs = prom(vector(), config={"credentials": {"tokenEnv": "BERTH_TEST_PROM_TOKEN"}})
    assert isinstance(result, FetchResult)
    assert reqs[0].headers["Authorization"] == "Bearer s3cret-token"


def test_prometheus_basic_auth_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    result, reqs = prom(
        vector(), config={"credentials": {"tokenFile": str(secret), "username": "berth"}}
    )
    assert isinstance(result, FetchResult)
    assert reqs[0].headers["Authorization"] == "Basic YmVydGg6aHVudGVyMg=="


def test_missing_credentials_are_an_error_without_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BERTH_TEST_UNSET", raising=False)
    result, reqs = prom(vector(), config={"credentials": {"tokenEnv": "BERTH_TEST_UNSET"}})
    assert isinstance(result, SourceError) and result.reason == "credentials"
    assert "BERTH_TEST_UNSET is not set" in str(result)
    assert reqs == []


def test_unreachable_prometheus_is_a_connection_error() -> None:
    async def scenario() -> SourceError:
        from .helpers import free_port

        cfg = MetricSource.model_validate({**PROM, "url": f"http://127.0.0.1:{free_port()}"})
        async with aiohttp.ClientSession() as session:
            with pytest.raises(SourceError) as exc:
                await PrometheusSource(cfg).fetch(
                    MetricKey("prom", "q"), nodes=NODES, session=session
                )
        return exc.value

    err = asyncio.run(scenario())
    assert err.reason == "connection" and err.down


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("10.0.0.1:9100", "10.0.0.1"),
        ("[fd00::1]:9100", "fd00::1"),
        ("node-a", "node-a"),
        ("fd00::1", "fd00::1"),  # a bare IPv6 address keeps its colons
        ("host:http", "host:http"),
    ],
)
def test_strip_port(value: str, host: str) -> None:
    assert strip_port(value) == host


# ----- Sysdig --------------------------------------------------------------------------------
def sysdig(
    body: Any, *, status: int = 200, query: str = "net.http.request.time", **config: Any
) -> tuple[FetchResult | SourceError, list[web.Request]]:
    return run_fetch(
        SysdigSource,
        {
            "name": "sysdig",
            "type": "sysdig",
            "credentials": {"tokenEnv": "BERTH_TEST_SYSDIG_TOKEN"},
            **config,
        },
        MetricKey("sysdig", query),
        answer(body, status),
        path="/api/data/",
        method="POST",
    )


@pytest.fixture
def sysdig_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BERTH_TEST_SYSDIG_TOKEN", "sysdig-token-123")
    return "sysdig-token-123"


def test_sysdig_request_shape(sysdig_token: str) -> None:
    body = {
        "data": [
            {"t": 1700000060, "d": ["node-a", 0.12]},
            {"t": 1700000060, "d": ["node-b", 0.03]},
        ],
        "start": 1700000000,
        "end": 1700000060,
    }
    result, reqs = sysdig(body, filter="kubernetes.cluster.name = 'prod'", window="2m")
    assert isinstance(result, FetchResult)
    assert result.values == {"node-a": 0.12, "node-b": 0.03}
    assert result.times == {"node-a": 1700000060.0, "node-b": 1700000060.0}
    req = reqs[0]
    assert req.headers["Authorization"] == f"Bearer {sysdig_token}"
    assert req.headers["Content-Type"] == "application/json"
    assert json.loads(req[BODY_KEY]) == {
        "metrics": [
            {"id": "host.hostName"},
            {"id": "net.http.request.time", "aggregations": {"time": "timeAvg", "group": "avg"}},
        ],
        "dataSourceType": "host",
        "last": 120,
        "sampling": 120,
        "filter": "kubernetes.cluster.name = 'prod'",
    }


def test_sysdig_query_with_aggregations() -> None:
    body = request_body(
        "net.http.error.count:sum:max",
        segment_by="host.hostName",
        data_source_type="host",
        window=60,
        filter_expr=None,
    )
    assert body["metrics"][1] == {
        "id": "net.http.error.count",
        "aggregations": {"time": "sum", "group": "max"},
    }
    assert "filter" not in body


def test_sysdig_answers(sysdig_token: str) -> None:
    body = {
        "data": [
            {"t": 1700000000, "d": ["node-a", 0.5]},
            {"t": 1700000060000, "d": ["node-a", 0.2]},  # milliseconds, and newer
            {"t": 1700000060, "d": ["node-b", None]},  # no data in the window
            {"t": 1700000060, "d": ["10.0.0.2", 0.7]},  # an address
            {"t": 1700000060, "d": ["stranger", 1.0]},
            {"t": 1700000060, "d": ["stranger", 2.0]},
        ]
    }
    result, _ = sysdig(body)
    assert isinstance(result, FetchResult)
    assert result.values == {"node-a": 0.2, "node-b": 0.7}
    assert result.times["node-a"] == 1700000060.0
    assert result.unmatched == ["host 'stranger'"]


@pytest.mark.parametrize(
    ("body", "status", "reason", "message"),
    [
        ({"data": [{"d": ["node-a"]}]}, 200, "malformed", "data[0]"),
        ({"data": [{"d": [1, 2]}]}, 200, "malformed", "[host name, number]"),
        ({"data": [{"d": ["node-a", "x"]}]}, 200, "malformed", "[host name, number]"),
        ({"nodata": []}, 200, "malformed", "no data list"),
        ("not json", 200, "malformed", "not JSON"),
        ({"message": "Unauthorized"}, 401, "http", "HTTP 401"),
    ],
)
def test_sysdig_errors(
    sysdig_token: str, body: Any, status: int, reason: str, message: str
) -> None:
    result, _ = sysdig(body, status=status)
    assert isinstance(result, SourceError)
    assert result.reason == reason and message in str(result)


def test_sysdig_empty_answer(sysdig_token: str) -> None:
    result, _ = sysdig({"data": []})
    assert isinstance(result, FetchResult) and result.values == {}


# ----- metrics.k8s.io ------------------------------------------------------------------------
METRICS_NODES = NodeDirectory(
    [
        NodeRecord("node-a", allocatable={"cpu": 4000, "memory": 8 * 2**30}),
        NodeRecord("node-b", allocatable={"cpu": 2000, "memory": 4 * 2**30}),
        NodeRecord("node-c", allocatable={}),
    ]
)


def node_metrics(*items: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "kind": "NodeMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": n},
                "timestamp": "2024-05-01T10:00:00Z",
                "window": "20.05s",
                "usage": {"cpu": cpu, "memory": mem},
            }
            for n, cpu, mem in items
        ],
    }


def metrics_api(
    body: Any, query: str, *, status: int = 200, **config: Any
) -> tuple[FetchResult | SourceError, list[web.Request]]:
    return run_fetch(
        MetricsAPISource,
        {"name": "ms", "type": "metrics-api", **config},
        MetricKey("ms", query),
        answer(body, status),
        path="/apis/metrics.k8s.io/v1beta1/nodes",
        nodes=METRICS_NODES,
    )


BODY = node_metrics(
    ("node-a", "1", "2Gi"),
    ("node-b", "500m", "1Gi"),
    ("node-c", "100m", "1Gi"),
    ("node-x", "1", "1Gi"),
)


@pytest.mark.parametrize(
    ("query", "values"),
    [
        ("cpu", {"node-a": 25.0, "node-b": 25.0}),
        ("memory", {"node-a": 25.0, "node-b": 25.0}),
        ("cpu-cores", {"node-a": 1.0, "node-b": 0.5, "node-c": 0.1}),
        ("memory-bytes", {"node-a": 2.0 * 2**30, "node-b": 2.0**30, "node-c": 2.0**30}),
    ],
)
def test_metrics_api_usage(query: str, values: dict[str, float]) -> None:
    result, _ = metrics_api(BODY, query)
    assert isinstance(result, FetchResult)
    assert result.values == pytest.approx(values)
    assert result.unmatched == ["NodeMetrics 'node-x'"]
    assert set(result.times.values()) == {1714557600.0}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "Status"}, "not a NodeMetricsList"),
        ({"items": [{"metadata": {"name": "node-a"}}]}, "items[0]"),
        (node_metrics(("node-a", "lots", "1Gi")), "usage has no valid cpu"),
    ],
)
def test_metrics_api_malformed(body: Any, message: str) -> None:
    result, _ = metrics_api(body, "cpu")
    assert isinstance(result, SourceError) and result.reason == "malformed"
    assert message in str(result)


def test_metrics_api_from_kubeconfig(tmp_path: Path) -> None:
    """Without a url, the API server and token come from the kubeconfig."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response(node_metrics(("node-a", "2", "4Gi")))

    async def scenario() -> FetchResult:
        async with serve(
            json_app(handler, path="/apis/metrics.k8s.io/v1beta1/nodes", method="GET")
        ) as url:
            kubeconfig = tmp_path / "kubeconfig"
            kubeconfig.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [{"name": "c", "cluster": {"server": url}}],
                        "users": [{"name": "u", "user": {"token": "kube-token"}}],
                        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                        "current-context": "x",
                    }
                )
            )
            cfg = MetricSource.model_validate(
                {"name": "ms", "type": "metrics-api", "kubeconfig": str(kubeconfig)}
            )
            async with aiohttp.ClientSession() as session:
                return await MetricsAPISource(cfg).fetch(
                    MetricKey("ms", "cpu"), nodes=METRICS_NODES, session=session
                )

    result = asyncio.run(scenario())
    assert result.values == {"node-a": 50.0}
    assert seen == ["Bearer kube-token"]


# ----- node annotations and labels -----------------------------------------------------------
def test_node_annotation_and_label_sources() -> None:
    nodes = NodeDirectory(
        [
            NodeRecord("node-a", annotations={"price": "0.12"}, labels={"price-label": "3"}),
            NodeRecord("node-b", annotations={"price": "cheap"}, labels={}),
            NodeRecord("node-c"),
        ]
    )

    async def fetch(kind: str, query: str) -> FetchResult:
        cfg = MetricSource.model_validate({"name": "n", "type": kind})
        return await NodeFieldSource(cfg).fetch(MetricKey("n", query), nodes=nodes, session=None)

    by_annotation = asyncio.run(fetch("node-annotation", "price"))
    assert by_annotation.values == {"node-a": 0.12}
    assert by_annotation.unmatched == ["node node-b: price='cheap' is not a number"]
    by_label = asyncio.run(fetch("node-label", "price-label"))
    assert by_label.values == {"node-a": 3.0} and by_label.unmatched == []
