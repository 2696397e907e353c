"""The fidelity suite's fixtures: a fresh cluster per test on both servers (`server`), a small
client over the official library's request layer (`api`, raw status codes and bodies, the
same auth and TLS as any client), and the behaviour x server table of a run.

`@differs("why")` marks a behaviour the embedded cluster does not match yet: on `embedded` it
is a strict xfail (so a fix shows up as XPASS and the mark must go), on `upstream` it must pass.
With BERTH_FIDELITY_TABLE=FILE the run writes its table (markdown) to FILE.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from kubernetes import config

from tests.upstream import SERVERS, clusters


def differs(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.embedded_differs(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_differs(reason): a known difference of the embedded cluster"
    )


def eventually(check: Callable[[], bool], *, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """A Status body's reason ('' for anything else)."""
        return str(self.body.get("reason", "")) if isinstance(self.body, dict) else ""

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""


class Api:
    """Raw requests through the official client's ApiClient: its TLS, client certificates and
    tokens from the kubeconfig, no models in the way of the status code and body."""

    def __init__(self, kubeconfig: Path) -> None:
        self.client = config.new_client_from_config(config_file=str(kubeconfig))

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        query: dict[str, Any] | None,
        content_type: str,
        accept: str,
        timeout: float,
    ) -> Any:
        url_path = path + ("?" + urlencode(query) if query else "")
        _, url, headers, _, _ = self.client.param_serialize(
            method=method,
            resource_path=url_path,
            header_params={"Content-Type": content_type, "Accept": accept},
            auth_settings=["BearerToken"],
        )
        return self.client.call_api(
            method, url, header_params=headers, body=body, _request_timeout=timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = 30,
    ) -> Answer:
        response = self._call(
            method,
            path,
            body,
            query=query,
            content_type=content_type,
            accept=accept,
            timeout=timeout,
        )
        raw = response.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(status=response.status, body=parsed, headers=dict(response.getheaders()))

    def get(self, path: str, **query: Any) -> Answer:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any, **query: Any) -> Answer:
        return self.request("POST", path, body, query=query or None)

    def watch(
        self,
        path: str,
        *,
        until: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 15,
        **query: Any,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Watch `path` until `until(events so far)` holds (or the stream ends or `timeout`
        passes); the HTTP status and the events read."""
        query = {"watch": "true", "timeoutSeconds": int(timeout), **query}
        response = self._call(
            "GET",
            path,
            None,
            query=query,
            content_type="application/json",
            accept="application/json",
            timeout=timeout + 5,
        )
        events: list[dict[str, Any]] = []
        if response.status != 200:
            raw = response.read()
            return response.status, [json.loads(raw)] if raw else []
        deadline = time.monotonic() + timeout
        buffer = b""
        stream = response.response
        try:
            for chunk in stream.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        events.append(json.loads(line))
                if until(events) or time.monotonic() > deadline:
                    break
        finally:
            stream.release_conn()
        return response.status, events


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Two nodes in one zone, fresh for the test, on the embedded and the real server."""
    marker = request.node.get_closest_marker("embedded_differs")
    if marker is not None and request.param == "embedded":
        request.applymarker(pytest.mark.xfail(reason=marker.args[0], strict=True))
    yield from clusters(request, nodes=2, zones=1, cpu="4", memory="16Gi")


@pytest.fixture
def api(server: Any) -> Api:
    return Api(server.kubeconfig_path)


# -- the behaviour x server table --------------------------------------------------------------

_RESULTS: dict[str, dict[str, str]] = {}
_ORDER: list[str] = []


def _behaviour(item: pytest.Item) -> str:
    """The test's docstring (its first paragraph), with its parameters other than the server."""
    doc = getattr(getattr(item, "function", None), "__doc__", None) or item.name
    text = " ".join(doc.strip().split("\n\n")[0].split())
    callspec = getattr(item, "callspec", None)
    extra = [p for p in (callspec.id.split("-") if callspec else []) if p not in SERVERS]
    return f"{text} ({', '.join(extra)})" if extra else text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    params = getattr(getattr(item, "callspec", None), "params", {})
    name = next((v for v in params.values() if isinstance(v, str) and v in SERVERS), None)
    if name is None or not str(item.nodeid).startswith("tests/fidelity/"):
        return
    if report.when == "setup" and report.skipped:
        result = "skipped"
    elif report.when != "call":
        if report.failed:
            result = "error"
        else:
            return
    elif hasattr(report, "wasxfail"):
        result = "differs" if report.skipped else "XPASS"
    elif name == "upstream":  # the expectation is kube-apiserver's own answer
        result = {"passed": "pass", "failed": "FAILED"}.get(report.outcome, report.outcome)
    else:
        result = {"passed": "same", "failed": "FAILED"}.get(report.outcome, report.outcome)
    behaviour = _behaviour(item)
    if behaviour not in _RESULTS:
        _RESULTS[behaviour] = {}
        _ORDER.append(behaviour)
    _RESULTS[behaviour][str(name)] = result


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("BERTH_FIDELITY_TABLE")
    if not target or not _RESULTS:
        return
    lines = ["| behaviour | embedded | upstream |", "| --- | --- | --- |"]
    for behaviour in _ORDER:
        row = _RESULTS[behaviour]
        lines.append(f"| {behaviour} | {row.get('embedded', '')} | {row.get('upstream', '')} |")
    Path(target).write_text("\n".join(lines) + "\n")
