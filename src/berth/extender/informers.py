"""What the extender watches: bound pods, namespaces and workloads always, nodes when
node-cache capable.

The extender has no queue, so these handlers only keep the engine's state current (the live
scheduler's handlers in `berth.scheduler` also move pods between queues). Pods matter in both
modes: kube-scheduler sends nodes, never the pods on them, and resource fit, ports, inter-pod
affinity and topology spread all count bound pods.
"""

from __future__ import annotations

import logging

from kubernetes.aio.client import AppsV1Api

from berth.engine import Engine
from berth.kube.client import Connection
from berth.kube.informer import Informer, Obj, object_key
from berth.objects import parse_node, parse_pod
from berth.objects.errors import ObjectError

log = logging.getLogger("berth.extender")
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
TERMINAL = ("Succeeded", "Failed")


class BoundPods:
    """Counts every bound, non-terminal pod on its node and keeps the nominator current;
    forgets deleted or finished pods."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_add(self, obj: Obj) -> None:
        self._apply(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._apply(new)

    def on_delete(self, obj: Obj) -> None:
        key = object_key(obj)
        self.engine.handle.nominator.remove(key)
        self.engine.state.remove_pod(key)

    def _apply(self, obj: Obj) -> None:
        state = self.engine.state
        nominator = self.engine.handle.nominator
        key = object_key(obj)
        status = obj.get("status") or {}
        if status.get("phase") in TERMINAL:
            nominator.remove(key)
            state.remove_pod(key)
            return
        if not (obj.get("spec") or {}).get("nodeName"):
            # Pending: not capacity yet, unless kube-scheduler's preemption nominated it to a
            # node (status.nominatedNodeName); the filter then keeps that room for it.
            nominated = status.get("nominatedNodeName")
            if not nominated:
                nominator.remove(key)
                return
            try:
                nominator.add(parse_pod(obj), str(nominated))
            except ObjectError:
                nominator.remove(key)
            return
        nominator.remove(key)
        try:
            state.add_pod(parse_pod(obj))
        except ObjectError as exc:
            log.warning("cannot account bound pod", extra={"pod": key, "error": str(exc)})


class Nodes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_add(self, obj: Obj) -> None:
        try:
            self.engine.state.upsert_node(parse_node(obj))
        except ObjectError as exc:
            log.warning("malformed node ignored", extra={"error": str(exc)})

    def on_update(self, old: Obj, new: Obj) -> None:
        self.on_add(new)

    def on_delete(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if isinstance(name, str):
            self.engine.state.remove_node(name)


class Namespaces:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_add(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.engine.state.set_namespace(str(meta.get("name")), dict(meta.get("labels") or {}))

    def on_update(self, old: Obj, new: Obj) -> None:
        self.on_add(new)

    def on_delete(self, obj: Obj) -> None:
        self.engine.state.remove_namespace(str((obj.get("metadata") or {}).get("name")))


def build_informers(engine: Engine, connection: Connection, *, nodes: bool) -> list[Informer]:
    """pods, namespaces and the workloads default spreading reads (Services, RCs, ReplicaSets,
    StatefulSets, optional), plus nodes when the extender answers NodeNames from its cache."""
    core = connection.core
    timeout = connection.request_timeout
    out = [
        Informer(
            name="pods",
            call=core.list_pod_for_all_namespaces_without_preload_content,
            handler=BoundPods(engine),
            request_timeout=timeout,
            extra={"field_selector": POD_FIELD_SELECTOR},
        ),
        Informer(
            name="namespaces",
            call=core.list_namespace_without_preload_content,
            handler=Namespaces(engine),
            request_timeout=timeout,
        ),
    ]
    # PodTopologySpread's default constraints select by the pod's Services and controllers.
    apps = AppsV1Api(connection.api)
    for name, call in (
        ("services", core.list_service_for_all_namespaces_without_preload_content),
        (
            "replicationcontrollers",
            core.list_replication_controller_for_all_namespaces_without_preload_content,
        ),
        ("replicasets", apps.list_replica_set_for_all_namespaces_without_preload_content),
        ("statefulsets", apps.list_stateful_set_for_all_namespaces_without_preload_content),
    ):
        out.append(
            Informer(
                name=name,
                call=call,
                handler=engine.workloads,
                request_timeout=timeout,
                optional=True,
            )
        )
    if nodes:
        out.insert(
            0,
            Informer(
                name="nodes",
                call=core.list_node_without_preload_content,
                handler=Nodes(engine),
                request_timeout=timeout,
            ),
        )
    return out
