"""The embedded cluster's kube-controller-manager: the workload controllers (ReplicaSet,
ReplicationController, Deployment, StatefulSet, DaemonSet, Job), the garbage collector and the
EndpointSlice controller, each doing for a scheduler what upstream's does (pkg/controller/).
"""

from __future__ import annotations

from berth.cluster.api import Api
from berth.cluster.controllers.base import Controller, OwnerIndex, PodRouter
from berth.cluster.controllers.daemonset import DaemonSetController
from berth.cluster.controllers.deployment import DeploymentController
from berth.cluster.controllers.endpointslice import EndpointSliceController
from berth.cluster.controllers.garbagecollector import GarbageCollector
from berth.cluster.controllers.job import JobController
from berth.cluster.controllers.replicaset import ReplicaSetController
from berth.cluster.controllers.statefulset import StatefulSetController
from berth.cluster.resources import REPLICATION_CONTROLLERS


def make_controllers(api: Api) -> list[Controller | GarbageCollector]:
    """Every controller over `api`'s store, sharing one owner index."""
    index = OwnerIndex(api.store)
    replicasets = ReplicaSetController(api=api, index=index)
    rcs = ReplicaSetController(api=api, index=index, rt=REPLICATION_CONTROLLERS)
    statefulsets = StatefulSetController(api=api, index=index)
    daemonsets = DaemonSetController(api=api, index=index)
    jobs = JobController(api=api, index=index)
    endpoints = EndpointSliceController(api=api, index=index)
    collector = GarbageCollector(api=api, index=index)
    PodRouter(
        store=api.store,
        index=index,
        owners=[replicasets, rcs, statefulsets, daemonsets, jobs],
        adopters=[replicasets, rcs],
        always=[endpoints._on_change],
        collector=collector._on_change,
    )
    return [
        replicasets,
        rcs,
        DeploymentController(api=api, index=index),
        statefulsets,
        daemonsets,
        jobs,
        endpoints,
        collector,
    ]
