"""Rollout workers as Ray actors: the same rollouts as worker processes, a killed worker rebuilt
with its rollout redone (the run identical to an undisturbed one), valid checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from envs.errors import ConfigError
from tapfinger.config import load_config
from tapfinger.training import Trainer
from tests.tapfinger.algorithms.test_mappo import SMOKE


def rollouts(tmp: Path, overrides: list[str], iterations: int = 2, kill_after: int | None = None):
    """The collected rollouts of ``iterations`` PPO iterations; optionally kill worker 1's
    actor after iteration ``kill_after``."""
    cfg = load_config(SMOKE, ["train.num_envs=4", "train.rollout_workers=2", *overrides])
    trainer = Trainer(cfg, tmp, torch.device("cpu"), show_progress=False)
    collector = trainer._collector()
    collector.start()
    out = []
    try:
        for i in range(iterations):
            col = trainer.collect(collector)
            trainer.update(
                col.rollout,
                col.last_value,
                given=(col.advantages, col.returns) if col.advantages is not None else None,
            )
            trainer.iteration += 1
            out.append(col)
            if kill_after == i:
                import ray

                ray.kill(collector.actors[1], no_restart=True)
    finally:
        collector.close()
        trainer.writer.close()
    return out, collector


def same(a, b) -> None:
    fa, fb = a.rollout.flat(), b.rollout.flat()
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_ray_actors_collect_what_worker_processes_collect(local_ray, tmp_path):
    on_ray, collector = rollouts(tmp_path / "ray", ["train.ray_address=local"])
    in_processes, _ = rollouts(tmp_path / "proc", [])
    assert type(collector).__name__ == "RayCollector"
    for a, b in zip(on_ray, in_processes):
        same(a, b)
        np.testing.assert_array_equal(a.last_value, b.last_value)


def test_a_killed_worker_is_rebuilt_and_its_rollout_redone(local_ray, tmp_path):
    whole = ["train.ray_address=local", "train.same_arrivals=2", "train.critic_warmup=0"]
    undisturbed, _ = rollouts(tmp_path / "a", whole, iterations=3)
    killed, collector = rollouts(tmp_path / "b", whole, iterations=3, kill_after=0)
    assert collector.restarts == [0, 1]
    for a, b in zip(undisturbed, killed):
        same(a, b)
        np.testing.assert_array_equal(a.advantages, b.advantages)


def test_a_training_run_on_ray_checkpoints_and_resumes(local_ray, tmp_path):
    overrides = ["train.rollout_workers=2", "train.num_envs=2", "train.eval_episodes=1"]
    cfg = load_config(SMOKE, [*overrides, "train.ray_address=local", "train.overlap=true"])
    steps = cfg.train.num_envs * cfg.train.rollout_steps
    cfg.train.total_steps = 2 * steps
    Trainer(cfg, tmp_path, torch.device("cpu"), show_progress=False).train()
    ckpt = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["counters"]["global_step"] == 2 * steps
    cfg.train.total_steps = 3 * steps
    resumed = Trainer(cfg, tmp_path, torch.device("cpu"), resume=True, show_progress=False)
    assert resumed.env_episodes == ckpt["counters"]["env_episodes"]
    resumed.train()
    assert (
        torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)["counters"][
            "global_step"
        ]
        == 3 * steps
    )


def test_ray_address_needs_rollout_workers():
    with pytest.raises(ConfigError, match="train.ray_address: needs train.rollout_workers >= 1"):
        load_config(SMOKE, ["train.ray_address=local"])
