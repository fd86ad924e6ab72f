"""The shipped policies (checkpoints/<preset>.pt): small, and each loads into its own preset's
env and acts there with valid actions only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs import edge_cluster_v0
from tapfinger.checkpoint import network_from_checkpoint
from tapfinger.policies.learned import TapFingerPolicy

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "checkpoints").glob("*.pt"))


def test_every_paper_and_headroom_preset_ships_a_policy() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"paper_synthetic", "paper_hetero6", "testbed", "pollux_edge", "diverse_bursty"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_checkpoint_loads_and_acts_on_its_preset(path: Path) -> None:
    assert path.stat().st_size < 5 * 2**20
    env = edge_cluster_v0.parallel_env(path.stem, infos="full")
    policy = TapFingerPolicy(env, network=network_from_checkpoint(path, env))
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    for _ in range(20):
        actions = policy.act(obs, infos)
        for agent, action in actions.items():
            task = int(action[0])
            assert obs[agent]["task_mask"][task]
            if task:
                assert obs[agent]["cpu_mask"][task, action[1]]
                assert obs[agent]["gpu_mask"][task, action[2]]
        obs, _, _, _, infos = env.step(actions)
        assert all(i["invalid_actions"] == 0 for i in infos.values())
        if not env.agents:
            break
    assert np.isfinite([p.detach().sum().item() for p in policy.net.parameters()]).all()
