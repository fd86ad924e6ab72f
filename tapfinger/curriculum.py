"""The curriculum lever (``train.curriculum_tasks``, DESIGN §5.3.1): training episodes grow
through the given lengths in equal shares of ``train.total_steps`` (e.g. ``[48, 96, 192]``: the
first third of training plays 48-task episodes, then 96, then 192). For a synthetic workload
the length is ``num_tasks``; for a replayed trace, ``trace_window``. Only the training envs
change: the held-out and test evaluations play the scenario as configured.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tapfinger.config import TrainConfig


def curriculum_length(tc: TrainConfig, progress: float) -> int | None:
    """The episode length at ``progress`` (global step / total steps), or None without one."""
    stages = tc.curriculum_tasks
    if not stages:
        return None
    return int(stages[min(int(max(progress, 0.0) * len(stages)), len(stages) - 1)])


def apply_curriculum(env: Any, length: int | None) -> None:
    """Set ``env``'s next episodes to ``length`` tasks (a no-op for None or the same length)."""
    if length is None:
        return
    key = "trace_window" if env.scenario.trace is not None else "num_tasks"
    if getattr(env.scenario, key) != length:
        env.scenario = dataclasses.replace(env.scenario, **{key: length})


__all__ = ["apply_curriculum", "curriculum_length"]
