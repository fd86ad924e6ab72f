"""Rollout workers: worker processes collect what the learner would, deterministically given N.

Two workers split the smoke config's envs; their merged rollout has the inline rollout's shapes
and bookkeeping, every episode gets its own seed from its env's stream, and two runs with the
same seed and N are identical, before and after a PPO update (weights reach the workers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tapfinger.collectors import ProcessCollector, env_seed, split_envs
from tapfinger.config import load_config
from tapfinger.training import Trainer
from tests.tapfinger.algorithms.test_mappo import SMOKE


def test_split_envs_and_seed_streams() -> None:
    assert split_envs(8, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert split_envs(5, 3) == [[0, 1], [2], [3, 4]]
    seeds = {env_seed(100, e, 4, k) for e in range(4) for k in range(50)}
    assert len(seeds) == 200  # no two (env, episode) share a seed


def two_iterations(tmp: Path, workers: int) -> list:
    cfg = load_config(SMOKE, [f"train.rollout_workers={workers}", "train.num_envs=4"])
    trainer = Trainer(cfg, tmp, torch.device("cpu"), show_progress=False)
    collector = trainer._collector()
    collector.start()
    out = []
    try:
        for _ in range(2):
            col = trainer.collect(collector)
            trainer.update(col.rollout, col.last_value)
            trainer.iteration += 1
            out.append(col)
    finally:
        collector.close()
        trainer.writer.close()
    assert isinstance(collector, ProcessCollector) == (workers > 0)
    return out, trainer


def test_two_workers_are_deterministic_and_shaped_like_inline(tmp_path: Path) -> None:
    inline, t0 = two_iterations(tmp_path / "inline", 0)
    first, t1 = two_iterations(tmp_path / "a", 2)
    second, _ = two_iterations(tmp_path / "b", 2)
    tc = t1.cfg.train
    streams = tc.num_envs * len(t1.agents)
    for a, b, c in zip(first, second, inline):
        assert a.steps == c.steps == tc.num_envs * tc.rollout_steps
        assert len(a.rollout.obs) == len(c.rollout.obs) == tc.rollout_steps
        assert a.last_value.shape == c.last_value.shape == (streams,)
        fa, fb, fc = a.rollout.flat(), b.rollout.flat(), c.rollout.flat()
        assert fa.keys() == fc.keys()
        for k in fa:
            assert fa[k].shape == fc[k].shape, k
            np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
        np.testing.assert_array_equal(a.last_value, b.last_value)
    # The second iteration ran on the updated weights, in the workers too.
    assert not np.array_equal(first[0].rollout.flat()["logp"], first[1].rollout.flat()["logp"])
    assert t1.global_step == t0.global_step == 2 * tc.num_envs * tc.rollout_steps
    assert sum(t1.env_episodes) >= tc.num_envs  # every env began an episode


def test_a_training_run_with_workers_checkpoints_and_resumes(tmp_path: Path) -> None:
    overrides = ["train.rollout_workers=2", "train.num_envs=2", "train.eval_episodes=1"]
    cfg = load_config(SMOKE, overrides)
    steps = cfg.train.num_envs * cfg.train.rollout_steps
    cfg.train.total_steps = steps
    Trainer(cfg, tmp_path, torch.device("cpu"), show_progress=False).train()
    ckpt = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    episodes = ckpt["counters"]["env_episodes"]
    assert len(episodes) == 2 and min(episodes) >= 1
    cfg.train.total_steps = 2 * steps
    resumed = Trainer(cfg, tmp_path, torch.device("cpu"), resume=True, show_progress=False)
    assert resumed.env_episodes == episodes
    summary = resumed.train()
    assert summary["global_step"] == 2 * steps
    after = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert all(b > a for a, b in zip(episodes, after["counters"]["env_episodes"]))
