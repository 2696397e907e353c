"""The list/watch call of every kind Berth's fronts watch, and informers built from them.

`berth run` watches all of these, `berth extender` the few its verbs read; each informer feeds
the handler its front gives for the kind (the feed's, `berth.feed`). A kind needed by a new
store is one more row here (and its RBAC rule in deploy/base/rbac-read.yaml and the chart).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.aio.client import (
    AppsV1Api,
    CustomObjectsApi,
    PolicyV1Api,
    ResourceV1Api,
    StorageV1Api,
)

from berth.kube.client import Connection
from berth.kube.informer import Handler, Informer, ListCall

# Finished pods hold no room and are never scheduled: the server leaves them out.
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class Lister:
    name: str  # the informer's name (logs, metrics): the resource's plural
    call: Callable[[Connection], ListCall]
    optional: bool = False  # a resource the server may not serve (a CRD, an older API)
    extra: dict[str, Any] = field(default_factory=dict)
    # False: the informer keeps only identities, for a kind whose store parses all it reads and
    # no queueing hint reads its old raw object (ResourceSlices: 46 KB of JSON each for 10
    # devices, several times their parsed size)
    cache_raw: bool = True


def _podgroups(connection: Connection) -> ListCall:
    """The list/watch call for scheduler-plugins PodGroups (a CRD that may be absent)."""
    api = CustomObjectsApi(connection.api)

    async def call(**kwargs: Any) -> Any:
        return await api.list_cluster_custom_object_without_preload_content(
            group="scheduling.x-k8s.io", version="v1alpha1", plural="podgroups", **kwargs
        )

    return call


LISTERS: dict[str, Lister] = {
    # the feed parses a node whole and compares parsed nodes; of an old one it reads the name
    "Node": Lister("nodes", lambda c: c.core.list_node_without_preload_content, cache_raw=False),
    "Namespace": Lister("namespaces", lambda c: c.core.list_namespace_without_preload_content),
    "Pod": Lister(
        "pods",
        lambda c: c.core.list_pod_for_all_namespaces_without_preload_content,
        extra={"field_selector": POD_FIELD_SELECTOR},
    ),
    "PodDisruptionBudget": Lister(
        "poddisruptionbudgets",
        lambda c: (
            PolicyV1Api(c.api).list_pod_disruption_budget_for_all_namespaces_without_preload_content
        ),
        optional=True,
    ),
    # PodTopologySpread's default constraints select by the pod's Services and controllers.
    "Service": Lister(
        "services",
        lambda c: c.core.list_service_for_all_namespaces_without_preload_content,
        optional=True,
    ),
    "ReplicationController": Lister(
        "replicationcontrollers",
        lambda c: c.core.list_replication_controller_for_all_namespaces_without_preload_content,
        optional=True,
    ),
    "ReplicaSet": Lister(
        "replicasets",
        lambda c: AppsV1Api(c.api).list_replica_set_for_all_namespaces_without_preload_content,
        optional=True,
    ),
    "StatefulSet": Lister(
        "statefulsets",
        lambda c: AppsV1Api(c.api).list_stateful_set_for_all_namespaces_without_preload_content,
        optional=True,
    ),
    "PersistentVolume": Lister(
        "persistentvolumes", lambda c: c.core.list_persistent_volume_without_preload_content
    ),
    "PersistentVolumeClaim": Lister(
        "persistentvolumeclaims",
        lambda c: c.core.list_persistent_volume_claim_for_all_namespaces_without_preload_content,
    ),
    "StorageClass": Lister(
        "storageclasses",
        lambda c: StorageV1Api(c.api).list_storage_class_without_preload_content,
        optional=True,
    ),
    "CSINode": Lister(
        "csinodes",
        lambda c: StorageV1Api(c.api).list_csi_node_without_preload_content,
        optional=True,
    ),
    "PodGroup": Lister("podgroups", _podgroups, optional=True),
    # DynamicResources (resource.k8s.io/v1): optional, a cluster may not serve it
    "DeviceClass": Lister(
        "deviceclasses",
        lambda c: ResourceV1Api(c.api).list_device_class_without_preload_content,
        optional=True,
    ),
    "ResourceSlice": Lister(
        "resourceslices",
        lambda c: ResourceV1Api(c.api).list_resource_slice_without_preload_content,
        optional=True,
        cache_raw=False,
    ),
    "ResourceClaim": Lister(
        "resourceclaims",
        lambda c: (
            ResourceV1Api(c.api).list_resource_claim_for_all_namespaces_without_preload_content
        ),
        optional=True,
    ),
    "ResourceClaimTemplate": Lister(
        "resourceclaimtemplates",
        lambda c: (
            ResourceV1Api(
                c.api
            ).list_resource_claim_template_for_all_namespaces_without_preload_content
        ),
        optional=True,
    ),
    "DeviceTaintRule": Lister(
        "devicetaintrules",
        lambda c: ResourceV1Api(c.api).list_device_taint_rule_without_preload_content,
        optional=True,
    ),
}


def build_informers(
    connection: Connection, kinds: Iterable[str], handler: Callable[[str], Handler]
) -> list[Informer]:
    """One informer per kind, in `kinds`' order, each feeding `handler(kind)`."""
    return [
        Informer(
            name=LISTERS[kind].name,
            call=LISTERS[kind].call(connection),
            handler=handler(kind),
            request_timeout=connection.request_timeout,
            optional=LISTERS[kind].optional,
            extra=LISTERS[kind].extra,
            cache_raw=LISTERS[kind].cache_raw,
            strip_managed_fields=True,  # no front reads them
        )
        for kind in kinds
    ]


__all__ = ["LISTERS", "POD_FIELD_SELECTOR", "Lister", "build_informers"]
