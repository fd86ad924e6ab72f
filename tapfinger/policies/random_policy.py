"""`random`: the paper's floor: a random pending task with a random feasible allocation.

Source: TapFinger (Li et al., INFOCOM 2023; arXiv 2302.00571 §VI) "Random" baseline, whose
official code (``random_select_random_allocate``) makes every agent pick a uniformly random task
of its pending window and a uniformly random allocation its resources allow.

Adaptation: agents are served in a seeded random order and a task claimed by an earlier agent in
the same round is excluded for later ones (the official code drops the later agent's pick
instead), so the floor wastes no rounds on conflicts. A task is drawn among those whose minimum
demand fits, then CPU and GPU uniformly among the feasible amounts; with ``noop=True`` the no-op
is one more choice, drawn as often as any task. In multi-task mode an agent draws up to
``max_starts`` tasks in a row. Running tasks are never resized.
"""

from __future__ import annotations

from typing import Any

from tapfinger.policies.base import BaselinePolicy
from tapfinger.policies.plan import Plan
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import CPU, GPU, Snapshot, TaskView


class RandomStarts(BaselinePolicy):
    """Random task per agent; subclasses choose the allocation."""

    def __init__(self, env: Any, seed: int = 0, noop: bool = False) -> None:
        super().__init__(env, seed)
        self.noop = bool(noop)

    def allocation(self, plan: Plan, c: int, tv: TaskView) -> tuple[int, int]:
        raise NotImplementedError

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        plan = Plan(snap)
        windows: list[list[TaskView]] = [[] for _ in range(snap.n)]
        for tv in snap.pending.values():
            for c in tv.where:
                windows[c].append(tv)
        for c in self.rng.permutation(snap.n).tolist():
            if snap.agents[c] not in observations:
                continue
            for _ in range(self.dims.max_starts):
                valid = [
                    tv
                    for tv in windows[c]
                    if plan.fits(c, tv, int(tv.min_demand[CPU]), int(tv.min_demand[GPU]))
                ]
                if not valid:
                    break
                pick = int(self.rng.integers(len(valid) + (1 if self.noop else 0)))
                if pick == len(valid):
                    break
                tv = valid[pick]
                cpu, gpu = self.allocation(plan, c, tv)
                plan.start(c, tv, cpu, gpu)
        return plan


@register("random")
class RandomPolicy(RandomStarts):
    """Random valid task and uniformly random feasible CPU and GPU amounts."""

    def allocation(self, plan: Plan, c: int, tv: TaskView) -> tuple[int, int]:
        hi = plan.max_alloc(c, tv)
        assert hi is not None
        cpu = int(self.rng.integers(int(tv.min_demand[CPU]), hi[0] + 1))
        gpu = int(self.rng.integers(int(tv.min_demand[GPU]), hi[1] + 1))
        return cpu, gpu
