"""Load and validate config/*.yaml at startup."""

from ivr.config.errors import ConfigError
from ivr.config.loader import BridgelineConfig, load_config

__all__ = ["BridgelineConfig", "ConfigError", "load_config"]
