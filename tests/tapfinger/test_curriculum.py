"""The curriculum lever: training episodes grow through the given lengths in equal shares of
the budget, in the learner's process and in rollout workers alike; evaluation is untouched."""

from __future__ import annotations

import pytest
import torch

from envs import ConfigError
from tapfinger.config import TrainConfig, load_config
from tapfinger.curriculum import curriculum_length
from tapfinger.training import Trainer
from tests.tapfinger.algorithms.test_mappo import SMOKE


def test_lengths_by_progress():
    tc = TrainConfig(curriculum_tasks=[48, 96, 192])
    assert [curriculum_length(tc, p) for p in (0.0, 0.33, 0.34, 0.67, 0.99, 1.0, 1.5)] == [
        48,
        48,
        96,
        192,
        192,
        192,
        192,
    ]
    assert curriculum_length(TrainConfig(), 0.5) is None
    with pytest.raises(ConfigError, match="curriculum_tasks: lengths must be >= 1"):
        load_config(SMOKE, ["train.curriculum_tasks=[0, 4]"])


@pytest.mark.parametrize("workers", [0, 1])
def test_training_episodes_follow_the_curriculum(tmp_path, workers):
    overrides = [
        "train.curriculum_tasks=[3, 6]",
        f"train.rollout_workers={workers}",
        "train.num_envs=2",
        "train.rollout_steps=48",
    ]
    cfg = load_config(SMOKE, overrides)
    cfg.train.total_steps = 4 * cfg.train.num_envs * cfg.train.rollout_steps
    trainer = Trainer(cfg, tmp_path, torch.device("cpu"), show_progress=False)
    collector = trainer._collector()
    collector.start()
    lengths = []
    try:
        for _ in range(4):
            col = trainer.collect(collector)
            lengths.append(sorted({int(f["tasks"]) for f in col.finished}))
            trainer.iteration += 1
    finally:
        collector.close()
        trainer.writer.close()
    # Episodes begun in the first half have 3 tasks; those begun in the second, 6.
    assert lengths[0] == [3] and lengths[-1] == [6]
    assert trainer.eval_env.scenario.num_tasks == 12  # the held-out evaluation as configured
