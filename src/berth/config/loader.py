"""Read a BerthConfiguration from YAML: safe loading, model validation, plugin resolution.

Every problem is reported as `field.path: reason`; the CLI prints them and exits with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from berth.config.errors import ConfigError, format_validation_error
from berth.config.metrics import check_metric_references
from berth.config.model import BerthConfiguration
from berth.config.plugins import ResolvedProfile, resolve_profile
from berth.config.rebalance import check_rebalance
from berth.safeload import InputError, load_one

MAX_CONFIG_BYTES = 1 << 20


@dataclass
class Config:
    """A validated configuration with each profile resolved to its plugins."""

    model: BerthConfiguration
    profiles: dict[str, ResolvedProfile]


def parse_config(data: Any) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["<root>: must be a mapping (a BerthConfiguration object)"])
    try:
        model = BerthConfiguration.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    profiles: dict[str, ResolvedProfile] = {}
    problems: list[str] = []
    for i, profile in enumerate(model.profiles):
        try:
            resolved = resolve_profile(profile, where=f"profiles[{i}]")
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if resolved.percentage_of_nodes_to_score is None:
            resolved.percentage_of_nodes_to_score = model.percentageOfNodesToScore
        profiles[profile.schedulerName] = resolved
    if not problems:
        problems = check_metric_references(
            sources=model.metricSources,
            profiles=model.profiles,
            resolved_args={name: r.args for name, r in profiles.items()},
        )
    if not problems:
        problems = check_rebalance(
            model.rebalance,
            model.profiles,
            {name: r.args for name, r in profiles.items()},
        )
    if problems:
        raise ConfigError(problems)
    return Config(model=model, profiles=profiles)


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
    return parse_config(data)
