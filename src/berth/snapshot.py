"""A cluster as it is now, fed into an engine: from a dump or from a live cluster's informers.

`berth simulate`, `explain`, `capacity` and `rebalance` all look at a cluster at one moment.
They get it here, through the one feed: a dump's objects in the order their stores need them
(PriorityClasses filling `spec.priority` as admission would have), or one list of every kind
`berth run` watches, through the same informers, stopped once they have synced.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from berth.dump import Dump
from berth.engine import Engine
from berth.feed import Feed, FeedListener
from berth.kube.client import Connection
from berth.kube.informer import Informer, Obj
from berth.kube.listers import LISTERS, build_informers
from berth.objects import ObjectError
from berth.objects.pod import PodInfo


def priority_classes(dump: Dump) -> tuple[dict[str, int], int | None]:
    """PriorityClass name -> value, and the globalDefault's value (None: no default)."""
    classes: dict[str, int] = {}
    default: int | None = None
    for pc in dump.priority_classes:
        meta = pc.get("metadata") or {}
        value = pc.get("value")
        if isinstance(meta, dict) and isinstance(value, int):
            classes[str(meta.get("name"))] = value
            if pc.get("globalDefault"):
                default = value
    return classes, default


def with_priority(raw: Obj, classes: dict[str, int], default: int | None) -> Any:
    """Fill spec.priority from the PriorityClass, as the API server's admission would have."""
    spec = raw.get("spec")
    if not isinstance(spec, dict) or spec.get("priority") is not None:
        return raw
    name = spec.get("priorityClassName")
    value = classes.get(name) if isinstance(name, str) else default
    if value is None:
        return raw
    return {**raw, "spec": {**spec, "priority": value}}


def feed_dump(feed: Feed, dump: Dump) -> None:
    """Every object of `dump` into `feed`: the stores' kinds first (workloads, storage, PDBs,
    DRA, PodGroups), then nodes, then pods with their priority resolved."""
    for obj in [*dump.namespaces, *dump.other, *dump.pod_groups]:
        feed.add(obj)
    for raw in dump.nodes:
        feed.add(raw)
    classes, default = priority_classes(dump)
    for raw in dump.pods:
        feed.add(with_priority(raw, classes, default))


class SnapshotError(Exception):
    """A live cluster could not be read in time; one line for users."""


@dataclass
class Snapshot:
    """An engine holding a cluster's state; the raw pods by key; what could not be loaded."""

    engine: Engine
    pods: dict[str, Obj] = field(default_factory=dict)
    pending: list[PodInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def pod(self, key: str) -> Obj | None:
        return self.pods.get(key)


class _Collect(FeedListener):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def pending(self, pod: PodInfo, *, added: bool) -> None:
        self.snapshot.pending.append(pod)

    def malformed(self, kind: str, raw: Obj, error: ObjectError, *, pending: bool = False) -> None:
        self.snapshot.problems.append(str(error))


def from_dump(engine: Engine, dump: Dump) -> Snapshot:
    """`dump` fed into `engine`."""
    snapshot = Snapshot(engine=engine, problems=list(dump.malformed))
    feed = Feed(
        state=engine.state,
        ports=engine.ports,
        responsible=engine.schedules,
        listener=_Collect(snapshot),
    )
    feed_dump(feed, dump)
    classes, default = priority_classes(dump)
    for raw in dump.pods:
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
        snapshot.pods[key] = with_priority(raw, classes, default)
    return snapshot


async def from_cluster(
    engine: Engine, connection: Connection, *, timeout: float = 60.0
) -> Snapshot:
    """One list of every kind `berth run` watches, through its informers, fed into `engine`;
    the informers stop once all have synced. Raises TimeoutError after `timeout` seconds."""
    snapshot = Snapshot(engine=engine)
    feed = Feed(
        state=engine.state,
        ports=engine.ports,
        responsible=engine.schedules,
        listener=_Collect(snapshot),
    )
    informers = build_informers(connection, LISTERS, feed.handler)
    try:
        await _sync_once(informers, timeout=timeout)
    except TimeoutError:
        late = ", ".join(i.name for i in informers if not i.synced.is_set())
        raise SnapshotError(
            f"the cluster did not answer the list of {late} within {timeout:g}s "
            "(unreachable, or not allowed: see the warnings above)"
        ) from None
    pods = next(i for i in informers if i.name == LISTERS["Pod"].name)
    snapshot.pods = dict(pods.cache)
    return snapshot


async def _sync_once(informers: list[Informer], *, timeout: float) -> None:
    tasks = [asyncio.create_task(i.run(), name=f"snapshot-{i.name}") for i in informers]
    try:
        async with asyncio.timeout(timeout):
            for informer, task in zip(informers, tasks, strict=True):
                synced = asyncio.create_task(informer.synced.wait())
                done, _ = await asyncio.wait({synced, task}, return_when=asyncio.FIRST_COMPLETED)
                if synced not in done:
                    synced.cancel()
                    task.result()  # the informer's loop ended: raise what ended it
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


__all__ = [
    "Snapshot",
    "SnapshotError",
    "feed_dump",
    "from_cluster",
    "from_dump",
    "priority_classes",
    "with_priority",
]
