"""A KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) read as Berth's configuration.

The scheduling fields carry over as they are (the shapes are the same by design); what Berth
has no use for is dropped with a warning that says so, and two defaults differ on purpose: a
profile without `schedulerName` is Berth's (`berth`, not `default-scheduler`) and the leader
lease is `kube-system/berth` (not the running kube-scheduler's `kube-scheduler`). Berth's own
fields (`metricSources`, ...) are only read from a BerthConfiguration.
"""

from __future__ import annotations

from typing import Any, Final

from berth.config.errors import ConfigError
from berth.config.model import API_VERSION, DEFAULT_SCHEDULER_NAME, KIND

KUBE_SCHEDULER_API_VERSION: Final = "kubescheduler.config.k8s.io/v1"
KUBE_SCHEDULER_KIND: Final = "KubeSchedulerConfiguration"

# Top-level fields kept as they are.
_SAME = (
    "percentageOfNodesToScore",
    "podInitialBackoffSeconds",
    "podMaxBackoffSeconds",
    "leaderElection",
    "clientConnection",
    "profiles",
)
# Fields read and dropped: why, for the warning.
_IGNORED = {
    "parallelism": "Berth decides one pod at a time (its filters and scores are vectorised "
    "over all nodes instead of run on 16 goroutines)",
    "enableProfiling": "Berth serves no /debug/pprof",
    "enableContentionProfiling": "Berth serves no /debug/pprof",
    "extenders": "Berth calls no scheduler extenders (it can be one: berth extender)",
    "delayCacheUntilActive": "Berth's caches always fill at start, leader or not",
}
_IGNORED_CLIENT = {
    "acceptContentTypes": "Berth speaks JSON to the API server",
    "contentType": "Berth speaks JSON to the API server",
}
# Extension points Berth has no configurable set for: PrioritySort (or Coscheduling's order)
# is the queue's order; postBind has no plugin in the default set; the placement points belong
# to the Workload API, off by default upstream.
_DROPPED_POINTS = {
    "queueSort": "the queue's order is PrioritySort, or Coscheduling's when a profile enables it",
    "postBind": "Berth runs no PostBind plugins",
    "placementGenerate": "the Workload API's placement is not implemented",
    "placementScore": "the Workload API's placement is not implemented",
    "podGroupPostFilter": "the Workload API's placement is not implemented",
}
QUEUE_SORT = "PrioritySort"
KUBE_SCHEDULER_NAME = "default-scheduler"


