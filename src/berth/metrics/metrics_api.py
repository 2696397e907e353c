"""metrics.k8s.io source: NodeMetrics from the resource metrics API (metrics-server).

`GET /apis/metrics.k8s.io/v1beta1/nodes` lists each node's cpu and memory usage with the time
it was sampled. Queries: `cpu` and `memory` give usage in percent of the node's allocatable (from
the cluster state), `cpu-cores` and `memory-bytes` the raw usage. Without a `url`, the API
server and credentials come from the kubeconfig (in-cluster first, then the default rules).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import datetime
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
from berth.objects.quantity import milli_value, parse_quantity

NODE_METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/nodes"


@dataclass(frozen=True)
class _Connection:
    base: str
    headers: dict[str, str]
    ssl_option: ssl.SSLContext | bool

    def __repr__(self) -> str:  # headers hold the token
        return f"_Connection(base={self.base!r})"


def _from_kubeconfig(path: str | None) -> _Connection:
    """API server URL, auth header and TLS from in-cluster config or a kubeconfig (blocking)."""
    from kubernetes import client
    from kubernetes import config as kconfig
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    try:
        if path is not None:
            raise ConfigException("explicit kubeconfig")
        kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except ConfigException:
        kconfig.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    headers = {}
    token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if token:
        prefix = cfg.api_key_prefix.get("authorization")
        headers["Authorization"] = f"{prefix} {token}" if prefix else token
    ssl_option: ssl.SSLContext | bool = True
    if cfg.host.startswith("https://"):
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if not cfg.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cfg.cert_file and cfg.key_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        ssl_option = ctx
    return _Connection(cfg.host.rstrip("/"), headers, ssl_option)


class MetricsAPISource(Source):
    _conn: _Connection | None = None

    async def _connection(self) -> _Connection:
        if self.config.url is not None:
            return _Connection(self.config.url, auth_headers(self.config), ssl_context(self.config))
        if self._conn is None:
            try:
                self._conn = await asyncio.to_thread(_from_kubeconfig, self.config.kubeconfig)
            except Exception as exc:  # the kubernetes loader raises many kinds
                raise SourceError(f"cannot load kubeconfig: {exc}", reason="credentials") from None
        return self._conn

    async def fetch(
        self, key: MetricKey, *, nodes: NodeDirectory, session: aiohttp.ClientSession | None
    ) -> FetchResult:
        assert session is not None
        conn = await self._connection()
        try:
            _, body = await request_json(
                session,
                "GET",
                conn.base + NODE_METRICS_PATH,
                headers=conn.headers,
                ssl_option=conn.ssl_option,
            )
        except SourceError:
            self._conn = None  # reload credentials next time (rotated token, new kubeconfig)
            raise
        return parse_node_metrics(body, key=key, nodes=nodes)


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_node_metrics(body: Any, *, key: MetricKey, nodes: NodeDirectory) -> FetchResult:
    """Usage values per node from a NodeMetricsList, in the unit `key.query` asks for."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise SourceError("answer is not a NodeMetricsList (no items)", reason="malformed")
    out = FetchResult(values={})
    for i, item in enumerate(body["items"]):
        meta = item.get("metadata") if isinstance(item, dict) else None
        usage = item.get("usage") if isinstance(item, dict) else None
        if not isinstance(meta, dict) or not isinstance(usage, dict):
            raise SourceError(f"items[{i}] has no metadata and usage", reason="malformed")
        name = str(meta.get("name") or "")
        node = nodes.nodes.get(name)
        if node is None:
            out.unmatched.append(f"NodeMetrics {name!r}")
            continue
        try:
            if key.query in ("cpu", "cpu-cores"):
                used = float(milli_value(usage["cpu"]))
                alloc = float(node.allocatable.get("cpu", 0))
                scale = 1000.0
            else:
                used = float(parse_quantity(usage["memory"]))
                alloc = float(node.allocatable.get("memory", 0))
                scale = 1.0
        except (KeyError, ValueError, TypeError):
            raise SourceError(
                f"items[{i}].usage has no valid {key.query}", reason="malformed"
            ) from None
        if key.query in ("cpu", "memory"):
            if alloc <= 0:
                continue
            value = used / alloc * 100.0
        else:
            value = used / scale
        out.values[node.name] = value
        t = _timestamp(item.get("timestamp"))
        if t is not None:
            out.times[node.name] = t
    return out


__all__ = ["MetricsAPISource", "parse_node_metrics"]
