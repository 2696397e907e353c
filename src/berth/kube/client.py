"""Building an API client: explicit kubeconfig, $KUBECONFIG, ~/.kube/config, or in-cluster."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from kubernetes.aio import client as k8s
from kubernetes.aio import config as k8s_config

from berth.kube.http1 import ConnectionLost, Http1Pool

# What a request can fail with when no answer was read: the caller's retry rules apply.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    aiohttp.ClientError,
    ConnectionLost,
)
# Each informer's watch holds a connection for as long as it streams (HTTP/1.1 carries one request
# per connection) and aiohttp's limit counts it. With the limit at the burst alone, a burst below
# the number of watched kinds (18) left informers waiting for a connection forever: `berth run`
# with clientConnection.burst 5 never became ready. client-go has no such cap (HTTP/2 multiplexes
# the watches; its HTTP/1.1 transport limits idle connections only), so the watches come on top.
WATCH_CONNECTIONS = 24


class NoClusterConfigured(Exception):
    """No kubeconfig and not running in a pod: the caller may fall back to an embedded cluster."""


@dataclass(frozen=True)
class ConnectSpec:
    """The arguments `connect` was called with: enough for another process (the API
    dispatcher) to open its own connection to the same cluster, credentials read there."""

    kubeconfig: str | None
    context: str | None
    qps_burst: int
    request_timeout: float


@dataclass
class Connection:
    api: k8s.ApiClient
    source: str  # where the configuration came from, for the log
    request_timeout: float
    spec: ConnectSpec | None = None  # None: built by hand, not reproducible elsewhere
    lean: LeanPath | None = None  # the per-pod writes' HTTP/1.1 path (`connect(lean=True)`)

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    async def close(self) -> None:
        if self.lean is not None:
            await self.lean.close()
        await self.api.close()  # type: ignore[no-untyped-call]

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One API call and its decoded answer: (status, JSON body or None). On the lean
        HTTP/1.1 path when the connection has one (the API dispatcher's), else `request`.
        Raises one of TRANSPORT_ERRORS when no answer was read."""
        lean = self.lean
        if lean is None or _library_retries(self.api, method):
            response = await self.request(method, path, body, content_type=content_type)
            return response.status, await read_json(response)
        status, data = await lean.request(method, path, body, content_type=content_type)
        return status, decode_answer(data)

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
    ) -> aiohttp.ClientResponse:
        """One API call through the client's own request layer, which keeps auth (token
        refresh, exec plugins), TLS and proxies; read the answer with `read_json`.

        The scheduler's per-pod calls (bind, events) use this instead of the generated
        methods: those validate every argument with pydantic and turn a dict body into a model
        and back, ~40% of a call's CPU in `berth run` (measured: 0.19 vs 0.13 ms per call).
        `path` is the URL path with its parameters already quoted (`quote_path`).
        """
        api = self.api
        verb, url, headers, _, _ = await api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        rest = api.rest_client
        config = api.configuration
        if _library_retries(api, verb):  # the library's retrying paths: its own request
            answer = await api.call_api(
                verb, url, header_params=headers, body=body, _request_timeout=self.request_timeout
            )
            response: aiohttp.ClientResponse = answer.response
            return response
        # What RESTClientObject.request does otherwise, on the session it owns, with the same
        # arguments, the body encoded by orjson instead of json.dumps: a fifth less CPU per
        # call (measured over 3,000 POSTs to a local server, 32 in flight).
        session = rest.pool_manager
        if session is None:
            session = rest.pool_manager = rest._create_pool_manager()
        options: dict[str, Any] = {}
        if config.tls_server_name:
            options["server_hostname"] = config.tls_server_name
        if rest.proxy:
            options["proxy"] = rest.proxy
        if rest.proxy_headers:
            options["proxy_headers"] = rest.proxy_headers
        return await session.request(
            verb,
            url,
            headers=headers,
            data=None if body is None else orjson.dumps(body),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
            **options,
        )


