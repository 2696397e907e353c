"""List then watch one resource into a local cache of raw objects, forever.

The traps this avoids: a watch from an expired resourceVersion answers `410 Gone` (as an HTTP
status or as an ERROR event) and must be followed by a fresh list; a broken stream is resumed
from the last resourceVersion seen (bookmarks included) with backoff; a relist must turn objects
that vanished meanwhile into deletions. Watch lines are split by hand because aiohttp's
`readline` refuses lines longer than its buffer limit (kopf's watching.py notes the same trap).
An informer whose handler parses all it needs keeps only identities (`cache_raw=False`); one
for a scheduler drops `metadata.managedFields` as objects arrive, as kube-scheduler's does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp

from berth.kube.client import decode_answer, loads, read_json, status_message
from berth.kube.listdecode import ITEM, members
from berth.logthrottle import Throttle
from berth.state.store import object_key as object_key  # re-exported for informer users

log = logging.getLogger("berth.informer")
_FAILURES = Throttle(interval=10.0)  # the same failure, logged once per interval
Obj = dict[str, Any]
ListCall = Callable[..., Awaitable[aiohttp.ClientResponse]]


class Handler(Protocol):
    def on_add(self, obj: Obj) -> None: ...
    def on_update(self, old: Obj, new: Obj) -> None: ...
    def on_delete(self, obj: Obj) -> None: ...


class Gone(Exception):
    """The resourceVersion we watch from is no longer retained by the server."""


class NotServed(Exception):
    """The server does not serve this resource (404 on list), e.g. a CRD that is not installed."""


class ObjectCache:
    """A handler that only keeps the latest raw objects (for resources read when needed)."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}

    def on_add(self, obj: Obj) -> None:
        self.objects[object_key(obj)] = obj

    def on_update(self, old: Obj, new: Obj) -> None:
        self.objects[object_key(new)] = new

    def on_delete(self, obj: Obj) -> None:
        self.objects.pop(object_key(obj), None)