def is_kube_scheduler_configuration(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == KUBE_SCHEDULER_KIND


def from_kube_scheduler(
    data: dict[str, Any],
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The BerthConfiguration document equivalent to `data`, the warnings (`field: what
    Berth does instead`) and the problems of fields kube-scheduler does not have; a version
    other than v1 is a ConfigError."""
    warnings: list[str] = []
    problems: list[str] = []
    api_version = data.get("apiVersion")
    if api_version != KUBE_SCHEDULER_API_VERSION:  # the only version kube-scheduler 1.37 reads
        raise ConfigError(
            [
                f"apiVersion: Unsupported value: {api_version!r}: a {KUBE_SCHEDULER_KIND} is "
                f"read in {KUBE_SCHEDULER_API_VERSION}"
            ]
        )
    out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    for key, value in data.items():
        if key in ("apiVersion", "kind"):
            continue
        if key in _IGNORED:
            warnings.append(f"{key}: ignored: {_IGNORED[key]}")
        elif key == "clientConnection" and isinstance(value, dict):
            kept = {}
            for k, v in value.items():
                if k in _IGNORED_CLIENT:
                    if v not in ("", None):
                        warnings.append(f"clientConnection.{k}: ignored: {_IGNORED_CLIENT[k]}")
                else:
                    kept[k] = v
            out[key] = kept
        elif key == "profiles" and isinstance(value, list):
            out[key] = [_profile(p, i, warnings) for i, p in enumerate(value)]
        elif key in _SAME:
            out[key] = value
        else:
            problems.append(
                f"{key}: unknown field (a {KUBE_SCHEDULER_KIND} has no such field; Berth's own "
                f"fields go in a {KIND})"
            )
    election = out.get("leaderElection")
    if not isinstance(election, dict) or not election.get("resourceName"):
        warnings.append(
            "leaderElection.resourceName: not set: Berth's lease is kube-system/berth "
            "(kube-scheduler's default, kube-scheduler, is the running kube-scheduler's)"
        )
    if "profiles" not in out:
        out["profiles"] = [{}]
        warnings.append(
            f"profiles: not set: one profile named {DEFAULT_SCHEDULER_NAME!r} (kube-scheduler's "
            "default is 'default-scheduler', the name of the running kube-scheduler)"
        )
    return out, warnings, problems


def _profile(raw: Any, i: int, warnings: list[str]) -> Any:
    if not isinstance(raw, dict):
        return raw
    where = f"profiles[{i}]"
    profile = dict(raw)
    if not profile.get("schedulerName"):
        warnings.append(
            f"{where}.schedulerName: not set: {DEFAULT_SCHEDULER_NAME!r} (kube-scheduler's "
            "default is 'default-scheduler', the name of the running kube-scheduler)"
        )
    elif profile.get("schedulerName") == KUBE_SCHEDULER_NAME:
        warnings.append(
            f"{where}.schedulerName: {KUBE_SCHEDULER_NAME!r} is the running kube-scheduler's: "
            "while it runs, both schedule these pods (one binds each pod, the other's binding "
            "fails); use another name beside it"
        )
    plugins = profile.get("plugins")
    if isinstance(plugins, dict):
        profile["plugins"] = _plugins(plugins, where=f"{where}.plugins", warnings=warnings)
    configs = profile.get("pluginConfig")
    if isinstance(configs, list):
        profile["pluginConfig"] = [
            _plugin_config(pc, where=f"{where}.pluginConfig[{j}]", warnings=warnings)
            for j, pc in enumerate(configs)
        ]
    return profile


def _plugins(plugins: dict[str, Any], *, where: str, warnings: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for point, pset in plugins.items():
        if point in _DROPPED_POINTS:
            if _names(pset, "enabled") - {QUEUE_SORT} or _names(pset, "disabled") - {QUEUE_SORT}:
                warnings.append(f"{where}.{point}: ignored: {_DROPPED_POINTS[point]}")
            continue
        if isinstance(pset, dict):
            pset = dict(pset)
            for kind in ("enabled", "disabled"):
                refs = pset.get(kind)
                if isinstance(refs, list):
                    # PrioritySort is not a plugin in Berth: the queue is ordered by it already.
                    pset[kind] = [r for r in refs if not _is(r, QUEUE_SORT)]
        out[point] = pset
    return out


def _plugin_config(raw: Any, *, where: str, warnings: list[str]) -> Any:
    """Upstream's args carry their own apiVersion and kind (`<Plugin>Args`); Berth's do not."""
    if not isinstance(raw, dict) or not isinstance(raw.get("args"), dict):
        return raw
    args = dict(raw["args"])
    kind = args.pop("kind", None)
    version = args.pop("apiVersion", None)
    name = raw.get("name")
    if kind is not None and isinstance(name, str) and kind != f"{name}Args":
        warnings.append(f"{where}.args.kind: {kind!r} read as the args of {name}")
    if version not in (None, KUBE_SCHEDULER_API_VERSION):
        warnings.append(
            f"{where}.args.apiVersion: {version!r} read as {KUBE_SCHEDULER_API_VERSION}"
        )
    return {**raw, "args": args}


def _names(pset: Any, kind: str) -> set[str]:
    refs = pset.get(kind) if isinstance(pset, dict) else None
    if not isinstance(refs, list):
        return set()
    return {str(r.get("name")) for r in refs if isinstance(r, dict)}


def _is(ref: Any, name: str) -> bool:
    return isinstance(ref, dict) and ref.get("name") == name
