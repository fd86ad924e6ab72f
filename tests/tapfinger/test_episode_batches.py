"""Whole episodes on shared arrivals and the input-dependent baseline, by hand and end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tapfinger.config import load_config
from tapfinger.episode_batches import input_baseline, return_from, returns_by_slot
from tapfinger.training import Trainer
from tests.tapfinger.algorithms.test_mappo import SMOKE


def trajectory(rewards, slots, gamma=0.5) -> dict[str, np.ndarray]:
    r, s = np.asarray(rewards, float), np.asarray(slots, float)
    g, start = returns_by_slot(r, s, gamma)
    return {"rewards": r, "slots": s, "g": g, "start": start}


def test_returns_discount_per_slot_by_hand() -> None:
    # Step 0 ends slot 0 (reward -1), step 1 is a round inside slot 1, step 2 ends slots 1-2.
    tr = trajectory([-1.0, 0.0, -2.0], [1, 0, 2])
    np.testing.assert_allclose(tr["g"], [-1 + 0.5 * -2, -2.0, -2.0])
    np.testing.assert_allclose(tr["start"], [0, 1, 1])
    # Return-to-go from slots 0..3: inside step 2 (slots 1 and 2) half its reward has passed
    # by slot 2; after the episode (slot 3 on) nothing is left.
    got = return_from(
        np.array([0.0, 1.0, 2.0, 3.0, 7.0]), tr["g"], tr["start"], tr["rewards"], tr["slots"]
    )
    np.testing.assert_allclose(got, [-2.0, -2.0, -1.0, 0.0, 0.0])


def test_baseline_is_the_other_rollouts_return_from_the_same_slot() -> None:
    a = trajectory([-1.0, -1.0, -1.0], [1, 1, 1], gamma=1.0)  # 3 slots
    b = trajectory([-2.0, -2.0], [1, 1], gamma=1.0)  # 2 slots, costlier
    c = trajectory([-1.0, -1.0, -1.0], [1, 1, 1], gamma=1.0)
    base = input_baseline([a, b, c])
    # a's steps begin at slots 0, 1, 2: b's returns from there are -4, -2, 0; c's -3, -2, -1.
    np.testing.assert_allclose(base[0], [(-4 - 3) / 2, (-2 - 2) / 2, (0 - 1) / 2])
    np.testing.assert_allclose(base[1], [(-3 - 3) / 2, (-2 - 2) / 2])
    # Identical rollouts: every advantage is zero; a lone rollout has no baseline.
    same = input_baseline([a, c])
    np.testing.assert_allclose(a["g"] - same[0], 0.0)
    np.testing.assert_allclose(input_baseline([a])[0], 0.0)


@pytest.mark.parametrize("workers", [0, 2])
def test_groups_play_one_arrival_sequence_and_cover_every_step(tmp_path: Path, workers) -> None:
    cfg = load_config(
        SMOKE, ["train.same_arrivals=2", "train.num_envs=4", f"train.rollout_workers={workers}"]
    )
    trainer = Trainer(cfg, tmp_path, torch.device("cpu"), show_progress=False)
    collector = trainer._collector()
    collector.start()
    try:
        col = trainer.collect(collector)
        stats, _, ret = trainer.update(
            col.rollout, col.last_value, given=(col.advantages, col.returns)
        )
    finally:
        collector.close()
        trainer.writer.close()
    flat = col.rollout.flat()
    n = len(trainer.agents)
    assert len(col.advantages) == len(col.returns) == len(flat["logp"]) == col.steps * n
    assert len(col.finished) == 4  # one whole episode per env
    assert np.isfinite(col.advantages).all() and np.isfinite(list(stats.values())).all()
    # The first observation of the two envs of a group is the same arrival sequence's.
    first = col.rollout.obs[0]
    for key in ("pending", "pending_mask", "clusters"):
        np.testing.assert_array_equal(first[key][:n], first[key][n : 2 * n], err_msg=key)
    assert not np.array_equal(first["pending"][:n], first["pending"][2 * n : 3 * n])
    # Both envs' returns start at the whole episode's cost: -(sum of JCTs) x reward scale.
    tasks = [e["tasks"] for e in col.finished]
    assert all(t == tasks[0] for t in tasks)
    assert (ret <= 0).all()
