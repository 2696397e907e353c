"""The effective configuration as a document: what `berth config view` prints (kube-scheduler's
`--write-config-to`). Every default is filled in, each profile's plugins are the merged
multiPoint list (upstream's defaults with the profile's changes) and every enabled plugin that
takes args has them, defaulted, in pluginConfig, sorted by name as kube-scheduler writes them.
"""

from __future__ import annotations

from typing import Any

from berth.config.loader import Config
from berth.config.plugins import POINTS, default_plugins, merge_plugins


def _refs(refs: list[Any]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json", exclude_none=True) for r in refs]


def effective(config: Config) -> dict[str, Any]:
    """`config` with every default, as a BerthConfiguration document."""
    model = config.model
    dumped = model.model_dump(mode="json", exclude_none=True)
    dumped["percentageOfNodesToScore"] = model.percentageOfNodesToScore or 0  # 0: adaptive
    out = {name: dumped[name] for name in type(model).model_fields if name in dumped}
    profiles = []
    for profile in model.profiles:
        resolved = config.profiles[profile.schedulerName]
        merged = merge_plugins(default_plugins(), profile.plugins)
        plugins: dict[str, Any] = {}
        for point in ("multiPoint", *POINTS):
            pset = getattr(merged, point)
            entry: dict[str, Any] = {}
            if pset.enabled:
                entry["enabled"] = _refs(pset.enabled)
            if pset.disabled:
                entry["disabled"] = _refs(pset.disabled)
            plugins[point] = entry
        doc: dict[str, Any] = {"schedulerName": profile.schedulerName}
        if profile.percentageOfNodesToScore is not None:
            doc["percentageOfNodesToScore"] = profile.percentageOfNodesToScore
        doc["plugins"] = plugins
        doc["pluginConfig"] = [
            {"name": name, "args": args.model_dump(mode="json", exclude_none=True)}
            for name, args in sorted(resolved.args.items())
        ]
        profiles.append(doc)
    out["profiles"] = profiles
    return out
