"""Load and validate config/*.yaml at startup."""

from ivr.config.decision_tree import DecisionTree, load_decision_tree
from ivr.config.errors import ConfigError
from ivr.config.loader import BridgelineConfig, load_config
from ivr.config.program import ProgramConfig, load_program
from ivr.config.roster import Roster, load_roster

__all__ = [
    "BridgelineConfig",
    "ConfigError",
    "DecisionTree",
    "ProgramConfig",
    "Roster",
    "load_config",
    "load_decision_tree",
    "load_program",
    "load_roster",
]
