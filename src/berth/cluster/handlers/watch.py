"""Watch streams: newline-delimited JSON events over a chunked response.

Events arrive pre-serialised from the store's fan-out and are written in batches (everything
queued since the last write, in one chunk). Bookmarks carry the store's resourceVersion after
the queue is drained, so a client resuming from one misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from berth.cluster.resources import ResourceType
from berth.cluster.selectors import Predicate
from berth.cluster.store import Store, event_bytes
from berth.cluster.tables import table

JSON = dict[str, Any]
Transform = Callable[[JSON], JSON]


def _bookmark(rt: ResourceType, rv: int, *, initial_end: bool = False) -> bytes:
    meta: JSON = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    return b'{"type":"BOOKMARK","object":' + orjson.dumps(obj) + b"}"


def _render(
    rt: ResourceType,
    kind: str,
    obj: JSON,
    data: bytes | None,
    as_table: str | None,
    transform: Transform | None,
) -> bytes:
    if transform is not None:
        obj = transform(obj)
        data = None
    if as_table is not None:
        t = table(
            rt,
            [obj],
            resource_version=obj["metadata"].get("resourceVersion", ""),
            include_object=as_table,
        )
        return event_bytes(kind, orjson.dumps(t))
    if data is not None:
        return data
    return event_bytes(kind, orjson.dumps(obj))


async def serve_watch(
    request: web.Request,
    *,
    store: Store,
    rt: ResourceType,
    storage_rt: ResourceType,
    transform: Transform | None,
    namespace: str | None,
    predicate: Predicate,
    since: int | None,
    timeout: float | None,
    bookmarks: bool,
    bookmark_interval: float,
    send_initial_end: bool,
    as_table: str | None,
) -> web.StreamResponse:
    """Open a watch (raising 410 before any byte is sent) and stream it until it ends."""
    watcher = store.watch(storage_rt, namespace=namespace, predicate=predicate, since=since)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        response.enable_chunked_encoding()
        await response.prepare(request)
        deadline = time.monotonic() + timeout if timeout else None
        next_bookmark = time.monotonic() + bookmark_interval
        initial_pending = send_initial_end
        while not watcher.closed:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            if watcher.pending:
                chunks = []
                pending = watcher.pending
                while pending:
                    kind, obj, data = pending.popleft()
                    chunks.append(_render(rt, kind, obj, data, as_table, transform))
                    chunks.append(b"\n")
                await response.write(b"".join(chunks))
                continue
            if initial_pending:
                initial_pending = False
                await response.write(_bookmark(rt, store.rv, initial_end=True) + b"\n")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if bookmarks and now >= next_bookmark:
                await response.write(_bookmark(rt, store.rv) + b"\n")
                next_bookmark = now + bookmark_interval
            wait = bookmark_interval if bookmarks else 3600.0
            if deadline is not None:
                wait = min(wait, deadline - now)
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            watcher.wakeup.clear()
            if watcher.pending or watcher.closed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watcher.wakeup.wait(), timeout=max(0.001, wait))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; nothing more to send
    finally:
        store.unwatch(watcher)
    return response