class LeanPath:
    """The API client's requests on `http1`'s keep-alive pool: the same server URL, the same
    TLS context (the library's: CA, client certificate, verification, server name), the same
    headers (its default headers, cookie and bearer token; the token read from its auth
    settings on every call, so a refreshed or exec-plugin token is used as the library would;
    no Accept-Encoding, so the answers, a few kB, come uncompressed). Not used through a proxy
    or with the library's own retries (`lean_path_for` says None)."""

    def __init__(self, api: k8s.ApiClient, *, max_connections: int, timeout: float) -> None:
        config = api.configuration
        parts = urlsplit(config.host)
        https = parts.scheme == "https"
        if not parts.hostname or parts.scheme not in ("http", "https"):
            raise ValueError(f"cannot send to {config.host!r}: not an http(s) URL with a host")
        self.api = api
        self._prefix = parts.path.rstrip("/")
        self._host = parts.netloc.rpartition("@")[2]
        self._blocks: dict[tuple[str, str | None], bytes] = {}
        self.pool = Http1Pool(
            host=parts.hostname,
            port=parts.port or (443 if https else 80),
            ssl_context=api.rest_client.ssl_context if https else None,
            server_hostname=config.tls_server_name or parts.hostname,
            max_connections=max_connections,
            timeout=timeout,
        )

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None, *, content_type: str
    ) -> tuple[int, bytes]:
        settings = await self.api.configuration.auth_settings()
        token = settings.get("BearerToken")
        auth = None if token is None or token["value"] is None else str(token["value"])
        block = self._blocks.get((content_type, auth))
        if block is None:
            block = self._block(content_type, auth)
        target = self._prefix + path
        if _UNSAFE_TARGET.search(target):
            raise ValueError(f"not a quoted URL path: {target!r}")  # never from object data
        head = f"{method} {target} HTTP/1.1\r\n".encode() + block
        if body is None:
            return await self.pool.request(head + b"\r\n")
        data = orjson.dumps(body)
        return await self.pool.request(head + b"Content-Length: %d\r\n\r\n" % len(data) + data)

    def _block(self, content_type: str, auth: str | None) -> bytes:
        """The headers every call with this content type and token sends, encoded once."""
        headers = {"Host": self._host, "Accept": "application/json", "Content-Type": content_type}
        headers.update(self.api.default_headers)  # User-Agent, and any the caller set
        if self.api.cookie:
            headers["Cookie"] = self.api.cookie
        if auth is not None:
            headers["authorization"] = auth
        lines = []
        for name, value in headers.items():
            text = str(value)
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"header {name} holds a line break")
            lines.append(f"{name}: {text}\r\n")
        block = "".join(lines).encode("latin-1")
        if len(self._blocks) > 16:  # a token that keeps changing: keep only the newest
            self._blocks.clear()
        self._blocks[(content_type, auth)] = block
        return block

    async def close(self) -> None:
        await self.pool.close()


def _library_retries(api: k8s.ApiClient, method: str) -> bool:
    """Whether the client library retries this call itself (its retry options, or client-go's
    retries of reads): then only its own request layer may send it."""
    if api.rest_client._effective_retry_options is not None:
        return True
    return bool(api.configuration.client_go_retries) and method in ("GET", "HEAD")


def lean_path_for(api: k8s.ApiClient, *, max_connections: int, timeout: float) -> LeanPath | None:
    """A LeanPath for `api`, or None where the library's own request layer must run: through a
    proxy, or with its retry options set."""
    if api.configuration.proxy or api.rest_client._effective_retry_options is not None:
        return None
    return LeanPath(api, max_connections=max_connections, timeout=timeout)


