"""The garbage collector (upstream pkg/controller/garbagecollector): an object whose owners are
all gone is deleted; one that keeps some owners loses the references to the others; an owner
deleted with `propagationPolicy: Orphan` keeps its finalizer `orphan` until its dependents no
longer name it, one deleted with `Foreground` keeps `foregroundDeletion` until its dependents
are gone (they are deleted in the foreground too).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from berth.cluster.api import Api
from berth.cluster.controllers.base import BY_GROUP_KIND, OwnerIndex, Ref, group_of, owner_refs
from berth.cluster.errors import ApiError
from berth.cluster.reconcile import ObjectErrors
from berth.cluster.resources import BY_KEY, PODS, STORED
from berth.cluster.store import Change

JSON = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
log = logging.getLogger("berth.cluster.controllers")


class GarbageCollector:
    name = "garbage-collector"

    def __init__(self, *, api: Api, index: OwnerIndex, interval: float = 0.05) -> None:
        self.api = api
        self.store = api.store
        self.index = index
        self.interval = interval
        self.errors = ObjectErrors(self.name)
        self._dependents: set[Ref] = set()  # to check: are their owners alive?
        self._owners: set[Ref] = set()  # being deleted with orphan or foreground finalizers
        self._wake = asyncio.Event()
        # pods come through the PodRouter (deleted, or naming an owner)
        self.store.add_listener(self._on_change, keys=[r.key for r in STORED if r is not PODS])

    def _on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        ref: Ref = (change.key, meta.get("namespace", ""), meta["name"])
        if change.type == "DELETED":
            deps = self.index.dependents(str(meta.get("uid")))
            if deps:
                self._dependents |= deps
                self._wake.set()
            for r in owner_refs(change.obj):  # an owner waiting in the foreground for it
                rt = BY_GROUP_KIND.get((group_of(str(r.get("apiVersion", ""))), str(r.get("kind"))))
                if rt is not None:
                    self._owners.add((rt.key, ref[1] if rt.namespaced else "", str(r.get("name"))))
                    self._wake.set()
            return
        if owner_refs(change.obj) and owner_refs(change.obj) != owner_refs(change.old):
            self._dependents.add(ref)
            self._wake.set()
        finalizers = meta.get("finalizers") or ()
        if meta.get("deletionTimestamp") and (ORPHAN in finalizers or FOREGROUND in finalizers):
            self._owners.add(ref)
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.sync_pending()
            await asyncio.sleep(self.interval)

    def sync_pending(self) -> int:
        owners, self._owners = self._owners, set()
        dependents, self._dependents = self._dependents, set()
        done = 0
        for ref in sorted(owners):
            obj = self._get(ref)
            if obj is not None:
                done += self.errors.run(obj, functools.partial(self._finish_owner, ref))
        for ref in sorted(dependents):
            obj = self._get(ref)
            if obj is not None:
                done += self.errors.run(obj, functools.partial(self._check_dependent, ref))
        return done

    def _get(self, ref: Ref) -> JSON | None:
        rt = BY_KEY.get(ref[0])
        return self.store.get(rt, ref[1], ref[2]) if rt is not None else None

    def _owner(self, dependent_ns: str, ref: JSON) -> JSON | None:
        """The live owner an ownerReference names (same uid), or None."""
        rt = BY_GROUP_KIND.get((group_of(str(ref.get("apiVersion", ""))), str(ref.get("kind"))))
        if rt is None:
            return None
        obj = self.store.get(rt, dependent_ns if rt.namespaced else "", str(ref.get("name")))
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return None
        return obj

    def _check_dependent(self, ref: Ref, obj: JSON) -> int:
        refs = owner_refs(obj)
        if not refs or obj["metadata"].get("deletionTimestamp"):
            return 0
        owners = [(r, self._owner(ref[1], r)) for r in refs]
        alive = [r for r, o in owners if o is not None]
        foreground = [
            o
            for _, o in owners
            if o is not None
            and o["metadata"].get("deletionTimestamp")
            and FOREGROUND in (o["metadata"].get("finalizers") or ())
        ]
        if alive and len(foreground) == len(alive):
            return self._delete(ref, obj, policy="Foreground")
        if not alive:
            return self._delete(ref, obj, policy="Background")
        if len(alive) < len(refs):
            meta = {**obj["metadata"], "ownerReferences": alive}
            self.store.replace(BY_KEY[ref[0]], {**obj, "metadata": meta}, obj)
            return 1
        return 0

    def _delete(self, ref: Ref, obj: JSON, *, policy: str) -> int:
        rt = BY_KEY[ref[0]]
        try:
            self.api.delete(
                rt,
                namespace=ref[1],
                name=ref[2],
                options={
                    "propagationPolicy": policy,
                    "preconditions": {"uid": obj["metadata"]["uid"]},
                },
            )
        except ApiError as err:
            if err.code not in (404, 409):
                raise
        return 1

    def _finish_owner(self, ref: Ref, owner: JSON) -> int:
        meta = owner["metadata"]
        finalizers = list(meta.get("finalizers") or ())
        uid = str(meta["uid"])
        dependents = [d for d in self.index.dependents(uid) if self._get(d) is not None]
        done = 0
        if ORPHAN in finalizers:
            for d in dependents:
                obj = self._get(d)
                assert obj is not None
                kept = [r for r in owner_refs(obj) if r.get("uid") != uid]
                dmeta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
                if kept:
                    dmeta["ownerReferences"] = kept
                self.store.replace(BY_KEY[d[0]], {**obj, "metadata": dmeta}, obj)
                done += 1
            finalizers.remove(ORPHAN)
        elif FOREGROUND in finalizers:
            waiting = False
            for d in dependents:
                obj = self._get(d)
                assert obj is not None
                if not obj["metadata"].get("deletionTimestamp"):
                    done += self._delete(d, obj, policy="Foreground")
                if self._get(d) is not None:
                    waiting = True
            if waiting:
                return done  # the dependents' deletion brings this owner back
            finalizers.remove(FOREGROUND)
        else:
            return done
        rt = BY_KEY[ref[0]]
        current = self.store.get(rt, ref[1], ref[2]) or owner
        body = {**current, "metadata": {**current["metadata"], "finalizers": finalizers}}
        self.api.update(rt, namespace=ref[1], name=ref[2], body=body)
        return done + 1
