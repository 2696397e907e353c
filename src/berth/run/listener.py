"""What `berth run` does with the informers' news: the feed updates the engine's state, and the
queue hears it in upstream's words (eventhandlers.go): pods queued and dequeued, unschedulable
pods moved back on the cluster events their rejectors registered for, and a FailedScheduling
event for a pod of ours that cannot be parsed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from berth.feed import TERMINAL_PHASES, FeedListener
from berth.framework.events import ASSIGNED_POD, UNSCHEDULABLE_POD_ADD, ActionType, ClusterEvent
from berth.kube.informer import Handler, Obj
from berth.objects import ObjectError
from berth.objects.pod import PodInfo, pod_stub
from berth.plugins.coscheduling import NAME as COSCHEDULING
from berth.plugins.podtopologyspread import NAME as POD_TOPOLOGY_SPREAD
from berth.run.queue import QueuedPod, SchedulingQueue
from berth.state.cluster import ClusterState
from berth.state.store import object_key

log = logging.getLogger("berth.scheduler")


class RawPods:
    """The pods informer's handler: keep the latest raw pod (events and conditions are written
    from it), then feed it."""

    def __init__(self, pods: dict[str, Obj], feed: Handler) -> None:
        self._pods = pods
        self._feed = feed

    def on_add(self, obj: Obj) -> None:
        self._keep(obj)
        self._feed.on_add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._keep(new)
        self._feed.on_update(old, new)

    def on_delete(self, obj: Obj) -> None:
        self._pods.pop(object_key(obj), None)
        self._feed.on_delete(obj)

    def _keep(self, obj: Obj) -> None:
        if (obj.get("status") or {}).get("phase") in TERMINAL_PHASES:
            self._pods.pop(object_key(obj), None)
        else:
            self._pods[object_key(obj)] = obj


class QueueListener(FeedListener):
    """What the feed reports, as upstream's event handlers act on it: pods queued, dequeued and
    moved back from unschedulable on the cluster events their rejectors registered for."""

    def __init__(
        self,
        queue: SchedulingQueue,
        state: ClusterState,
        failed_scheduling: Callable[[PodInfo, str], None],
    ) -> None:
        self.queue = queue
        self.state = state
        self._failed_scheduling = failed_scheduling

    def cluster_event(self, event: ClusterEvent, old: Any, new: Any) -> None:
        queue = self.queue
        if event.resource == ASSIGNED_POD and event.action in (
            ActionType.ADD,
            ActionType.UPDATE_POD_LABEL,
        ):
            queue.move_all(event, old=old, new=new, pre_check=self._cross_topology(new))
        else:
            queue.move_all(event, old=old, new=new)

    def pending(self, pod: PodInfo, *, added: bool) -> None:
        if added:
            self.queue.add(pod)
        else:
            self.queue.update(pod)

    def pending_gone(self, key: str) -> None:
        self.queue.delete(key)

    def pod_group_grew(self, group: str) -> None:
        # A new member (ours or not) may complete a group whose pods lacked siblings.
        self.queue.move_all(UNSCHEDULABLE_POD_ADD, only_plugins={COSCHEDULING})

    def malformed(self, kind: str, raw: Obj, error: ObjectError, *, pending: bool = False) -> None:
        if pending:
            self._report(raw, error)  # a pod of ours: tell its owner
        else:
            super().malformed(kind, raw, error)

    def _cross_topology(self, added: PodInfo) -> Callable[[QueuedPod], bool]:
        """upstream getUnschedulablePodsWithCrossTopologyTerm: a bound pod added (or relabelled)
        can help only pods PodTopologySpread rejected in its namespace, or pods with a required
        affinity term it matches."""
        ns_labels = self.state.namespace_labels

        def check(entry: QueuedPod) -> bool:
            pod = entry.pod
            if POD_TOPOLOGY_SPREAD in entry.unschedulable_plugins and (
                pod.namespace == added.namespace
            ):
                return True
            return any(term.matches_pod(added, ns_labels) for term in pod.required_affinity)

        return check

    def _report(self, raw: Obj, exc: ObjectError) -> None:
        """A pod we cannot parse: tell its owner through an event, never crash."""
        meta = raw["metadata"]  # checked by the feed
        spec = raw.get("spec")
        scheduler = spec.get("schedulerName") if isinstance(spec, dict) else None
        stub = pod_stub(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta["name"]),
            uid=str(meta.get("uid") or ""),
            scheduler_name=str(scheduler or "default-scheduler"),
            resource_version=str(meta.get("resourceVersion") or ""),
        )
        log.warning("malformed pod", extra={"pod": stub.key, "error": str(exc)})
        self._failed_scheduling(stub, f"invalid pod spec: {exc.where}")