def find_kubeconfig(explicit: str | None) -> str | None:
    """The kubeconfig file to use, in kubectl's order; None when there is none."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        # kubectl merges a path list; the first existing file is what we can load as one.
        for part in env.split(os.pathsep):
            if part and Path(part).expanduser().exists():
                return str(Path(part).expanduser())
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.exists() else None


async def connect(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    qps_burst: int = 100,
    request_timeout: float = 30.0,
    max_connections: int | None = None,
    lean: bool = False,
) -> Connection:
    """An ApiClient for the configured cluster; raises NoClusterConfigured when there is none.
    It opens up to `max_connections` connections (default: the burst, at least 10, for requests
    plus WATCH_CONNECTIONS for the informers' watches); with `lean`, `Connection.call` goes on
    the lean HTTP/1.1 path (its own connections, as many at most) wherever the library's
    request layer allows it."""
    configuration = k8s.Configuration()
    path = find_kubeconfig(kubeconfig)
    if path is not None:
        if not Path(path).exists():
            raise FileNotFoundError(f"kubeconfig {path} does not exist")
        await k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration
        )
        source = f"kubeconfig {path}"
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        source = "in-cluster service account"
    else:
        raise NoClusterConfigured("no kubeconfig found and not running inside a cluster")
    configuration.connection_pool_maxsize = max_connections or (
        max(qps_burst, 10) + WATCH_CONNECTIONS
    )
    # aiohttp's trust_env (the client's default) looks up proxy variables and parses ~/.netrc on
    # an executor thread for every request: two thread hops per API call, a third of the
    # scheduler's CPU in `berth bench`. Resolve the proxy once here instead; netrc is never
    # used for Kubernetes credentials.
    configuration.client_session_kwargs = {"trust_env": False}
    if not configuration.proxy:
        configuration.proxy = _env_proxy(configuration.host)
    api = k8s.ApiClient(configuration)
    return Connection(
        api=api,
        source=source,
        request_timeout=request_timeout,
        lean=lean_path_for(
            api, max_connections=configuration.connection_pool_maxsize, timeout=request_timeout
        )
        if lean
        else None,
        spec=ConnectSpec(
            kubeconfig=path, context=context, qps_burst=qps_burst, request_timeout=request_timeout
        ),
    )


def _env_proxy(url: str) -> str | None:
    """The proxy $HTTPS_PROXY / $HTTP_PROXY / $NO_PROXY give for `url` (what trust_env did)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme or "https")


async def read_json(response: aiohttp.ClientResponse) -> Any:
    """The JSON body of a raw response (from a `*_without_preload_content` call)."""
    try:
        body = await response.read()
    finally:
        response.release()
    return decode_answer(body)


def decode_answer(body: bytes) -> Any:
    """An answer's body: its JSON, None when empty, or its start as a `message`."""
    if not body:
        return None
    try:
        return loads(body)
    except ValueError:
        return {"message": body[:200].decode("utf-8", "replace")}


def loads(data: bytes) -> Any:
    """JSON from the API server. orjson decodes a watched pod in an eighth of json's time
    (7.5 against 57 µs for a bound pod's 1.5 kB event, measured); what it refuses and json
    accepts (NaN, Infinity, lone surrogates) goes to json; what neither reads raises json's
    ValueError. The one difference from json: an integer beyond 64 bits is read as a float,
    which is what kube-apiserver itself stores for one (a float64 in unstructured JSON)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


# what may not stand in a request target: spaces, controls, anything beyond ASCII
_UNSAFE_TARGET = re.compile("[\x00-\x20\x7f-\U0010ffff]")
# what urllib's quote(safe="") leaves as it is: a segment of these alone needs no quoting
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def quote_path(*parts: str) -> str:
    """`/`-joined URL path segments, each percent-quoted (names are DNS labels, but a path is
    never built from unquoted object data). A segment quoting would not change is taken as it
    is: quote() was 5% of the API dispatcher's samples, on names that never need it."""
    unreserved = _UNRESERVED.fullmatch
    return "/" + "/".join(p if unreserved(p) else quote(p, safe="") for p in parts)


def raw_body(body: dict[str, Any]) -> Any:
    """A plain dict as a request body. The client serialises dicts as they are; only its type
    annotations ask for generated models, which Berth never builds on its paths."""
    return body


def status_message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body)
    return str(body)
