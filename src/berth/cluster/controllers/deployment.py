"""Deployments (upstream pkg/controller/deployment): a ReplicaSet per pod template, named and
labelled by its `pod-template-hash`, rolled from the old ones to the new one within maxSurge and
maxUnavailable (or all at once for Recreate), revisions in annotations, old ReplicaSets beyond
`revisionHistoryLimit` removed, and the status `kubectl rollout status` reads.

The hash is the FNV-32a of the template's JSON (upstream hashes Go's printed struct), so the
names look like upstream's but are not the same strings.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

import orjson

from berth.cluster.admission import now
from berth.cluster.controllers.base import (
    Controller,
    Key,
    condition,
    owner_reference,
    set_condition,
)
from berth.cluster.errors import ApiError
from berth.cluster.resources import DEPLOYMENTS, REPLICA_SETS
from berth.cluster.store import Change

JSON = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
_SKIPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(text: str) -> str:
    """apimachinery rand.SafeEncodeString: each byte mapped into an alphabet without vowels."""
    return "".join(_ALPHABET[ord(c) % len(_ALPHABET)] for c in text)


def template_hash(template: JSON, collision_count: int = 0) -> str:
    """The pod-template-hash of a template (controller.ComputeHash's shape)."""
    h = 0x811C9DC5
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return safe_encode(str(h))


def without_hash(template: JSON) -> JSON:
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    return {**template, "metadata": meta}


def scaled(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        percent = int(value[:-1])
        exact = percent * total
        return -(-exact // 100) if round_up else exact // 100
    return int(value or 0)


def fenceposts(spec: JSON) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas (ResolveFenceposts)."""
    replicas = int(spec.get("replicas", 1))
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge"), replicas, round_up=True)
    unavailable = scaled(rolling.get("maxUnavailable"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(spec: JSON) -> bool:
    return bool((spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate")


def _max_unavailable(spec: JSON) -> int:
    replicas = int(spec.get("replicas", 1))
    if not _rolling(spec) or replicas == 0:
        return 0
    return min(fenceposts(spec)[1], replicas)


def _replicas(rs: JSON) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _status(rs: JSON, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def _revision(rs: JSON) -> int:
    try:
        return int(((rs["metadata"].get("annotations") or {}).get(REVISION)) or 0)
    except ValueError:
        return 0


def _seconds(stamp: Any) -> float:
    try:
        return float(calendar.timegm(time.strptime(str(stamp)[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


class DeploymentController(Controller):
    name = "deployment-controller"
    rt = DEPLOYMENTS
    watched = (REPLICA_SETS,)

    def keys(self, change: Change) -> list[Key]:
        if change.key == REPLICA_SETS.key:
            return list(self.owner_key(change))
        return list(self.own_key(change))

    def sync(self, d: JSON) -> int:
        if d["metadata"].get("deletionTimestamp"):
            return 0
        spec = d.get("spec") or {}
        rses = self.owned(REPLICA_SETS, d)
        template = spec.get("template") or {}
        new = next((rs for rs in rses if self._same_template(rs, template)), None)
        old = [rs for rs in rses if rs is not new]
        created = False
        if not spec.get("paused"):
            if new is None:
                new = self._create_new(d, rses, old)
                created = new is not None
            elif _revision(new) <= max((_revision(r) for r in old), default=0):
                new = self._annotate(d, new, revision=max(_revision(r) for r in old) + 1)
            if new is not None:
                if _rolling(spec):
                    self._roll(d, new, old)
                else:
                    self._recreate(d, new, old)
                self._cleanup(d, new, old)
        if new is not None:
            self._stamp_revision(d, new)
            d = self.store.get(DEPLOYMENTS, d["metadata"]["namespace"], d["metadata"]["name"]) or d
        rses = self.owned(REPLICA_SETS, d)
        new = next((rs for rs in rses if self._same_template(rs, template)), None)
        return self.write_status(DEPLOYMENTS, d, self._new_status(d, rses, new, created))

    def _same_template(self, rs: JSON, template: JSON) -> bool:
        return without_hash((rs.get("spec") or {}).get("template") or {}) == without_hash(template)

    # --- the new ReplicaSet ----------------------------------------------------------------

    def _create_new(self, d: JSON, rses: list[JSON], old: list[JSON]) -> JSON | None:
        meta, spec = d["metadata"], d.get("spec") or {}
        status = d.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        template = spec.get("template") or {}
        h = template_hash(without_hash(template), collisions)
        tmeta = dict(template.get("metadata") or {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = dict(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        revision = max((_revision(r) for r in old), default=0) + 1
        replicas = int(spec.get("replicas", 1))
        surge = fenceposts(spec)[0] if _rolling(spec) else 0
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k not in _SKIPPED_ANNOTATIONS and not k.startswith("deployment.kubernetes.io/")
        }
        annotations.update({REVISION: str(revision), DESIRED: str(replicas)})
        annotations[MAX] = str(replicas + surge)
        rs: JSON = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{h}",
                "namespace": meta["namespace"],
                "labels": tmeta["labels"],
                "annotations": annotations,
                "ownerReferences": [owner_reference(DEPLOYMENTS, d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": {**template, "metadata": tmeta},
            },
        }
        if not _rolling(spec) and not any(_replicas(r) for r in old):
            rs["spec"]["replicas"] = replicas
        elif _rolling(spec):
            total = sum(_replicas(r) for r in rses)
            rs["spec"]["replicas"] = max(0, min(replicas + surge - total, replicas))
        try:
            created = self.api.create(REPLICA_SETS, namespace=meta["namespace"], body=rs).obj
        except ApiError as err:
            if err.code == 409:  # a ReplicaSet of that name with another template: collision
                new_status = {**(d.get("status") or {}), "collisionCount": collisions + 1}
                self.write_status(DEPLOYMENTS, d, new_status)
            else:
                self.event(d, reason="FailedCreate", message=err.message, kind="Warning")
            return None
        if rs["spec"]["replicas"]:
            self.event(
                d,
                reason="ScalingReplicaSet",
                message=f"Scaled up replica set {created['metadata']['name']} from 0 to "
                f"{rs['spec']['replicas']}",
            )
        return created

    def _annotate(self, d: JSON, rs: JSON, *, revision: int) -> JSON:
        meta = dict(rs["metadata"])
        meta["annotations"] = {**(meta.get("annotations") or {}), REVISION: str(revision)}
        return self.store.replace(REPLICA_SETS, {**rs, "metadata": meta}, rs).obj

    def _stamp_revision(self, d: JSON, new: JSON) -> None:
        revision = (new["metadata"].get("annotations") or {}).get(REVISION)
        annotations = d["metadata"].get("annotations") or {}
        if revision and annotations.get(REVISION) != revision:
            meta = {**d["metadata"], "annotations": {**annotations, REVISION: revision}}
            self.store.replace(DEPLOYMENTS, {**d, "metadata": meta}, d)

    def _scale(self, d: JSON, rs: JSON, replicas: int) -> JSON:
        current = _replicas(rs)
        spec = d.get("spec") or {}
        want = int(spec.get("replicas", 1))
        surge = fenceposts(spec)[0] if _rolling(spec) else 0
        annotations = dict(rs["metadata"].get("annotations") or {})
        stamps = {DESIRED: str(want), MAX: str(want + surge)}
        if current == replicas and all(annotations.get(k) == v for k, v in stamps.items()):
            return rs
        body = {
            **rs,
            "metadata": {**rs["metadata"], "annotations": {**annotations, **stamps}},
            "spec": {**(rs.get("spec") or {}), "replicas": replicas},
        }
        meta = rs["metadata"]
        updated = self.api.update(
            REPLICA_SETS, namespace=meta["namespace"], name=meta["name"], body=body
        ).obj
        if current != replicas:
            direction = "up" if replicas > current else "down"
            self.event(
                d,
                reason="ScalingReplicaSet",
                message=f"Scaled {direction} replica set {meta['name']} from {current} to "
                f"{replicas}",
            )
        return updated

    # --- strategies ------------------------------------------------------------------------

    def _roll(self, d: JSON, new: JSON, old: list[JSON]) -> None:
        """rolling.go: scale the new ReplicaSet up within maxSurge, then the old ones down
        within maxUnavailable."""
        spec = d.get("spec") or {}
        want = int(spec.get("replicas", 1))
        surge, _ = fenceposts(spec)
        rses = [new, *old]
        if _replicas(new) > want:
            new = self._scale(d, new, want)
        elif _replicas(new) < want:
            total = sum(_replicas(r) for r in rses)
            if total < want + surge:
                grow = min(want + surge - total, want - _replicas(new))
                new = self._scale(d, new, _replicas(new) + grow)
        else:
            new = self._scale(d, new, want)  # the annotations
        old_count = sum(_replicas(r) for r in old)
        if not old_count:
            return
        all_count = old_count + _replicas(new)
        min_available = want - _max_unavailable(spec)
        new_unavailable = _replicas(new) - _status(new, "availableReplicas")
        max_down = all_count - min_available - new_unavailable
        if max_down <= 0:
            return
        # cleanupUnhealthyReplicas: old pods that are not available go first
        old = sorted(old, key=lambda r: str(r["metadata"].get("creationTimestamp", "")))
        cleaned = 0
        for i, rs in enumerate(old):
            if cleaned >= max_down:
                break
            unhealthy = _replicas(rs) - _status(rs, "availableReplicas")
            if _replicas(rs) == 0 or unhealthy <= 0:
                continue
            down = min(max_down - cleaned, unhealthy)
            old[i] = self._scale(d, rs, _replicas(rs) - down)
            cleaned += down
        available = _status(new, "availableReplicas") + sum(
            _status(r, "availableReplicas") for r in old
        )
        budget = available - min_available
        for rs in old:
            if budget <= 0:
                break
            if _replicas(rs) == 0:
                continue
            down = min(_replicas(rs), budget)
            self._scale(d, rs, _replicas(rs) - down)
            budget -= down

    def _recreate(self, d: JSON, new: JSON, old: list[JSON]) -> None:
        for rs in old:
            if _replicas(rs):
                self._scale(d, rs, 0)
        if any(_status(rs, "replicas") for rs in old):
            return  # wait until the old pods are gone
        self._scale(d, new, int((d.get("spec") or {}).get("replicas", 1)))

    def _cleanup(self, d: JSON, new: JSON, old: list[JSON]) -> None:
        limit = int((d.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [
            r
            for r in old
            if _replicas(r) == 0 and _status(r, "replicas") == 0 and r is not new
            if not r["metadata"].get("deletionTimestamp")
        ]
        idle.sort(key=_revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            meta = rs["metadata"]
            self.api.delete(REPLICA_SETS, namespace=meta["namespace"], name=meta["name"])

    # --- status ----------------------------------------------------------------------------

    def _new_status(self, d: JSON, rses: list[JSON], new: JSON | None, created: bool) -> JSON:
        spec = d.get("spec") or {}
        want = int(spec.get("replicas", 1))
        old_status = d.get("status") or {}
        total = sum(_status(r, "replicas") for r in rses)
        available = sum(_status(r, "availableReplicas") for r in rses)
        status: JSON = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": _status(new, "replicas") if new is not None else 0,
            "readyReplicas": sum(_status(r, "readyReplicas") for r in rses),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
            "terminatingReplicas": sum(_status(r, "terminatingReplicas") for r in rses),
        }
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        stamp = now()
        conditions = list(old_status.get("conditions") or [])
        if available >= want - _max_unavailable(spec):
            avail = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        conditions = self._set(conditions, "Available", *avail, stamp)
        name = new["metadata"]["name"] if new is not None else ""
        current = condition({"status": {"conditions": conditions}}, "Progressing")
        complete = (
            status["updatedReplicas"] == want
            and total == want
            and available == want
            and status["observedGeneration"] >= d["metadata"].get("generation", 1)
        )
        deadline = spec.get("progressDeadlineSeconds")
        if created:
            conditions = self._set(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{name}"',
                stamp,
            )
        elif new is not None and current is None:
            conditions = self._set(
                conditions,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                f'Found new replica set "{name}"',
                stamp,
            )
        if deadline is not None and new is not None:
            current = condition({"status": {"conditions": conditions}}, "Progressing")
            done = (
                total == status["updatedReplicas"]
                and current is not None
                and current.get("reason") == "NewReplicaSetAvailable"
            )
            moved = any(
                status.get(k) != old_status.get(k)
                for k in ("updatedReplicas", "readyReplicas", "availableReplicas")
            ) or total - status["updatedReplicas"] < int(old_status.get("replicas") or 0) - int(
                old_status.get("updatedReplicas") or 0
            )
            if done:
                pass
            elif complete:
                conditions = self._set(
                    conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}" has successfully progressed.',
                    stamp,
                )
            elif moved and not created:
                conditions = self._set(
                    conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{name}" is progressing.',
                    stamp,
                    touch=True,
                )
            elif current is not None and current.get("reason") != "ProgressDeadlineExceeded":
                since = _seconds(current.get("lastUpdateTime"))
                left = since + int(deadline) - time.time()
                if left <= 0:
                    conditions = self._set(
                        conditions,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        f'ReplicaSet "{name}" has timed out progressing.',
                        stamp,
                    )
                else:
                    key = (d["metadata"]["namespace"], d["metadata"]["name"])
                    self.requeue_at(key, time.monotonic() + left + 0.01)
        elif deadline is None:
            conditions = [c for c in conditions if c.get("type") != "Progressing"]
        status["conditions"] = conditions
        keep = ("replicas", "observedGeneration", "conditions", "terminatingReplicas")
        return {k: v for k, v in status.items() if v or k in keep}

    @staticmethod
    def _set(
        conditions: list[JSON],
        kind: str,
        status: str,
        reason: str,
        message: str,
        stamp: str,
        *,
        touch: bool = False,
    ) -> list[JSON]:
        """A Deployment condition (with lastUpdateTime); unchanged ones keep their times."""
        for c in conditions:
            same = (c.get("type"), c.get("status"), c.get("reason")) == (kind, status, reason)
            if same and c.get("message") == message and not touch:
                return conditions
        new = {
            "type": kind,
            "status": status,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
        return set_condition(conditions, new)
