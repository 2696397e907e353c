"""Read a BerthConfiguration from YAML: safe loading, model validation, plugin resolution.

Every problem is reported as `field.path: reason`; the CLI prints them and exits with status 2.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from berth.config.errors import ConfigError, format_validation_error
from berth.config.from_kubescheduler import from_kube_scheduler, is_kube_scheduler_configuration
from berth.config.metrics import MetricSource, check_metric_references
from berth.config.model import DEFAULT_SCHEDULER_NAME, BerthConfiguration, Profile
from berth.config.plugins import ResolvedProfile, resolve_profile
from berth.safeload import InputError, load_one

MAX_CONFIG_BYTES = 1 << 20


@dataclass
class Config:
    """A validated configuration with each profile resolved to its plugins."""

    model: BerthConfiguration
    profiles: dict[str, ResolvedProfile]
    # What was read and is not used, or means something else here (`field: why`); a
    # KubeSchedulerConfiguration's fields Berth has no use for, for one.
    warnings: list[str] = field(default_factory=list)


def parse_config(data: Any) -> Config:
    """Validate `data` (a decoded BerthConfiguration) and resolve its profiles; a ConfigError
    lists every problem found: a broken section does not hide the problems of the others."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["<root>: must be a mapping (a BerthConfiguration object)"])
    warnings: list[str] = []
    problems: list[str] = []
    if is_kube_scheduler_configuration(data):
        data, warnings, problems = from_kube_scheduler(data)
    try:
        model: BerthConfiguration | None = BerthConfiguration.model_validate(data)
    except ValidationError as exc:
        problems.extend(format_validation_error(exc))
        model = None
    if model is not None:
        indexed: list[Profile | None] = list(model.profiles)
        sources: list[MetricSource | None] = list(model.metricSources)
        unchecked: set[str] = set()
    else:  # each profile and source on its own, to check what can be checked
        reported = {p.partition(": ")[0] for p in problems}
        indexed = _each(data.get("profiles", [{}]), Profile)
        sources = _each(data.get("metricSources", []), MetricSource)
        unchecked = _names_of_invalid(data.get("metricSources", []), sources)
        problems.extend(_top_level_problems(data, reported, sources))
    resolved_profiles: dict[str, ResolvedProfile] = {}
    for i, profile in enumerate(indexed):
        if profile is None:
            continue
        try:
            resolved = resolve_profile(profile, where=f"profiles[{i}]")
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if resolved.percentage_of_nodes_to_score is None and model is not None:
            resolved.percentage_of_nodes_to_score = model.percentageOfNodesToScore
        resolved_profiles.setdefault(profile.schedulerName, resolved)
    problems.extend(
        check_metric_references(
            sources=sources,
            profiles=indexed,
            resolved_args={name: r.args for name, r in resolved_profiles.items()},
            also_defined=unchecked,
        )
    )
    if problems or model is None:
        raise ConfigError(list(dict.fromkeys(problems)))  # a check run twice says it once
    return Config(model=model, profiles=resolved_profiles, warnings=warnings)


_M = TypeVar("_M", bound=BaseModel)


def _each(raw: Any, model: type[_M]) -> list[_M | None]:
    """Each item of a list section validated alone, without the fields the whole-document
    pass reported (so that what they hide is checked too: a bad weight does not keep a
    profile's unknown plugins unreported); None where an item still does not validate."""
    if not isinstance(raw, list):
        return []
    return [_without_bad_fields(item, model) for item in raw]


_PRUNE_PASSES = 5


def _without_bad_fields(item: Any, model: type[_M]) -> _M | None:
    """`item` validated, each failing field removed (its default takes its place) until it
    validates; None when it does not within a few passes (a required field is bad)."""
    for _ in range(_PRUNE_PASSES):
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            pruned = copy.deepcopy(item)
            if not any(_remove(pruned, err["loc"]) for err in exc.errors()):
                return None
            item = pruned
    return None


def _remove(doc: Any, loc: tuple[int | str, ...]) -> bool:
    """Delete the deepest mapping key on `loc` from `doc`; whether anything was deleted."""
    keys = [k for k in loc if not (isinstance(k, str) and k.startswith("function-"))]
    node, holder, key = doc, None, None
    for k in keys:
        if isinstance(node, dict) and isinstance(k, str) and k in node:
            holder, key = node, k
        elif not (isinstance(node, list) and isinstance(k, int) and 0 <= k < len(node)):
            break
        node = node[k]
    if holder is None or key is None:
        return False
    del holder[key]
    return True


def _top_level_problems(
    data: dict[str, Any], reported: Collection[str], sources: list[MetricSource | None]
) -> list[str]:
    """The checks across top-level fields, run on their raw values when the document did not
    validate as a whole (pydantic skips a model's checks when a field fails); duplicate names
    of metric sources that did not validate (check_metric_references sees the others)."""
    problems: list[str] = []
    initial, longest = data.get("podInitialBackoffSeconds", 1), data.get("podMaxBackoffSeconds", 10)
    if (
        type(initial) is int
        and type(longest) is int
        and 0 < longest < initial
        and not {"podInitialBackoffSeconds", "podMaxBackoffSeconds"} & set(reported)
    ):
        problems.append(
            "podMaxBackoffSeconds: must be greater than or equal to PodInitialBackoffSeconds"
        )
    profiles = data.get("profiles")
    seen: set[str] = set()
    for i, p in enumerate(profiles if isinstance(profiles, list) else []):
        name = p.get("schedulerName", DEFAULT_SCHEDULER_NAME) if isinstance(p, dict) else None
        if isinstance(name, str) and name in seen:
            problems.append(f"profiles[{i}].schedulerName: Duplicate value: {name!r}")
        if isinstance(name, str):
            seen.add(name)
    raw_sources = data.get("metricSources")
    named: dict[str, int] = {}
    for i, item in enumerate(raw_sources if isinstance(raw_sources, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        first = named.setdefault(name, i)
        if first != i and (sources[first] is None or sources[i] is None):
            problems.append(f"metricSources[{i}].name: Duplicate value: {name!r}")
    return problems


def _names_of_invalid(raw: Any, checked: list[MetricSource | None]) -> set[str]:
    """The names of metric sources that did not validate: references to them are not
    reported as undefined on top of what is wrong with them."""
    if not isinstance(raw, list):
        return set()
    return {
        str(item.get("name"))
        for item, ok in zip(raw, checked, strict=True)
        if ok is None and isinstance(item, dict)
    }


def load_config(path: str | Path | None) -> Config:
    """The configuration in `path`, or the defaults when `path` is None."""
    if path is None:
        return parse_config({})
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES} bytes"])
    try:
        data = load_one(raw)
    except InputError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None
