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
from aiohttp import HttpVersion11, web

from berth.cluster.resources import ResourceType
from berth.cluster.selectors import Predicate
from berth.cluster.store import Store, entry_bytes, event_bytes, object_of
from berth.cluster.tables import table

JSON = dict[str, Any]
_WRITE_BYTES = 1 << 20  # one write carries at most about this much of a watcher's backlog
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
    obj: JSON | None,
    data: bytes | None,
    as_table: str | None,
    transform: Transform | None,
) -> bytes:
    if transform is None and as_table is None:
        return entry_bytes(kind, obj, data)
    obj = object_of(kind, obj, data)
    if transform is not None:
        obj = transform(obj)
    if as_table is not None:
        t = table(
            rt,
            [obj],
            resource_version=obj["metadata"].get("resourceVersion", ""),
            include_object=as_table,
        )
        return event_bytes(kind, orjson.dumps(t))
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
    timeout: float,
    bookmarks: bool,
    bookmark_interval: float,
    send_initial_end: bool,
    as_table: str | None,
) -> web.StreamResponse:
    """Open a watch (raising 410 before any byte is sent) and stream it until it ends."""
    watcher = store.watch(storage_rt, namespace=namespace, predicate=predicate, since=since)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        if request.version >= HttpVersion11:
            response.enable_chunked_encoding()
        else:  # HTTP/1.0 has no chunks: the stream ends with the connection
            response.force_close()
        await response.prepare(request)
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + bookmark_interval
        initial_pending = send_initial_end
        while not watcher.closed:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            if watcher.pending:
                chunks: list[bytes] = []
                size = 0
                while watcher.pending and size < _WRITE_BYTES:
                    kind, obj, data = watcher.pop()
                    chunk = _render(rt, kind, obj, data, as_table, transform)
                    chunks += (chunk, b"\n")
                    size += len(chunk)
                await response.write(b"".join(chunks))
                continue
            if initial_pending:
                initial_pending = False
                await response.write(_bookmark(rt, store.rv, initial_end=True) + b"\n")
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now >= next_bookmark:
                await response.write(_bookmark(rt, store.rv) + b"\n")
                next_bookmark = now + bookmark_interval
            wait = bookmark_interval if bookmarks else 3600.0
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
