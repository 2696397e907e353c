"""One feed from raw Kubernetes objects into the engine's state, for every front.

Informers (`berth run`, `berth extender`), a dump (`berth simulate`) and the benchmark's
workloads hand their objects to a Feed, which is the only place that turns them into state:
nodes and bound pods into the node table, namespace labels beside it, pending pods into the
nominator and the pod groups, every other kind into the store of the engine's ports that lists
it. What changed is told to a `FeedListener` in upstream's words (cluster events, pods to
queue); the live front's queue is the one listener that acts on it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from berth.framework.events import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    NODE_ADD,
    NODE_DELETE,
    RESOURCE_OF_KIND,
    ActionType,
    ClusterEvent,
    node_changes,
    pod_changes,
)
from berth.framework.ports import Ports
from berth.objects import NodeInfo, ObjectError, PodInfo, parse_node, parse_pod
from berth.objects.errors import object_meta
from berth.objects.pod import POD_GROUP_LABEL
from berth.state.cluster import ClusterState
from berth.state.store import Obj, Store, object_key

log = logging.getLogger("berth.feed")
TERMINAL_PHASES = ("Succeeded", "Failed")
_SERVER_META = ("resourceVersion", "managedFields", "generation")
# what the binding subresource copies from the node onto the pod (upstream
# plugin/pkg/admission/podtopologylabels: the default domains, zone and region)
BINDING_LABELS = frozenset({"topology.kubernetes.io/zone", "topology.kubernetes.io/region"})


class FeedListener:
    """What a front hears from the feed; every hook does nothing here."""

    def cluster_event(self, event: ClusterEvent, old: Any, new: Any) -> None:
        """Something a plugin may have registered for changed (upstream's event handlers then
        move unschedulable pods)."""

    def pending(self, pod: PodInfo, *, added: bool) -> None:
        """A pod this engine schedules, not bound nor assumed, was added or changed."""

    def pending_gone(self, key: str) -> None:
        """The pod is not one to schedule any more (bound, deleted, finished, being deleted, or
        malformed)."""

    def pod_group_grew(self, group: str) -> None:
        """A pod joined the PodGroup "namespace/name" (gang scheduling may now succeed)."""

    def malformed(self, kind: str, raw: Obj, error: ObjectError, *, pending: bool = False) -> None:
        """An object that cannot be understood was left out (`pending`: a pod this engine
        would have scheduled)."""
        log.warning("malformed %s ignored", kind, extra={"error": str(error)})


class _KindHandler:
    """An informer's handler: its events, for one kind, into the feed."""

    def __init__(self, feed: Feed, kind: str) -> None:
        self._feed = feed
        self._kind = kind

    def on_add(self, obj: Obj) -> None:
        self._feed.apply(self._kind, None, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._feed.apply(self._kind, old, new)

    def on_delete(self, obj: Obj) -> None:
        self._feed.apply(self._kind, obj, None)


class Feed:
    """Raw objects into `state` and `ports`; `responsible(raw_pod)` says which pending pods the
    engine schedules (queued, nominated)."""

    def __init__(
        self,
        *,
        state: ClusterState,
        ports: Ports,
        responsible: Callable[[Obj], bool],
        listener: FeedListener | None = None,
    ) -> None:
        self.state = state
        self.ports = ports
        self.responsible = responsible
        self.listener = listener or FeedListener()
        self._stores: dict[str, Store] = {k: s for s in ports.stores() for k in s.kinds}

    def handler(self, kind: str) -> _KindHandler:
        """An informer handler (on_add / on_update / on_delete) for objects of `kind`."""
        return _KindHandler(self, kind)

    def add(self, obj: Obj) -> None:
        """An object that names its kind (a dump's items)."""
        self.apply(str(obj.get("kind") or ""), None, obj)

    def apply(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """`old` replaced by `new` (None: added, or deleted)."""
        obj = new if new is not None else old
        if obj is None:
            return
        try:
            object_meta(obj, kind=kind)
        except ObjectError as exc:
            self.listener.malformed(kind, obj, exc)
            return
        if kind == "Pod":
            self._pod(old, new)
        elif kind == "Node":
            self._node(old, new)
        elif kind == "Namespace":
            self._namespace(obj, deleted=new is None)
        elif kind in self._stores:
            self._store(self._stores[kind], kind, old, new)

    # ----- nodes and namespaces ----------------------------------------------------------------
    def _node(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            self.remove_node(str(old["metadata"]["name"]))
            return
        try:
            node = parse_node(new)
        except ObjectError as exc:
            self.listener.malformed("Node", new, exc)
            return
        self.upsert_node(node)

    def upsert_node(self, node: NodeInfo) -> None:
        """A parsed node, added or changed (the extender parses the nodes it is sent itself)."""
        state = self.state
        idx = state.index.get(node.name)
        old = state.nodes[idx] if idx is not None else None
        state.upsert_node(node)
        if old is None:
            self.listener.cluster_event(NODE_ADD, None, node)
            return
        # upstream nodeSchedulingPropertiesChange: one event per kind of change; a heartbeat or
        # other status-only change (conditions, annotations) raises none.
        for event in node_changes(old, node):
            self.listener.cluster_event(event, old, node)

    def remove_node(self, name: str) -> None:
        state = self.state
        idx = state.index.get(name)
        gone = state.nodes[idx] if idx is not None else None
        state.remove_node(name)
        if gone is not None:
            self.listener.cluster_event(NODE_DELETE, gone, None)  # e.g. spreading's domains

    def _namespace(self, obj: Obj, *, deleted: bool) -> None:
        meta = obj["metadata"]
        if deleted:
            self.state.remove_namespace(str(meta["name"]))
            return
        labels = meta.get("labels")
        self.state.set_namespace(
            str(meta["name"]), dict(labels) if isinstance(labels, dict) else {}
        )

    # ----- the stores --------------------------------------------------------------------------
    def _store(self, store: Store, kind: str, old: Obj | None, new: Obj | None) -> None:
        resource = RESOURCE_OF_KIND.get(kind)
        old, new = _with_kind(old, kind), _with_kind(new, kind)
        if new is None:
            assert old is not None
            store.delete(old)
            if resource:
                self.listener.cluster_event(ClusterEvent(resource, ActionType.DELETE), old, None)
            return
        try:
            changed = store.upsert(new)
        except ObjectError as exc:
            self.listener.malformed(kind, new, exc)
            return
        except (TypeError, AttributeError, ValueError, KeyError) as exc:  # a shape not checked
            reason = f"malformed object ({type(exc).__name__}: {exc})"
            error = ObjectError(kind=kind, name=object_key(new), field="", reason=reason)
            self.listener.malformed(kind, new, error)
            return
        if changed and resource:
            action = ActionType.ADD if old is None else ActionType.UPDATE
            self.listener.cluster_event(ClusterEvent(resource, action), old, new)

    # ----- pods --------------------------------------------------------------------------------
    def _pod(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            self._pod_gone(object_key(old), deleted=True)
            return
        key = object_key(new)
        spec, status, meta = (_part(new, p) for p in ("spec", "status", "metadata"))
        if status.get("phase") in TERMINAL_PHASES:
            self._pod_gone(key, deleted=False)
            return
        group = _group_of(meta)
        if self.ports.pod_groups.join(key, group):
            self.listener.pod_group_grew(group)
        if spec.get("nodeName"):
            self._bound_pod(key, old, new)
            return
        if not self.responsible(new):
            return
        if old is not None and _nominated(old) != _nominated(new):
            self._sync_nomination(key, new)
        if old is not None and not _pod_changed(old, new):
            # upstream isPodUpdated: our own condition patch, or a resourceVersion bump, must
            # not put an unschedulable pod back in line.
            return
        if meta.get("deletionTimestamp"):
            self.listener.pending_gone(key)
            return
        try:
            pod = parse_pod(new)
        except ObjectError as exc:
            self.listener.pending_gone(key)
            self.listener.malformed("Pod", new, exc, pending=True)
            return
        if self.state.node_of(key) is not None:
            return  # assumed: its binding cycle owns it
        if old is None and pod.nominated_node:
            self.ports.nominator.add(pod, pod.nominated_node)  # e.g. after a restart
        self.listener.pending(pod, added=old is None)

    def _pod_gone(self, key: str, *, deleted: bool) -> None:
        ports = self.ports
        ports.nominator.remove(key)
        ports.pod_groups.leave(key)
        if deleted:
            waiting = ports.waiting_pods.get(key)
            if waiting is not None:
                waiting.reject("", "pod deleted while waiting at permit")
        self.listener.pending_gone(key)
        removed = self.state.remove_pod(key)
        if removed is not None:
            # A pod counted on a node is gone: its room may help others.
            self.listener.cluster_event(ASSIGNED_POD_DELETE, removed, None)

    def _bound_pod(self, key: str, old: Obj | None, new: Obj) -> None:
        state = self.state
        previous: PodInfo | None = None
        ours = self._bound_by_us(key, old, new) if old is not None else None
        if ours is not None and ours is state.pods.get(key):
            # Our bind landed: the assumed pod is what parsing `new` would give (it was parsed
            # from `old`, and only the node and server-set fields differ), so it stays counted
            # as it is, without parsing and re-indexing the pod again.
            state.confirm_pod(key)
            pod = ours
        elif ours is not None:
            # Our bind landed and the API server copied the node's topology labels onto the
            # pod (PodTopologyLabelsAdmission, on by default since 1.35): the copy made
            # without parsing (which was ~8% of berth run's CPU), re-indexed under its labels.
            pod = ours
            state.relabel_pod(pod)
        else:
            try:
                pod = parse_pod(new)
            except ObjectError as exc:
                self.listener.malformed("Pod", new, exc)
                return
            if state.node_of(key) is not None and not state.is_assumed(key):
                previous = state.pods.get(key)
            state.add_pod(pod)  # confirms an assumed pod, or accounts someone else's
        self.ports.nominator.remove(key)  # bound: no longer holds room by nomination
        self.listener.pending_gone(key)
        if previous is None:
            self.listener.cluster_event(ASSIGNED_POD_ADD, None, pod)
            return
        # upstream AssignedPodUpdated: only the specific changes (labels, scale down,
        # tolerations) are dispatched, not a general update.
        for event in pod_changes(previous, pod):
            if event.action != ActionType.UPDATE:
                self.listener.cluster_event(event, previous, pod)

    def _sync_nomination(self, key: str, obj: Obj) -> None:
        """status.nominatedNodeName changed (by us or another scheduler): follow it."""
        nominator = self.ports.nominator
        node = _nominated(obj)
        if not node:
            nominator.remove(key)
            return
        if nominator.node_of(key) == node:
            return
        try:
            nominator.add(parse_pod(obj), node)
        except ObjectError:
            nominator.remove(key)

    def _bound_by_us(self, key: str, old: Obj, new: Obj) -> PodInfo | None:
        """The assumed pod as parsing `new` would give it, when `new` is `old` bound by our bind
        (to the node it is assumed on, parsed from `old`) with only the binding's changes
        (spec.nodeName, resourceVersion, managedFields, the PodScheduled condition): the
        assumed pod itself; with the topology labels the API server adds at binding as well:
        a copy with them; None otherwise (the pod is parsed)."""
        state = self.state
        node = _part(new, "spec").get("nodeName")
        if not state.is_assumed(key) or state.node_of(key) != node:
            return None
        assumed = state.pods.get(key)
        if assumed is None or not assumed.resource_version:
            return None
        if assumed.resource_version != _part(old, "metadata").get("resourceVersion"):
            return None  # updated while it was being bound: parse the newest
        if _part(old, "spec").get("nodeName"):
            return None
        a, b = _but_binding(old), _but_binding(new)
        before, labels = a["metadata"].pop("labels", None), b["metadata"].pop("labels", None)
        if a != b:
            return None
        if labels == before:
            return assumed
        if not isinstance(labels, dict):
            return None
        before = before if isinstance(before, dict) else {}
        if {k: v for k, v in labels.items() if k not in BINDING_LABELS} != {
            k: v for k, v in before.items() if k not in BINDING_LABELS
        }:
            return None
        return dataclasses.replace(
            assumed,
            labels={str(k): str(v) for k, v in labels.items()},
            node_name=str(node),
            resource_version=str(_part(new, "metadata").get("resourceVersion") or ""),
        )


def _with_kind(obj: Obj | None, kind: str) -> Obj | None:
    """Stores read `kind`; a listed object may lack it (the informer fills it in; tests may not)."""
    if obj is None or obj.get("kind") == kind:
        return obj
    return {**obj, "kind": kind}


def _part(obj: Obj, name: str) -> Obj:
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def _group_of(meta: Obj) -> str:
    labels = meta.get("labels")
    group = labels.get(POD_GROUP_LABEL) if isinstance(labels, dict) else None
    return f"{meta.get('namespace') or 'default'}/{group}" if group else ""


def _nominated(obj: Obj) -> str:
    return str(_part(obj, "status").get("nominatedNodeName") or "")


def _without(d: Obj, keys: tuple[str, ...]) -> Obj:
    return {k: v for k, v in d.items() if k not in keys}


def _strip(obj: Obj) -> Obj:
    """The pod without its status and the metadata the server maintains."""
    return {
        **_without(obj, ("status",)),
        "metadata": _without(_part(obj, "metadata"), _SERVER_META),
    }


def _pod_changed(old: Obj, new: Obj) -> bool:
    """Worth another look: a new phase, the generated ResourceClaims' names in the status
    (upstream's UpdatePodGeneratedResourceClaim), or any change outside the status."""
    old_status, new_status = _part(old, "status"), _part(new, "status")
    for key in ("phase", "resourceClaimStatuses"):
        if old_status.get(key) != new_status.get(key):
            return True
    return _strip(old) != _strip(new)


def _but_binding(obj: Obj) -> Obj:
    """The pod without what binding it changes: spec.nodeName, the PodScheduled condition,
    and the metadata the server maintains."""
    status = dict(_part(obj, "status"))
    conditions = [
        c
        for c in status.pop("conditions", None) or ()
        if not (isinstance(c, dict) and c.get("type") == "PodScheduled")
    ]
    if conditions:
        status["conditions"] = conditions
    # metadata, spec and status only: a listed pod carries no apiVersion/kind, a watched one does
    return {
        "metadata": _without(_part(obj, "metadata"), _SERVER_META),
        "spec": _without(_part(obj, "spec"), ("nodeName",)),
        "status": status,
    }
