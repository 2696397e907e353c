"""An in-process extender on 127.0.0.1 and request helpers, for the extender's tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from berth.config import parse_config
from berth.engine import Engine
from berth.extender.adapter import ExtenderAdapter
from berth.extender.server import ExtenderOptions, ExtenderServer
from berth.kube.binder import Binder


@contextlib.asynccontextmanager
async def serving(
    *,
    config: dict[str, Any] | None = None,
    engine: Engine | None = None,
    binder: Binder | None = None,
    nodes_from_informer: bool = False,
    **options: Any,
) -> AsyncIterator[tuple[str, ExtenderServer]]:
    """An ExtenderServer on an ephemeral port; yields its base URL (prefix included)."""
    engine = engine or Engine(config=parse_config(config or {}), seed=1)
    adapter = ExtenderAdapter(engine, binder=binder, nodes_from_informer=nodes_from_informer)
    opts = ExtenderOptions(bind_address="127.0.0.1:0", **options)
    server = ExtenderServer(adapter=adapter, options=opts)
    await server.start(host="127.0.0.1", port=0)
    try:
        yield f"http://127.0.0.1:{server.port}{server.prefix}", server
    finally:
        await server.stop()


async def post(
    url: str, body: Any, *, raw: bytes | None = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, json=None if raw is not None else body, data=raw, headers=headers
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def node_list(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A v1 NodeList as Go marshals it (kind/apiVersion omitted, metadata always present)."""
    return {"metadata": {}, "items": list(nodes)}


def args(pod: dict[str, Any], *nodes: dict[str, Any]) -> dict[str, Any]:
    return {"Pod": pod, "Nodes": node_list(*nodes), "NodeNames": None}
