"""Which plugins run where: upstream's default set, plugin-set merge and multiPoint expansion.

`mergePluginSet` and `expandMultiPointPlugins` are transcribed from kube-scheduler
(apis/config/v1/default_plugins.go, framework/runtime/framework.go) so that enabling, disabling,
reordering and re-weighting behave as users of kube-scheduler configs expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from berth.config.errors import ConfigError
from berth.config.model import PluginRef, Plugins, PluginSet, Profile
from berth.framework.plugin import EXTENSION_POINTS, POINT_INTERFACE_NAMES
from berth.plugins.registry import registry

# Upstream 1.37's default MultiPoint list with its default feature gates (apis/config/v1/
# default_plugins.go: DynamicResources before DefaultPreemption, NodeDeclaredFeatures last);
# PrioritySort is not listed: queue sort is built into Berth's queue.
DEFAULT_MULTI_POINT: tuple[tuple[str, int | None], ...] = (
    ("SchedulingGates", None),
    ("NodeName", None),
    ("NodeUnschedulable", None),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", None),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", None),
    ("NodeVolumeLimits", None),
    ("VolumeBinding", None),
    ("VolumeZone", None),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DynamicResources", 2),
    ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", None),
    ("NodeDeclaredFeatures", None),
)

POINTS = tuple(EXTENSION_POINTS)  # preEnqueue .. bind, in run order
MAX_TOTAL_SCORE = 2**63 - 1
MAX_NODE_SCORE = 100


def default_plugins() -> Plugins:
    known = registry()
    return Plugins(
        multiPoint=PluginSet(
            enabled=[PluginRef(name=n, weight=w) for n, w in DEFAULT_MULTI_POINT if n in known]
        )
    )


def merge_plugin_set(default: PluginSet, custom: PluginSet) -> PluginSet:
    """Upstream mergePluginSet: custom entries re-configure defaults in place, others append."""
    disabled = [PluginRef(name=p.name) for p in custom.disabled + default.disabled]
    disabled_names = {p.name for p in disabled}
    custom_by_name = {p.name: (i, p) for i, p in enumerate(custom.enabled)}
    replaced: set[int] = set()
    enabled: list[PluginRef] = []
    if "*" not in disabled_names:
        for d in default.enabled:
            if d.name in disabled_names:
                continue
            if d.name in custom_by_name:
                i, d = custom_by_name[d.name]
                replaced.add(i)
            enabled.append(d)
    enabled.extend(p for i, p in enumerate(custom.enabled) if i not in replaced)
    return PluginSet(enabled=enabled, disabled=disabled)


def merge_plugins(default: Plugins, custom: Plugins) -> Plugins:
    return Plugins(
        **{
            point: merge_plugin_set(getattr(default, point), getattr(custom, point))
            for point in ("multiPoint", *POINTS)
        }
    )


@dataclass
class ResolvedProfile:
    """A profile with its plugins placed per extension point, weights and parsed args."""

    scheduler_name: str
    percentage_of_nodes_to_score: int | None
    points: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)


def resolve_profile(profile: Profile, *, where: str) -> ResolvedProfile:
    """Merge with the defaults, expand multiPoint and check every name; errors name the field."""
    known = registry()
    errors: list[str] = []
    for point in ("multiPoint", *POINTS):
        pset: PluginSet = getattr(profile.plugins, point)
        for kind, refs in (("enabled", pset.enabled), ("disabled", pset.disabled)):
            for i, ref in enumerate(refs):
                if ref.name == "*" and kind == "disabled":
                    continue
                if ref.name not in known:
                    errors.append(
                        f"{where}.plugins.{point}.{kind}[{i}].name: plugin {ref.name!r} does not "
                        f"exist; known plugins: {', '.join(sorted(known))}"
                    )
                elif (
                    kind == "enabled"
                    and point != "multiPoint"
                    and not issubclass(known[ref.name].cls, EXTENSION_POINTS[point])
                ):
                    errors.append(
                        f"{where}.plugins.{point}.{kind}[{i}].name: plugin {ref.name!r} does "
                        f"not extend {POINT_INTERFACE_NAMES[point]} plugin"
                    )
    if errors:  # go on without the unknown names, to report every other problem too
        profile = _known_only(profile, known)
    merged = merge_plugins(default_plugins(), profile.plugins)
    resolved = ResolvedProfile(profile.schedulerName, profile.percentageOfNodesToScore)
    for point in POINTS:
        pset = getattr(merged, point)
        names: list[str] = []
        for p in pset.enabled:
            if p.name in names:
                errors.append(
                    f"{where}.plugins.{point}.enabled: plugin {p.name!r} already registered "
                    f"as {POINT_INTERFACE_NAMES[point]!r}"
                )
            names.append(p.name)
        resolved.points[point] = _expand_multi_point(
            point, names, pset, merged.multiPoint, errors=errors, where=where
        )
    total = 0
    for ref in merged.score.enabled + merged.multiPoint.enabled:
        spec = known[ref.name]
        if not issubclass(spec.cls, EXTENSION_POINTS["score"]) or ref.name in resolved.weights:
            continue
        weight = ref.weight or 1
        if weight * MAX_NODE_SCORE > MAX_TOTAL_SCORE - total:
            errors.append(f"{where}.plugins.score: total score of Score plugins could overflow")
        total += weight * MAX_NODE_SCORE
        resolved.weights[ref.name] = weight
    if not resolved.points["bind"]:
        errors.append(
            f"{where}.plugins.bind: at least one bind plugin is needed for profile with "
            f"scheduler name {profile.schedulerName!r}"
        )
    enabled_anywhere = {n for names in resolved.points.values() for n in names}
    configured = {}
    for i, pc in enumerate(profile.pluginConfig):
        if pc.name not in known:
            errors.append(f"{where}.pluginConfig[{i}].name: plugin {pc.name!r} does not exist")
            continue
        configured[pc.name] = (i, pc.args)
    for name in enabled_anywhere:
        model = known[name].args_model
        if model is None:
            continue
        i, raw = configured.get(name, (-1, {}))
        from pydantic import ValidationError

        from berth.config.errors import format_validation_error

        try:
            resolved.args[name] = model.model_validate(raw)
        except ValidationError as exc:
            errors.extend(format_validation_error(exc, prefix=f"{where}.pluginConfig[{i}].args"))
    for name, (i, raw) in configured.items():
        if known[name].args_model is None and raw:
            errors.append(f"{where}.pluginConfig[{i}].args: plugin {name!r} takes no args")
    if errors:
        raise ConfigError(errors)
    return resolved


def _known_only(profile: Profile, known: dict[str, Any]) -> Profile:
    """`profile` without the plugin references that name no plugin."""
    plugins = profile.plugins.model_copy(deep=True)
    for point in ("multiPoint", *POINTS):
        pset: PluginSet = getattr(plugins, point)
        pset.enabled = [p for p in pset.enabled if p.name in known]
        pset.disabled = [p for p in pset.disabled if p.name in known or p.name == "*"]
    return profile.model_copy(update={"plugins": plugins})


def _expand_multi_point(
    point: str,
    specific: list[str],
    pset: PluginSet,
    multi: PluginSet,
    *,
    errors: list[str],
    where: str,
) -> list[str]:
    """Upstream expandMultiPointPlugins for one extension point."""
    disabled = {p.name for p in pset.disabled}
    if "*" in disabled or not multi.enabled:
        return list(specific)
    known = registry()
    overrides: list[str] = []
    from_multi: list[str] = []
    for ref in multi.enabled:
        if not issubclass(known[ref.name].cls, EXTENSION_POINTS[point]):
            continue
        if ref.name in disabled:
            continue
        if ref.name in specific:
            if ref.name not in overrides:
                overrides.append(ref.name)
            continue
        if ref.name in from_multi:
            errors.append(
                f"{where}.plugins.multiPoint.enabled: plugin {ref.name!r} already registered as "
                f"{POINT_INTERFACE_NAMES[point]!r}"
            )
            continue
        from_multi.append(ref.name)
    first = [n for n in specific if n in overrides]
    rest = [n for n in specific if n not in overrides]
    return first + from_multi + rest
