"""Berth's configuration translated to kube-scheduler's KubeSchedulerConfiguration v1, so that the
benchmark runs upstream's scheduler with the same profile, client limits and node sampling.

Berth's configuration is KubeSchedulerConfiguration-shaped (the same profile, plugin and
pluginConfig fields), so the translation keeps those as they are and drops what only Berth has
(metric sources). A profile that enables a plugin kube-scheduler does not have (MetricScore,
Coscheduling) cannot be translated: `UntranslatableError` names it.
"""

from __future__ import annotations

from typing import Any

from berth.config.model import DEFAULT_SCHEDULER_NAME

JSON = dict[str, Any]
API_VERSION = "kubescheduler.config.k8s.io/v1"
# Berth's own plugins: registered in Berth only
BERTH_ONLY_PLUGINS = frozenset({"MetricScore", "Coscheduling"})
LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "kube-scheduler"  # the only Lease the bootstrap system:kube-scheduler role may update


class UntranslatableError(ValueError):
    """A Berth configuration kube-scheduler cannot run."""


def _plugin_names(profile: JSON) -> set[str]:
    names: set[str] = set()
    for point in (profile.get("plugins") or {}).values():
        for ref in (point or {}).get("enabled") or ():
            names.add(str(ref.get("name")))
    return names


def kube_scheduler_configuration(
    berth: JSON, *, retry_period: float = 0.2, parallelism: int | None = None
) -> JSON:
    """The KubeSchedulerConfiguration v1 document for a Berth configuration `berth` (raw, as
    the workload has it). Leader election is on, on kube-system/kube-scheduler, so the benchmark
    can hold the Lease until kube-scheduler's caches are synced and then release it: the Lease's
    acquireTime is the moment kube-scheduler starts scheduling."""
    profiles: list[JSON] = []
    for profile in berth.get("profiles") or [{}]:
        own = sorted(_plugin_names(profile) & BERTH_ONLY_PLUGINS)
        if own:
            raise UntranslatableError(
                f"profile {profile.get('schedulerName', DEFAULT_SCHEDULER_NAME)!r} enables "
                f"{', '.join(own)}, which kube-scheduler does not have"
            )
        out: JSON = {"schedulerName": profile.get("schedulerName", DEFAULT_SCHEDULER_NAME)}
        for key in ("percentageOfNodesToScore", "plugins", "pluginConfig"):
            if profile.get(key) is not None:
                out[key] = profile[key]
        profiles.append(out)
    client = berth.get("clientConnection") or {}
    document: JSON = {
        "apiVersion": API_VERSION,
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {
            key: client[key] for key in ("qps", "burst", "contentType") if key in client
        },
        "leaderElection": {
            "leaderElect": True,
            "leaseDuration": "15s",
            "renewDeadline": "10s",
            "retryPeriod": f"{int(retry_period * 1000)}ms",
            "resourceLock": "leases",
            "resourceName": LEASE_NAME,
            "resourceNamespace": LEASE_NAMESPACE,
        },
        "profiles": profiles,
    }
    for key in ("percentageOfNodesToScore", "podInitialBackoffSeconds", "podMaxBackoffSeconds"):
        if berth.get(key) is not None:
            document[key] = berth[key]
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