class Informer:
    """One resource's list+watch loop feeding a handler; `synced` is set after the first list."""

    def __init__(
        self,
        *,
        name: str,
        call: ListCall,
        handler: Handler,
        request_timeout: float = 30.0,
        watch_timeout: tuple[int, int] = (240, 480),
        extra: dict[str, Any] | None = None,
        max_backoff: float = 30.0,
        optional: bool = False,
        absent_retry: float = 300.0,
        cache_raw: bool = True,
        strip_managed_fields: bool = False,
    ) -> None:
        self.name = name
        self._call = call
        self._handler = handler
        self._request_timeout = request_timeout
        self._watch_timeout = watch_timeout
        self._extra = dict(extra or {})
        self._max_backoff = max_backoff
        self.optional = optional
        self._absent_retry = absent_retry
        # False: the cache holds identities (kind, name, namespace, uid, resourceVersion), and
        # the handler's `old` on an update or a deletion is one of them
        self.cache_raw = cache_raw
        self.strip_managed_fields = strip_managed_fields
        self.served = True
        self.cache: dict[str, Obj] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.relists = 0
        self.rewatches = 0

    async def run(self) -> None:
        failures = 0
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                failures = 0
                self.rewatches += 1
            except Gone:
                log.info("watch expired, relisting", extra={"resource": self.name})
                need_list = True
                self.relists += 1
            except NotServed:
                if self.served:
                    log.info("resource not served; will look again", extra={"resource": self.name})
                self.served = False
                self.synced.set()  # nothing to wait for: readiness must not hang on it
                await asyncio.sleep(self._absent_retry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken stream or a failed call: back off, go on
                failures += 1
                delay = min(self._max_backoff, 0.2 * 2 ** min(failures, 8)) * random.uniform(
                    0.8, 1.2
                )
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                # One line per kind of failure every 10 s across all informers: an outage of
                # the API server fails each of them every second or so.
                suppressed = _FAILURES.admit(reason)
                if suppressed is not None:
                    log.warning(
                        "list/watch failed, retrying",
                        extra={
                            "resource": self.name,
                            "error": reason,
                            "retry_in": round(delay, 2),
                            "suppressed": suppressed,
                        },
                    )
                await asyncio.sleep(delay)
                if failures >= 3:
                    need_list = True

    async def _list(self) -> None:
        response = await self._call(
            _request_timeout=self._request_timeout, resource_version="", **self._extra
        )
        try:
            data = await response.read()
        finally:
            response.release()
        if response.status == 404 and self.optional:
            raise NotServed()
        if response.status != 200:
            body = decode_answer(data)
            raise RuntimeError(f"list {self.name}: HTTP {response.status}: {status_message(body)}")
        if not self.served:
            log.info("resource now served", extra={"resource": self.name})
            self.served = True
        if self.cache_raw:
            self._relist(loads(data))
        else:
            self._relist_by_item(data)
        self.synced.set()

    def _relist(self, body: Obj) -> None:
        items = body.get("items") or []
        kind = str(body.get("kind", "")).removesuffix("List")
        api_version = body.get("apiVersion")
        resource_version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        fresh: dict[str, Obj] = {}
        for item in items:
            self._complete(item, kind, api_version)
            fresh[object_key(item)] = item
        old = self.cache
        self.cache = fresh
        for key, obj in old.items():
            if key not in fresh:
                self._handler.on_delete(obj)
        for key, obj in fresh.items():
            self._listed(old.get(key), obj)
        self.resource_version = resource_version

    def _relist_by_item(self, data: bytes) -> None:
        """A relist decoding and handing over one item at a time, each let go once handled;
        the objects that vanished are deleted after the others are handled (each kind listed
        this way is stored by key alone, so the order between keys does not matter)."""
        head: Obj = {}
        early: list[Obj] = []  # items written before the list's kind (no server does that)
        old = self.cache
        fresh: dict[str, Obj] = {}

        def hand_over(item: Obj) -> None:
            kind = str(head.get("kind", "")).removesuffix("List")
            self._complete(item, kind, head.get("apiVersion"))
            key = object_key(item)
            fresh[key] = identity(item)
            self._listed(old.get(key), item)

        for name, value in members(data):
            if name != ITEM:
                head[name] = value
            elif not isinstance(value, dict):
                raise ValueError(f"list {self.name}: an item is not an object")
            elif "kind" not in head:
                early.append(value)
            else:
                hand_over(value)
        for item in early:
            hand_over(item)
        self.cache = fresh
        for key, obj in old.items():
            if key not in fresh:
                self._handler.on_delete(obj)
        self.resource_version = str((head.get("metadata") or {}).get("resourceVersion") or "")

    def _complete(self, item: Obj, kind: str, api_version: Any) -> None:
        """Lists omit kind/apiVersion on items; handlers may want them."""
        item.setdefault("kind", kind)
        if api_version:
            item.setdefault("apiVersion", api_version)
        if self.strip_managed_fields:
            _strip_managed_fields(item)

    def _listed(self, prev: Obj | None, obj: Obj) -> None:
        if prev is None:
            self._handler.on_add(obj)
        elif _rv(prev) != _rv(obj):
            self._handler.on_update(prev, obj)

    async def _watch(self) -> None:
        timeout = random.randint(*self._watch_timeout)
        response = await self._call(
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=self.resource_version,
            timeout_seconds=timeout,
            _request_timeout=timeout + self._request_timeout,
            **self._extra,
        )
        if response.status == 410:
            response.release()
            raise Gone()
        if response.status != 200:
            body = await read_json(response)
            raise RuntimeError(f"watch {self.name}: HTTP {response.status}: {status_message(body)}")
        buffer = b""
        try:
            async for chunk in response.content.iter_any():
                if b"\n" not in chunk:
                    buffer += chunk
                    continue
                # every complete line of the chunk at once: splitting one line off at a time
                # copied the rest of the buffer for each event of a burst
                lines = (buffer + chunk).split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    if line.strip():
                        self._event(loads(line))
        finally:
            response.release()

    def _event(self, event: Obj) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise RuntimeError(f"watch {self.name}: {status_message(obj)}")
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return
        if self.strip_managed_fields:
            _strip_managed_fields(obj)
        key = object_key(obj)
        if kind == "DELETED":
            old = self.cache.pop(key, None)
            self._handler.on_delete(old or obj)
            return
        old = self.cache.get(key)
        self.cache[key] = obj if self.cache_raw else identity(obj)
        if old is None:
            self._handler.on_add(obj)
        else:
            self._handler.on_update(old, obj)


def _strip_managed_fields(obj: Obj) -> None:
    """upstream's scheduler trims `metadata.managedFields` off what it watches (no plugin reads
    them); a bound pod's are a third of its JSON. A write of the object back (an update)
    leaves the server's managedFields as they are."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)


def identity(obj: Obj) -> Obj:
    """What a cache without raw objects keeps of `obj`: enough for a relist's comparison and for
    a handler's deletion (kind, apiVersion, metadata name, namespace, uid, resourceVersion)."""
    meta = obj.get("metadata") or {}
    out: Obj = {k: obj[k] for k in ("kind", "apiVersion") if k in obj}
    out["metadata"] = {k: meta[k] for k in _IDENTITY if k in meta}
    return out


_IDENTITY = ("name", "namespace", "uid", "resourceVersion")


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
