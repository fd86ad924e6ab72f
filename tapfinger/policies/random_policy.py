"""`random`: the paper's floor: a uniformly random valid pending task and a random feasible
allocation (TapFinger, arXiv 2302.00571 §VI, "Random" baseline).

Adaptation: agents are served in a seeded random order and a task already claimed by an earlier
agent in the same round is excluded, so the floor does not waste rounds on conflicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.policies.base import register


@register("random")
class RandomPolicy:
    """Random valid task (or the no-op, with the same chance as any task) and random amounts."""

    name = "random"

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        claimed: set[int] = set()
        actions = {}
        agents = list(observations)
        for i in self.rng.permutation(len(agents)):
            agent = agents[i]
            obs = observations[agent]
            index = infos[agent]["task_index"] if infos is not None else None
            valid = np.flatnonzero(obs["task_mask"])
            if index is not None:
                valid = np.array([v for v in valid if v == 0 or int(index[v]) not in claimed])
            task = int(self.rng.choice(valid))
            cpu = int(self.rng.choice(np.flatnonzero(obs["cpu_mask"][task])))
            gpu = int(self.rng.choice(np.flatnonzero(obs["gpu_mask"][task])))
            if index is not None and task > 0:
                claimed.add(int(index[task]))
            a = np.zeros(3 * self.env.dims.max_starts, dtype=np.int64)
            a[:3] = (task, cpu, gpu)
            actions[agent] = a
        return actions
