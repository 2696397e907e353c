"""The versioned object store: raw dicts keyed by resource, one global resourceVersion, the watch
cache (the last changes, bounded in events and in bytes) and watch fan-out.

Objects are stored as immutable dicts (writers build new dicts; nothing mutates a stored one), so
reads and lists hand out references without copying. A write is checked against the limits and
serialised before anything changes, so a write that fails leaves no trace: no object, no event,
no resourceVersion used. Each change is serialised once into the bytes of its watch event; every
watcher whose filter passes gets those same bytes. The watch cache keeps those bytes and a small
projection of the fields selectors read, not the objects, so superseded versions cost their
encoded size and nothing more.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from berth.cluster import errors
from berth.cluster.errors import gone
from berth.cluster.limits import Limits
from berth.cluster.resources import STORED, ResourceType
from berth.cluster.selectors import Predicate, is_trivial
from berth.safeload import nesting_depth_exceeds

JSON = dict[str, Any]
Listener = Callable[["Change"], None]
Writer = Callable[[str, str, str, bytes | None], None]
log = logging.getLogger("berth.cluster.store")


def event_bytes(kind: str, obj_bytes: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj_bytes + b"}"


def _object_bytes(data: bytes) -> bytes:
    """The object inside a watch event made by `event_bytes`."""
    return data[data.index(b'","object":') + 11 : -1]


@dataclass(slots=True)
class Change:
    """One committed write: its resourceVersion, type and the object after (and before) it."""

    rv: int
    key: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: JSON
    old: JSON | None
    data: bytes  # the serialised watch event `{"type":..,"object":..}`

    @property
    def obj_bytes(self) -> bytes:
        return _object_bytes(self.data)


@dataclass(slots=True)
class _Cached:
    """A change as the watch cache keeps it: the event bytes and what selectors need of the
    object after and before (see `_selectable`)."""

    rv: int
    key: str
    namespace: str
    type: str
    data: bytes
    now: JSON
    before: JSON | None


@dataclass(slots=True, eq=False)
class Watcher:
    """An open watch: its filter and a queue of (type, object or None, event bytes or None).

    An entry has the object, the bytes of the change's event (whose type may differ from the
    entry's: a MODIFIED that newly matches a selector is sent as ADDED), or both."""

    key: str
    namespace: str | None
    predicate: Predicate
    pending: deque[tuple[str, JSON | None, bytes | None]] = field(default_factory=deque)
    pending_bytes: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    overflowed: bool = False

    def push(self, kind: str, obj: JSON | None, data: bytes | None) -> None:
        self.pending.append((kind, obj, data))
        if data is not None:
            self.pending_bytes += len(data)
        self.wakeup.set()

    def pop(self) -> tuple[str, JSON | None, bytes | None]:
        item = self.pending.popleft()
        if item[2] is not None:
            self.pending_bytes -= len(item[2])
        return item

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()


def _plan(rt: ResourceType) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A resource's field labels grouped by their first segment: (top, (rest of each path))."""
    groups: dict[str, list[str]] = {}
    for path in rt.field_labels:
        top, _, rest = path.partition(".")
        if "." in rest:
            raise ValueError(f"{rt.key}: field label {path} is deeper than the projection reads")
        groups.setdefault(top, []).append(rest)
    return tuple((top, tuple(rests)) for top, rests in groups.items())


_FIELD_PLANS = {r.key: _plan(r) for r in STORED}


def _selectable(key: str, obj: JSON) -> JSON:
    """The part of `obj` label and field selectors read: name, namespace, labels and the
    resource's field labels, at their own paths (so a predicate reads it like the object)."""
    meta = obj.get("metadata") or {}
    out: JSON = {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace", ""),
            "labels": meta.get("labels"),
        }
    }
    for top, rests in _FIELD_PLANS.get(key, ()):
        value = obj.get(top)
        if value is None:
            continue
        if rests == ("",):  # a top-level field (an event's `reason`, `source`)
            out[top] = value
            continue
        if not isinstance(value, dict):
            continue
        picked: JSON = {}
        for rest in rests:
            v = value.get(rest)
            if v is not None:
                picked[rest] = v
        out[top] = picked
    return out


