"""The KubeSchedulerConfiguration the benchmark runs kube-scheduler with: Berth's configuration
translated by `berth.config.kubescheduler` (the one translation, which the differential oracle
uses too), plus the benchmark's own leader election, which holds kube-scheduler as a standby
until its caches are synced.

A profile that enables a plugin kube-scheduler does not have (MetricScore, Coscheduling) cannot
be translated: `UntranslatableError` names it.
"""

from __future__ import annotations

from typing import Any

from berth.config import parse_config
from berth.config.errors import ConfigError
from berth.config.kubescheduler import BERTH_ONLY_PLUGINS, to_kube_scheduler_configuration

JSON = dict[str, Any]
LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "kube-scheduler"  # the only Lease the bootstrap system:kube-scheduler role may update


class UntranslatableError(ValueError):
    """A Berth configuration kube-scheduler cannot run."""


def kube_scheduler_configuration(
    berth: JSON, *, retry_period: float = 0.2, parallelism: int | None = None
) -> JSON:
    """The KubeSchedulerConfiguration v1 document for a Berth configuration `berth` (raw, as
    the workload has it). Leader election is on, on kube-system/kube-scheduler, so the benchmark
    can hold the Lease until kube-scheduler's caches are synced and then release it: the Lease's
    acquireTime is the moment kube-scheduler starts scheduling."""
    try:
        document = to_kube_scheduler_configuration(
            parse_config(berth).model, client_connection=True
        )
    except ConfigError as exc:
        raise UntranslatableError("; ".join(exc.problems)) from None
    document["leaderElection"] = {
        "leaderElect": True,
        "leaseDuration": "15s",
        "renewDeadline": "10s",
        "retryPeriod": f"{int(retry_period * 1000)}ms",
        "resourceLock": "leases",
        "resourceName": LEASE_NAME,
        "resourceNamespace": LEASE_NAMESPACE,
    }
    if parallelism is not None:
        document["parallelism"] = parallelism
    return document


__all__ = [
    "BERTH_ONLY_PLUGINS",
    "LEASE_NAME",
    "LEASE_NAMESPACE",
    "UntranslatableError",
    "kube_scheduler_configuration",
]
