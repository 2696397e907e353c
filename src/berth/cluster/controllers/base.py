"""What every simulated controller shares: a store listener marks objects dirty, one task syncs
the dirty ones in batches (each under `ObjectErrors`, so one bad object never stops the loop),
an index of objects by the uid of their owners, and the core/v1 events controllers record.

Controllers write through `Api` where upstream's go through the API server's admission and
validation (creating pods, deleting them), and straight to the store for their own status, as
upstream's write /status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from berth.cluster.admission import now
from berth.cluster.api import Api
from berth.cluster.errors import ApiError
from berth.cluster.reconcile import ObjectErrors
from berth.cluster.resources import BY_KEY, EVENTS, PODS, RESOURCES, STORED, ResourceType
from berth.cluster.store import Change, Store

JSON = dict[str, Any]
Listener = Callable[[Change], None]
Key = tuple[str, str]  # (namespace, name)
Ref = tuple[str, str, str]  # (resource key, namespace, name)
log = logging.getLogger("berth.cluster.controllers")

# (group, kind) -> resource, to find the object an ownerReference names.
BY_GROUP_KIND: dict[tuple[str, str], ResourceType] = {
    (r.group, r.kind): r for r in RESOURCES if r.key in BY_KEY and r.plural != "bindings"
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def owner_refs(obj: JSON | None) -> list[JSON]:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def controller_ref(obj: JSON) -> JSON | None:
    for ref in owner_refs(obj):
        if ref.get("controller") is True:
            return ref
    return None


def owner_reference(rt: ResourceType, owner: JSON) -> JSON:
    """The controller reference a controller puts on what it creates."""
    meta = owner["metadata"]
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_active(pod: JSON) -> bool:
    """upstream controller.IsPodActive: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def condition(obj: JSON, kind: str) -> JSON | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return None


def is_ready(pod: JSON) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def ready_since(pod: JSON) -> float | None:
    """When the pod became Ready (epoch seconds), or None when it is not."""
    import calendar

    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    stamp = str(c.get("lastTransitionTime") or "")
    try:
        return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


def is_available(pod: JSON, min_ready_seconds: int, at: float) -> bool:
    """upstream podutil.IsPodAvailable."""
    since = ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or since + min_ready_seconds <= at


def set_condition(conditions: list[JSON], new: JSON) -> list[JSON]:
    """Conditions with `new` in place of its type's (the transition time kept when the status
    did not change, as upstream's SetCondition helpers do)."""
    out = []
    for c in conditions:
        if c.get("type") == new["type"]:
            if c.get("status") == new["status"] and "lastTransitionTime" in c:
                new = {**new, "lastTransitionTime": c["lastTransitionTime"]}
            continue
        out.append(c)
    out.append(new)
    return out


class OwnerIndex:
    """Which objects name which owner uid in their ownerReferences (kept by a store listener,
    so a controller or the garbage collector finds dependents without a scan)."""

    def __init__(self, store: Store) -> None:
        self._dependents: dict[str, set[Ref]] = {}
        # pods come through the PodRouter, only when they name an owner
        store.add_listener(self._on_change, keys=[r.key for r in STORED if r is not PODS])

    def _on_change(self, change: Change) -> None:
        new = owner_refs(change.obj) if change.type != "DELETED" else []
        old = owner_refs(change.old)
        if not new and not old:
            return
        meta = change.obj["metadata"]
        ref: Ref = (change.key, meta.get("namespace", ""), meta["name"])
        for r in old:
            deps = self._dependents.get(str(r.get("uid")))
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[str(r.get("uid"))]
        for r in new:
            self._dependents.setdefault(str(r.get("uid")), set()).add(ref)

    def dependents(self, uid: str) -> set[Ref]:
        return set(self._dependents.get(uid, ()))


