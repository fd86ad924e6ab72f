"""Every shipped experiment file loads, and the env reads the same scenario from it (DESIGN §6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envs import edge_cluster_v0
from envs.scenario import load_scenario
from tapfinger.config import config_to_dict, load_config
from tests import ROOT

CONFIG_FILES = sorted((ROOT / "configs").glob("*.yaml"))


def test_the_presets_are_there() -> None:
    names = {p.stem for p in CONFIG_FILES}
    assert {"quickstart", "smoke", "paper_synthetic", "paper_hetero6", "testbed"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_every_config_loads_and_the_env_reads_the_same_scenario(path: Path) -> None:
    cfg = load_config(path)
    assert cfg == load_config(path.stem)  # the file and the preset name are one experiment
    assert cfg.scenario.name == path.stem
    assert load_scenario(path.stem) == cfg.scenario == load_scenario(str(path))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_the_resolved_config_reads_back_as_itself(path: Path, tmp_path: Path) -> None:
    """What every run and evaluation saves (``config.yaml``) is the same experiment again."""
    cfg = load_config(path)
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    assert load_config(saved) == cfg


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_every_preset_builds_its_env(path: Path) -> None:
    env = edge_cluster_v0.parallel_env(path.stem, infos="full")
    assert env.scenario == load_config(path).scenario
    assert len(env.possible_agents) == env.scenario.num_clusters
