"""The embedded cluster's kube-controller-manager: the workload controllers (ReplicaSet,
ReplicationController, Deployment, StatefulSet, DaemonSet, Job), the garbage collector and the
EndpointSlice controller, each doing for a scheduler what upstream's does (pkg/controller/).
"""

from __future__ import annotations

from berth.cluster.api import Api
from berth.cluster.controllers.base import Controller, OwnerIndex
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
    return [
        ReplicaSetController(api=api, index=index),
        ReplicaSetController(api=api, index=index, rt=REPLICATION_CONTROLLERS),
        DeploymentController(api=api, index=index),
        StatefulSetController(api=api, index=index),
        DaemonSetController(api=api, index=index),
        JobController(api=api, index=index),
        EndpointSliceController(api=api, index=index),
        GarbageCollector(api=api, index=index),
    ]
