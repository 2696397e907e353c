"""Plugin name -> implementation and args model. Names are upstream's where upstream has one."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from berth.framework.plugin import Plugin


@dataclass(frozen=True, slots=True)
class PluginSpec:
    cls: type[Plugin]
    args_model: type[BaseModel] | None


_REGISTRY: dict[str, PluginSpec] = {}


def register(cls: type[Plugin], args_model: type[BaseModel] | None = None) -> None:
    if cls.name in _REGISTRY:
        raise ValueError(f"plugin {cls.name!r} registered twice")
    _REGISTRY[cls.name] = PluginSpec(cls, args_model)


def registry() -> dict[str, PluginSpec]:
    """All known plugins; importing `berth.plugins` fills this."""
    import berth.plugins  # noqa: F401  (registers the built-in plugins)

    return _REGISTRY
