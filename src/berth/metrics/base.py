"""What every metric source shares: the fetch contract, its errors, node-name mapping and HTTP.

A source turns one MetricKey into node name -> value (plus the sample time and the answers that
matched no node). Sources never touch the table; the refresher does. Errors say whether the
source itself is unreachable (`down`: timeouts, refused connections, 5xx, unreadable answers)
or only the query was wrong (a PromQL error): only the former marks the source down.
"""

from __future__ import annotations

import abc
import base64
import json
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from berth.config.metrics import CredentialError, MetricSource
from berth.metrics.table import MetricKey

MAX_ANSWER_BYTES = 32 << 20  # an answer larger than this is refused, not parsed


class SourceError(Exception):
    """A refresh failed. `reason` labels the error counter; `down` marks the source down."""

    def __init__(self, message: str, *, reason: str, down: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.down = down


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What sources need to know about a node: its name, addresses, labels, annotations and
    allocatable (cpu in millicores, memory in bytes)."""

    name: str
    addresses: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    allocatable: Mapping[str, int] = field(default_factory=dict)


class NodeDirectory:
    """Maps the node identifiers metric systems use (name, `host:port`, IP) to node names."""

    def __init__(self, nodes: Iterable[NodeRecord]) -> None:
        self.nodes: dict[str, NodeRecord] = {n.name: n for n in nodes}
        self._by_address: dict[str, str] = {}
        for node in self.nodes.values():
            for address in node.addresses:
                self._by_address.setdefault(address, node.name)

    def resolve(self, value: str, *, match: str = "auto") -> str | None:
        """The node `value` names. `name`: the node name, with or without a `:port`;
        `address`: one of the node's status.addresses, with or without a port; `auto`: name
        first, then address."""
        candidates = (value, strip_port(value))
        if match in ("auto", "name"):
            for c in candidates:
                if c in self.nodes:
                    return c
        if match in ("auto", "address"):
            for c in candidates:
                name = self._by_address.get(c)
                if name is not None:
                    return name
        return None


def strip_port(value: str) -> str:
    """`10.0.0.1:9100` -> `10.0.0.1`, `[fd00::1]:9100` -> `fd00::1`, others unchanged."""
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and host and ":" not in host:
        return host
    return value


@dataclass
class FetchResult:
    """Values per node name, their sample time (unix seconds; per node when `times` is set),
    and identifiers in the answer that matched no node."""

    values: dict[str, float]
    sample_time: float | None = None
    times: dict[str, float] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


class Source(abc.ABC):
    """A configured metric source. `fetch` may be called concurrently for different keys."""

    def __init__(self, config: MetricSource) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    async def fetch(
        self, key: MetricKey, *, nodes: NodeDirectory, session: aiohttp.ClientSession | None
    ) -> FetchResult:
        """Ask the source once; raise SourceError on any failure."""

    def needs_session(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# ----- HTTP helpers --------------------------------------------------------------------------
def ssl_context(config: MetricSource) -> ssl.SSLContext | bool:
    """The TLS settings for `config.url` (True: system defaults)."""
    tls = config.tls
    if not (tls.caFile or tls.insecureSkipVerify or tls.certFile):
        return True
    ctx = ssl.create_default_context(cafile=tls.caFile)
    if tls.insecureSkipVerify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.certFile and tls.keyFile:
        ctx.load_cert_chain(tls.certFile, tls.keyFile)
    return ctx


def auth_headers(config: MetricSource) -> dict[str, str]:
    """The Authorization header from the configured credentials (none when unset)."""
    creds = config.credentials
    if creds is None:
        return {}
    try:
        secret = creds.secret().get_secret_value()
    except CredentialError as exc:
        raise SourceError(f"credentials: {exc}", reason="credentials") from None
    if creds.username is not None:
        pair = f"{creds.username}:{secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {"Authorization": f"Bearer {secret}"}


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    ssl_option: ssl.SSLContext | bool = True,
    accept_error_json: bool = False,
) -> tuple[int, Any]:
    """Status and decoded JSON body; SourceError for transport errors and non-JSON answers.

    With `accept_error_json`, a 4xx/5xx answer whose body is JSON is returned (Prometheus puts
    query errors in such bodies) instead of raising."""
    try:
        async with session.request(
            method, url, headers=dict(headers), params=params, json=json_body, ssl=ssl_option
        ) as resp:
            status = resp.status
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise SourceError(
                        f"answer larger than {MAX_ANSWER_BYTES} bytes", reason="malformed"
                    )
                chunks.append(chunk)
            body = b"".join(chunks)
    except aiohttp.ClientConnectorError as exc:
        raise SourceError(
            f"cannot connect to {url_for_log(url)}: {exc.os_error}", reason="connection"
        ) from None
    except aiohttp.ClientError as exc:
        raise SourceError(
            f"request to {url_for_log(url)} failed: {exc}", reason="connection"
        ) from None
    try:
        decoded = json.loads(body) if body else None
    except ValueError:
        decoded = None
        if status < 400:
            raise SourceError(
                f"answer from {url_for_log(url)} is not JSON (HTTP {status})", reason="malformed"
            ) from None
    if status >= 400 and not (accept_error_json and isinstance(decoded, dict)):
        raise SourceError(f"HTTP {status} from {url_for_log(url)}", reason="http")
    return status, decoded


def url_for_log(url: str) -> str:
    """`url` without any userinfo, so a password in a URL never reaches a log line."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return f"{scheme}://{host}{slash}{path}"


__all__ = [
    "FetchResult",
    "NodeDirectory",
    "NodeRecord",
    "Source",
    "SourceError",
    "auth_headers",
    "request_json",
    "ssl_context",
    "strip_port",
    "url_for_log",
]
