"""A BerthConfiguration as kube-scheduler's own KubeSchedulerConfiguration (v1): what the
differential oracle runs upstream's scheduler with. The shapes are the same by design; only
Berth's own plugins (MetricScore, Coscheduling) and fields have no upstream counterpart.
"""

from __future__ import annotations

from typing import Any

from berth.config.errors import ConfigError
from berth.config.model import BerthConfiguration, PluginSet
from berth.config.plugins import POINTS

API_VERSION = "kubescheduler.config.k8s.io/v1"
KIND = "KubeSchedulerConfiguration"
# Plugins Berth has and kube-scheduler's default registry does not.
BERTH_ONLY_PLUGINS = frozenset({"MetricScore", "Coscheduling"})


def _plugin_set(pset: PluginSet, *, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    enabled = []
    for ref in pset.enabled:
        if ref.name in BERTH_ONLY_PLUGINS:
            raise ConfigError(
                [f"{where}.enabled: {ref.name} is Berth's own plugin; kube-scheduler has none"]
            )
        entry: dict[str, Any] = {"name": ref.name}
        if ref.weight is not None:
            entry["weight"] = ref.weight
        enabled.append(entry)
    disabled = [{"name": r.name} for r in pset.disabled if r.name not in BERTH_ONLY_PLUGINS]
    if enabled:
        out["enabled"] = enabled
    if disabled:
        out["disabled"] = disabled
    return out


def to_kube_scheduler_configuration(
    model: BerthConfiguration, *, client_connection: bool = False
) -> dict[str, Any]:
    """The KubeSchedulerConfiguration equivalent of `model`'s scheduling settings, or a
    ConfigError naming what kube-scheduler cannot express (a Berth-only plugin). With
    `client_connection`, also its clientConnection qps and burst (a kube-scheduler run against
    an API server, as the benchmark's; Berth's kubeconfig and timeout have no counterpart)."""
    profiles = []
    for i, profile in enumerate(model.profiles):
        plugins: dict[str, Any] = {}
        for point in ("multiPoint", *POINTS):
            entry = _plugin_set(
                getattr(profile.plugins, point), where=f"profiles[{i}].plugins.{point}"
            )
            if entry:
                plugins[point] = entry
        out: dict[str, Any] = {"schedulerName": profile.schedulerName, "plugins": plugins}
        if profile.percentageOfNodesToScore is not None:
            out["percentageOfNodesToScore"] = profile.percentageOfNodesToScore
        configs = [
            {"name": pc.name, "args": pc.args}
            for pc in profile.pluginConfig
            if pc.name not in BERTH_ONLY_PLUGINS
        ]
        if configs:
            out["pluginConfig"] = configs
        profiles.append(out)
    config: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "podInitialBackoffSeconds": model.podInitialBackoffSeconds,
        "podMaxBackoffSeconds": model.podMaxBackoffSeconds,
        "profiles": profiles,
    }
    if model.percentageOfNodesToScore is not None:
        config["percentageOfNodesToScore"] = model.percentageOfNodesToScore
    if client_connection:
        client = model.clientConnection
        qps = int(client.qps) if float(client.qps).is_integer() else client.qps
        config["clientConnection"] = {"qps": qps, "burst": client.burst}
    return config