class Store:
    """All objects of all resources, with a monotonic resourceVersion and watches."""

    def __init__(self, *, limits: Limits | None = None, writer: Writer | None = None) -> None:
        self.limits = limits or Limits()
        self.rv = 0
        self.compacted_rv = 0  # a watch from an rv below this gets 410 Gone
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {r.key: {} for r in STORED}
        self._log: list[_Cached] = []
        self._log_rvs: list[int] = []
        self._log_bytes = 0
        self._watchers: dict[str, set[Watcher]] = {r.key: set() for r in STORED}
        self._listeners: dict[str, list[Listener]] = {r.key: [] for r in STORED}
        self._writer = writer
        # Called before the first use of a resourceVersion above the reserved bound (see
        # persistence.py): set by whoever persists the store.
        self.reserve: Callable[[int], int] | None = None
        self.reserved_rv = 0

    @property
    def window(self) -> int:
        return self.limits.watch_window

    @property
    def cached_bytes(self) -> int:
        """Bytes of events the watch cache holds."""
        return self._log_bytes

    # --- reads -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> JSON | None:
        return self._objects[rt.key].get((namespace, name))

    def items(self, rt: ResourceType, namespace: str | None = None) -> Iterator[JSON]:
        objects = self._objects[rt.key]
        if namespace is None:
            yield from objects.values()
        else:
            for (ns, _), obj in objects.items():
                if ns == namespace:
                    yield obj

    def count(self, rt: ResourceType) -> int:
        return len(self._objects[rt.key])

    # --- writes ------------------------------------------------------------------------------

    def add_listener(self, listener: Listener, *, keys: Iterable[str] | None = None) -> None:
        """Call `listener(change)` synchronously after every committed write (of the resources
        `keys` names, else of every resource: a write pays only for who listens to it)."""
        for key in self._listeners if keys is None else keys:
            self._listeners[key].append(listener)

    def check(self, obj: Any, *, what: str = "the object", sized: bool = True) -> bytes:
        """`obj` serialised, or the ApiError a write of it gets (too deep, too large; `sized`
        False skips the size limit: a delete must go through for an object already stored)."""
        limits = self.limits
        try:
            data = orjson.dumps(obj)
        except orjson.JSONEncodeError as exc:
            if "Recursion limit" in str(exc):  # orjson's own bound, above any allowed depth
                raise errors.too_deep(what=what, limit=limits.max_depth) from exc
            raise errors.bad_request(f"{what} cannot be encoded as JSON") from exc
        if nesting_depth_exceeds(obj, limits.max_depth, encoded=data):
            raise errors.too_deep(what=what, limit=limits.max_depth)
        if sized and len(data) > limits.max_object_bytes:
            raise errors.object_too_large(size=len(data), limit=limits.max_object_bytes)
        return data

    def _prepare(self, obj: JSON, kind: str) -> tuple[int, JSON, bytes]:
        rv = self.rv + 1
        meta = dict(obj["metadata"])
        meta["resourceVersion"] = str(rv)
        out = dict(obj)
        out["metadata"] = meta
        data = self.check(out, sized=kind != "DELETED")
        if rv > self.reserved_rv and self.reserve is not None:
            self.reserved_rv = self.reserve(rv)
        return rv, out, event_bytes(kind, data)

    def create(self, rt: ResourceType, obj: JSON) -> Change:
        rv, obj, data = self._prepare(obj, "ADDED")
        self._persist(rt, obj, data)
        meta = obj["metadata"]
        self._objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        return self._commit(rt, Change(rv, rt.key, "ADDED", obj, None, data))

    def replace(self, rt: ResourceType, obj: JSON, old: JSON) -> Change:
        rv, obj, data = self._prepare(obj, "MODIFIED")
        self._persist(rt, obj, data)
        meta = obj["metadata"]
        self._objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        return self._commit(rt, Change(rv, rt.key, "MODIFIED", obj, old, data))

    def delete(self, rt: ResourceType, old: JSON) -> Change:
        rv, obj, data = self._prepare(old, "DELETED")
        self._persist(rt, obj, None)
        meta = obj["metadata"]
        del self._objects[rt.key][(meta.get("namespace", ""), meta["name"])]
        return self._commit(rt, Change(rv, rt.key, "DELETED", obj, old, data))

    def load(self, rt: ResourceType, obj: JSON) -> None:
        """Put an object back without an event (restoring persisted state); raises ApiError
        for one that cannot be served (too deep to encode). Not the size limit: an object
        stored under a larger one stays, rather than vanish because the limit was lowered."""
        self.check(obj, sized=False)
        meta = obj["metadata"]
        self._objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        self.rv = max(self.rv, int(meta.get("resourceVersion", "0")))

    def _persist(self, rt: ResourceType, obj: JSON, data: bytes | None) -> None:
        if self._writer is not None:
            meta = obj["metadata"]
            body = _object_bytes(data) if data is not None else None
            self._writer(rt.key, meta.get("namespace", ""), meta["name"], body)

    def _commit(self, rt: ResourceType, change: Change) -> Change:
        self.rv = change.rv
        obj = change.obj
        ns = obj["metadata"].get("namespace", "")
        cached = _Cached(
            change.rv,
            rt.key,
            ns,
            change.type,
            change.data,
            _selectable(rt.key, obj),
            _selectable(rt.key, change.old) if change.old is not None else None,
        )
        self._log.append(cached)
        self._log_rvs.append(change.rv)
        self._log_bytes += len(change.data)
        self._compact()
        watchers = self._watchers[rt.key]
        if watchers:
            self._fan_out(change, ns, watchers)
        for listener in self._listeners[rt.key]:
            try:
                listener(change)
            except Exception:  # a committed write stays committed; the listener's bug is logged
                log.exception("store listener failed on %s %s", change.type, rt.key)
        return change

    def _compact(self) -> None:
        """Drop the oldest cached events beyond the window (in events, with 1/8 slack so the
        list is trimmed in batches) or beyond the byte budget."""
        window, budget = self.limits.watch_window, self.limits.watch_cache_bytes
        drop = 0
        if len(self._log) > window + max(1, window // 8):
            drop = len(self._log) - window
        if self._log_bytes > budget:
            target, freed = self._log_bytes - budget * 7 // 8, 0
            i = 0
            while freed < target and i < len(self._log):
                freed += len(self._log[i].data)
                i += 1
            drop = max(drop, i)
        if not drop:
            return
        self._log_bytes -= sum(len(c.data) for c in self._log[:drop])
        self.compacted_rv = self._log_rvs[drop - 1]
        del self._log[:drop]
        del self._log_rvs[:drop]

    # --- watches -----------------------------------------------------------------------------

    def _fan_out(self, change: Change, ns: str, watchers: set[Watcher]) -> None:
        for w in list(watchers):
            if w.namespace is not None and w.namespace != ns:
                continue
            pred = w.predicate
            _deliver(
                w,
                change.type,
                change.data,
                change.obj,
                pred(change.obj) if not is_trivial(pred) else True,
                change.old is not None and not is_trivial(pred) and pred(change.old),
            )
            if w.pending_bytes > self.limits.watch_cache_bytes:
                # upstream's cacher ends a watcher that cannot keep up; the client re-watches
                # from the last event it read (or relists after 410).
                log.warning("closing a watch of %s %d bytes behind", w.key, w.pending_bytes)
                w.overflowed = True
                self.unwatch(w)
                w.close()

    def watch(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        predicate: Predicate,
        since: int | None,
    ) -> Watcher:
        """Open a watch. `since=None` starts with ADDED events for every matching object; a
        `since` older than the watch cache raises 410 Gone."""
        w = Watcher(rt.key, namespace, predicate)
        if since is None:
            for obj in self.items(rt, namespace):
                if predicate(obj):
                    w.push("ADDED", obj, None)
        else:
            if since < self.compacted_rv:
                raise gone(f"too old resource version: {since} ({self.compacted_rv})")
            trivial = is_trivial(predicate)
            start = bisect.bisect_right(self._log_rvs, since)
            for c in self._log[start:]:
                if c.key != rt.key or (namespace is not None and namespace != c.namespace):
                    continue
                _deliver(
                    w,
                    c.type,
                    c.data,
                    None,
                    trivial or predicate(c.now),
                    c.before is not None and not trivial and predicate(c.before),
                )
        self._watchers[rt.key].add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self._watchers[w.key].discard(w)

    def watchers(self) -> list[Watcher]:
        return [w for ws in self._watchers.values() for w in ws]

    def close_watches(self) -> int:
        """End every open watch (clients see the stream close and re-watch)."""
        all_watchers = self.watchers()
        for w in all_watchers:
            w.close()
            self._watchers[w.key].discard(w)
        return len(all_watchers)


def _deliver(w: Watcher, kind: str, data: bytes, obj: JSON | None, now: bool, before: bool) -> None:
    """Queue one change for a watcher with upstream's selector transitions: `now` and `before`
    say whether the object matches after and before the change (trivial filters match both)."""
    if is_trivial(w.predicate):
        w.push(kind, obj, data)
    elif kind == "DELETED":
        if before:
            w.push("DELETED", obj, data)
    elif kind == "ADDED":
        if now:
            w.push("ADDED", obj, data)
    elif now and before:
        w.push("MODIFIED", obj, data)
    elif now:
        w.push("ADDED", obj, data)
    elif before:
        w.push("DELETED", obj, data)


def object_of(kind: str, obj: JSON | None, data: bytes | None) -> JSON:
    """The object of a watcher's entry (decoded from the event bytes when only those are kept)."""
    if obj is not None:
        return obj
    assert data is not None
    decoded: JSON = orjson.loads(_object_bytes(data))
    return decoded


def entry_bytes(kind: str, obj: JSON | None, data: bytes | None) -> bytes:
    """The watch event of a watcher's entry, reusing the change's bytes when the type agrees."""
    if data is not None:
        if data.startswith(b'{"type":"' + kind.encode() + b'"'):
            return data
        return event_bytes(kind, _object_bytes(data))
    return event_bytes(kind, orjson.dumps(obj))
