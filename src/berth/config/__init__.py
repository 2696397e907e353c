"""Configuration: the BerthConfiguration model, its loader and plugin resolution."""

from berth.config.errors import ConfigError
from berth.config.loader import Config, load_config, parse_config

__all__ = ["Config", "ConfigError", "load_config", "parse_config"]
