"""Read a BerthConfiguration from YAML: safe loading, model validation, plugin resolution.

Every problem is reported as `field.path: reason`; the CLI prints them and exits with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from berth.config.errors import ConfigError, format_validation_error
from berth.config.from_kubescheduler import from_kube_scheduler, is_kube_scheduler_configuration
from berth.config.metrics import MetricSource, check_metric_references
from berth.config.model import BerthConfiguration, Profile
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
        sources = list(model.metricSources)
        unchecked: set[str] = set()
    else:  # each profile and source on its own, to check what can be checked
        indexed = _each(data.get("profiles", [{}]), Profile)
        checked = _each(data.get("metricSources", []), MetricSource)
        sources = [s for s in checked if s is not None]
        unchecked = _names_of_invalid(data.get("metricSources", []), checked)
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
        raise ConfigError(problems)
    return Config(model=model, profiles=resolved_profiles, warnings=warnings)


_M = TypeVar("_M", bound=BaseModel)


def _each(raw: Any, model: type[_M]) -> list[_M | None]:
    """Each item of a list section validated alone (None where it does not validate: the
    whole-document pass has reported why)."""
    if not isinstance(raw, list):
        return []
    out: list[_M | None] = []
    for item in raw:
        try:
            out.append(model.model_validate(item))
        except ValidationError:
            out.append(None)
    return out


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
