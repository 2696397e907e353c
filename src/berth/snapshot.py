"""A cluster as it is now, fed into an engine: from a dump or from a live cluster's informers.

`berth simulate`, `explain`, `capacity` and `rebalance` all look at a cluster at one moment.
They get it here, through the one feed: a dump's objects in the order their stores need them
(PriorityClasses filling `spec.priority` as admission would have), or one list of every kind
`berth run` watches, through the same informers, stopped once they have synced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
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


def pod_key(raw: Obj) -> str:
    """`namespace/name` of a raw pod, as the engine keys it (`?` for a missing name)."""
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"


@dataclass(frozen=True)
class PriorityClass:
    name: str
    value: int
    preemption_policy: str | None


def priority_classes(dump: Dump) -> tuple[dict[str, PriorityClass], str]:
    """The dump's PriorityClasses by name, and the global default's name: the lowest-valued one
    with globalDefault (upstream plugin/pkg/admission/priority/admission.go:329)."""
    out: dict[str, PriorityClass] = {}
    default: PriorityClass | None = None
    for pc in dump.priority_classes:
        meta = pc.get("metadata") or {}
        value = pc.get("value")
        if not isinstance(meta, dict) or not isinstance(value, int):
            continue
        policy = pc.get("preemptionPolicy")
        cls = PriorityClass(
            str(meta.get("name")), value, policy if isinstance(policy, str) else None
        )
        out[cls.name] = cls
        if pc.get("globalDefault") and (default is None or default.value > cls.value):
            default = cls
    return out, default.name if default is not None else ""


def with_priority(raw: Obj, classes: dict[str, PriorityClass], default: str) -> Any:
    """Give a pod without spec.priority the priority and preemption policy of its PriorityClass
    (or the global default's), as the Priority admission plugin does on create (admission.go:
    175-196); a dump holds stored pods, so a priority already set is kept. A class that does
    not exist is the pod's admission failing: ObjectError."""
    spec = raw.get("spec")
    if not isinstance(spec, dict) or spec.get("priority") is not None:
        return raw
    name = spec.get("priorityClassName")
    if isinstance(name, str) and name:
        cls = classes.get(name)
        if cls is None:
            raise ObjectError(
                kind="Pod",
                name=pod_key(raw),
                field="spec.priorityClassName",
                reason=f"no PriorityClass with name {name} was found",
            )
    else:
        cls = classes.get(default)
    spec = {**spec, "priority": cls.value if cls is not None else 0}
    if spec.get("preemptionPolicy") is None:
        policy = cls.preemption_policy if cls is not None else None
        spec["preemptionPolicy"] = policy or "PreemptLowerPriority"
    return {**raw, "spec": spec}


def feed_dump(
    feed: Feed, dump: Dump, *, refused: Callable[[Obj, ObjectError], None] | None = None
) -> dict[str, Obj]:
    """Every object of `dump` into `feed`: the stores' kinds first (workloads, storage, PDBs,
    DRA, PodGroups), then nodes, then pods as Priority admission gives them their priority. A
    pod admission refuses goes to `refused` (default: the feed's listener, as malformed);
    returns the admitted pods by key."""
    for obj in [*dump.namespaces, *dump.other, *dump.pod_groups]:
        feed.add(obj)
    for raw in dump.nodes:
        feed.add(raw)
    classes, default = priority_classes(dump)
    admitted: dict[str, Obj] = {}
    for raw in dump.pods:
        try:
            pod = with_priority(raw, classes, default)
        except ObjectError as exc:
            if refused is not None:
                refused(raw, exc)
            else:
                feed.listener.malformed("Pod", raw, exc)
            continue
        feed.add(pod)
        admitted[pod_key(pod)] = pod
    return admitted


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
    snapshot.pods = feed_dump(feed, dump)
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
    "pod_key",
    "priority_classes",
    "with_priority",
]
