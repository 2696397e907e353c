"""The embedded Kubernetes-compatible API server (`berth cluster`): a place to schedule when there
is no cluster, for the main job, integration tests and benchmarks.

Public surface: `EmbeddedCluster` (sync, own thread), `AsyncEmbeddedCluster` (on your loop),
`ClusterConfig`, `Faults`/`FaultRule` for fault injection, `kubeconfig()` to write a client config.
"""

from berth.cluster.core import ClusterConfig, ClusterCore
from berth.cluster.faults import FaultRule, Faults
from berth.cluster.server import AsyncEmbeddedCluster, EmbeddedCluster, kubeconfig

__all__ = [
    "AsyncEmbeddedCluster",
    "ClusterConfig",
    "ClusterCore",
    "EmbeddedCluster",
    "FaultRule",
    "Faults",
    "kubeconfig",
]
