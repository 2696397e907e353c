"""The versioned object store: raw dicts keyed by resource, one global resourceVersion, an event
log of the last N changes, and watch fan-out.

Objects are stored as immutable dicts (writers build new dicts; nothing mutates a stored one), so
reads and lists hand out references without copying. Each change is serialised once into the bytes
of its watch event; every watcher whose filter passes gets those same bytes.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from berth.cluster.errors import gone
from berth.cluster.resources import STORED, ResourceType
from berth.cluster.selectors import Predicate, is_trivial

JSON = dict[str, Any]
Listener = Callable[["Change"], None]
Writer = Callable[[str, str, str, bytes | None], None]


@dataclass(slots=True)
class Change:
    """One committed write: its resourceVersion, type and the object after (and before) it."""

    rv: int
    key: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: JSON
    old: JSON | None
    data: bytes  # the serialised watch event `{"type":..,"object":..}`
    obj_bytes: bytes


@dataclass(slots=True, eq=False)
class Watcher:
    """An open watch: its filter and a queue of (type, object, pre-serialised event or None)."""

    key: str
    namespace: str | None
    predicate: Predicate
    pending: deque[tuple[str, JSON, bytes | None]] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def push(self, kind: str, obj: JSON, data: bytes | None) -> None:
        self.pending.append((kind, obj, data))
        self.wakeup.set()

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()


def event_bytes(kind: str, obj_bytes: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj_bytes + b"}"


class Store:
    """All objects of all resources, with a monotonic resourceVersion and watches."""

    def __init__(self, *, window: int = 50_000, writer: Writer | None = None) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.rv = 0
        self.compacted_rv = 0  # a watch from an rv below this gets 410 Gone
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {r.key: {} for r in STORED}
        self._log: list[Change] = []
        self._log_rvs: list[int] = []
        self._watchers: dict[str, set[Watcher]] = {r.key: set() for r in STORED}
        self._listeners: list[Listener] = []
        self._writer = writer

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

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(change)` synchronously after every committed write."""
        self._listeners.append(listener)

    def _stamp(self, obj: JSON) -> JSON:
        self.rv += 1
        meta = dict(obj["metadata"])
        meta["resourceVersion"] = str(self.rv)
        out = dict(obj)
        out["metadata"] = meta
        return out

    def create(self, rt: ResourceType, obj: JSON) -> Change:
        obj = self._stamp(obj)
        meta = obj["metadata"]
        self._objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        return self._commit(rt, "ADDED", obj, None)

    def replace(self, rt: ResourceType, obj: JSON, old: JSON) -> Change:
        obj = self._stamp(obj)
        meta = obj["metadata"]
        self._objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        return self._commit(rt, "MODIFIED", obj, old)

    def delete(self, rt: ResourceType, old: JSON) -> Change:
        obj = self._stamp(old)
        meta = obj["metadata"]
        del self._objects[rt.key][(meta.get("namespace", ""), meta["name"])]
        return self._commit(rt, "DELETED", obj, old)

    def load(self, rt: ResourceType, obj: JSON) -> None:
        """Put an object back without an event (restoring persisted state)."""
        meta = obj["metadata"]
        self._objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        self.rv = max(self.rv, int(meta.get("resourceVersion", "0")))

    def _commit(self, rt: ResourceType, kind: str, obj: JSON, old: JSON | None) -> Change:
        obj_bytes = orjson.dumps(obj)
        change = Change(self.rv, rt.key, kind, obj, old, event_bytes(kind, obj_bytes), obj_bytes)
        self._log.append(change)
        self._log_rvs.append(self.rv)
        if len(self._log) > self.window + max(1, self.window // 8):
            drop = len(self._log) - self.window
            self.compacted_rv = self._log_rvs[drop - 1]
            del self._log[:drop]
            del self._log_rvs[:drop]
        if self._writer is not None:
            meta = obj["metadata"]
            self._writer(
                rt.key,
                meta.get("namespace", ""),
                meta["name"],
                None if kind == "DELETED" else obj_bytes,
            )
        watchers = self._watchers[rt.key]
        if watchers:
            self._fan_out(change, watchers)
        for listener in self._listeners:
            listener(change)
        return change

    # --- watches -----------------------------------------------------------------------------

    def _fan_out(self, change: Change, watchers: set[Watcher]) -> None:
        ns = change.obj["metadata"].get("namespace", "")
        for w in watchers:
            if w.namespace is not None and w.namespace != ns:
                continue
            _deliver(w, change)

    def watch(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        predicate: Predicate,
        since: int | None,
    ) -> Watcher:
        """Open a watch. `since=None` starts with ADDED events for every matching object."""
        w = Watcher(rt.key, namespace, predicate)
        if since is None:
            for obj in self.items(rt, namespace):
                if predicate(obj):
                    w.push("ADDED", obj, None)
        else:
            if since < self.compacted_rv:
                raise gone(
                    f"too old resource version: {since} ({self.compacted_rv})",
                )
            start = bisect.bisect_right(self._log_rvs, since)
            for change in self._log[start:]:
                if change.key != rt.key:
                    continue
                ns = change.obj["metadata"].get("namespace", "")
                if namespace is not None and namespace != ns:
                    continue
                _deliver(w, change)
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


def _deliver(w: Watcher, change: Change) -> None:
    pred = w.predicate
    if is_trivial(pred):
        w.push(change.type, change.obj, change.data)
        return
    now = pred(change.obj)
    before = change.old is not None and pred(change.old)
    if change.type == "DELETED":
        if before:
            w.push("DELETED", change.obj, change.data)
    elif change.type == "ADDED":
        if now:
            w.push("ADDED", change.obj, change.data)
    elif now and before:
        w.push("MODIFIED", change.obj, change.data)
    elif now:
        w.push("ADDED", change.obj, None)
    elif before:
        w.push("DELETED", change.obj, None)