class Controller:
    """One controller's loop: `keys(change)` names the objects of `rt` a change concerns; every
    `interval` the dirty ones still stored are synced, one at a time, by `sync`."""

    name = "controller"
    rt: ResourceType
    watched: tuple[ResourceType, ...] = ()  # besides `rt`, whose changes may concern it

    def __init__(self, *, api: Api, index: OwnerIndex, interval: float = 0.05) -> None:
        self.api = api
        self.store = api.store
        self.index = index
        self.interval = interval
        self.errors = ObjectErrors(self.name)
        self._dirty: set[Key] = set()
        self._wake = asyncio.Event()
        self._timers: dict[Key, float] = {}
        keys = {self.rt.key, *(r.key for r in self.watched)} - {PODS.key}  # pods: PodRouter
        self.store.add_listener(self._on_change, keys=keys)

    def _on_change(self, change: Change) -> None:
        for key in self.keys(change):
            self._dirty.add(key)
        if self._dirty:
            self._wake.set()

    def keys(self, change: Change) -> Iterable[Key]:
        raise NotImplementedError

    def owner_key(self, change: Change) -> Iterable[Key]:
        """The key of the object of `rt` that controls the changed object (before or after)."""
        if not change.obj["metadata"].get("ownerReferences") and not (
            change.old is not None and change.old["metadata"].get("ownerReferences")
        ):
            return ()  # most pods: nobody's
        keys = []
        for obj in (change.obj, change.old):
            if obj is None:
                continue
            ref = controller_ref(obj)
            if ref is not None and ref.get("kind") == self.rt.kind:
                keys.append((str(obj["metadata"].get("namespace", "")), str(ref.get("name"))))
        return keys

    def own_key(self, change: Change) -> Iterable[Key]:
        if change.key != self.rt.key or change.type == "DELETED":
            return ()
        meta = change.obj["metadata"]
        return ((meta.get("namespace", ""), meta["name"]),)

    def requeue_at(self, key: Key, when: float) -> None:
        """Sync `key` again at `when` (monotonic seconds), e.g. when a pod becomes available."""
        if when < self._timers.get(key, float("inf")):
            self._timers[key] = when
            self._wake.set()

    def sync(self, obj: JSON) -> int:
        raise NotImplementedError

    def sync_dirty(self) -> int:
        t = time.monotonic()
        for key, when in list(self._timers.items()):
            if when <= t:
                del self._timers[key]
                self._dirty.add(key)
        dirty, self._dirty = self._dirty, set()
        done = 0
        for ns, name in sorted(dirty):
            obj = self.store.get(self.rt, ns, name)
            if obj is not None:
                done += self.errors.run(obj, self.sync)
        return done

    def prime(self) -> None:
        """Mark every stored object of `rt` dirty (a start over restored state)."""
        for obj in self.store.items(self.rt):
            meta = obj["metadata"]
            self._dirty.add((meta.get("namespace", ""), meta["name"]))

    async def run(self) -> None:
        self.prime()
        while True:
            timeout = None
            if self._timers:
                timeout = max(0.0, min(self._timers.values()) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self.sync_dirty()
            await asyncio.sleep(self.interval)

    # --- helpers ---------------------------------------------------------------------------

    def owned(self, rt: ResourceType, owner: JSON) -> list[JSON]:
        """The objects of `rt` whose controller reference is `owner`."""
        uid = owner["metadata"]["uid"]
        out = []
        for key, ns, name in self.index.dependents(uid):
            if key != rt.key:
                continue
            obj = self.store.get(rt, ns, name)
            ref = controller_ref(obj) if obj is not None else None
            if obj is not None and ref is not None and ref.get("uid") == uid:
                out.append(obj)
        return out

    def write_status(self, rt: ResourceType, obj: JSON, status: JSON) -> int:
        """Replace `obj`'s status when it changed; 1 if written."""
        if status == obj.get("status"):
            return 0
        self.store.replace(rt, {**obj, "status": status}, obj)
        return 1

    def event(self, obj: JSON, *, reason: str, message: str, kind: str = "Normal") -> None:
        """Record a core/v1 Event about `obj` from this controller (kubectl describe shows it).
        A refused event is logged, never the reason a sync fails."""
        meta = obj["metadata"]
        stamp = now()
        namespace = str(meta.get("namespace") or "default")
        body: JSON = {
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "kind": obj.get("kind"),
                "apiVersion": obj.get("apiVersion"),
                "namespace": meta.get("namespace"),
                "name": meta["name"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": self.name},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.name,
            "reportingInstance": "",
        }
        try:
            self.api.create(EVENTS, namespace=namespace, body=body)
        except ApiError as err:
            log.warning("%s: event %s not recorded: %s", self.name, reason, err.message)


class PodRouter:
    """The one store listener for pods: a pod change goes only to who can care (the owner index,
    the garbage collector and the controller of the kinds its owner references name; for a pod
    nobody owns, the controllers that adopt on create and the EndpointSlice controller), so the
    create and bind path of a pod nobody owns pays for two cheap calls, not one per controller."""

    def __init__(
        self,
        *,
        store: Store,
        index: OwnerIndex,
        owners: list[Controller],
        adopters: list[Controller],
        always: list[Listener],
        collector: Listener,
    ) -> None:
        self.index = index
        self.owners = owners
        self.adopters = adopters
        self.always = always
        self.collector = collector
        store.add_listener(self, keys=[PODS.key])

    def __call__(self, change: Change) -> None:
        refs = change.obj["metadata"].get("ownerReferences")
        old = change.old["metadata"].get("ownerReferences") if change.old is not None else None
        if refs or old:
            self.index._on_change(change)
            self.collector(change)
            kinds = {r.get("kind") for r in (refs or []) + (old or []) if isinstance(r, dict)}
            for c in self.owners:
                if c.rt.kind in kinds:
                    c._on_change(change)
        else:
            if change.type == "DELETED":
                self.collector(change)
            elif change.type == "ADDED":
                for c in self.adopters:
                    c._on_change(change)
        for listener in self.always:
            listener(change)
