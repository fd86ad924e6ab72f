"""The world: edge-cluster simulator, workloads, speed models and the PettingZoo environment.

Nothing in this package imports torch.
"""

from envs import edge_cluster_v0
from envs.errors import ConfigError, InputError, TraceError
from envs.scenario import ScenarioConfig, load_scenario, preset_names

__all__ = [
    "ConfigError",
    "InputError",
    "ScenarioConfig",
    "TraceError",
    "edge_cluster_v0",
    "load_scenario",
    "preset_names",
]
