"""`tetris`: multi-resource packing: the task whose demand best aligns with the free resources.

Source: Grandl et al., "Multi-Resource Packing for Cluster Schedulers", SIGCOMM 2014: for
every (task, machine) pair that fits, the alignment score is the dot product of the task's peak
demand vector and the machine's free-resource vector (both normalised by the machine's
capacity); to cut completion time it adds a shortest-remaining-time term, weighted so that the
two are of comparable size, and places the pair with the highest combined score, repeatedly,
until nothing fits. Durations are estimated from earlier runs of the same kind of task.

Adaptation: the demand vector is the task type's minimum demand (the peak demand Tetris
allocates; Tetris does not resize). The duration of a waiting task is estimated from the
progress observed on running tasks of its type at their minimum demand (``running_progress``
over ``running_run_slots`` in the infos, no oracle), or from its type's mean observed speed;
types never seen yet get the longest estimate so far. The score of a pair is
``alignment / max alignment + srpt x (1 - duration / max duration)`` over the feasible pairs
(``srpt=1`` by default). Tasks are packed pair by pair, across all clusters at once.
Non-preemptive: running tasks are never resized, also in elastic mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.policies.base import BaselinePolicy
from tapfinger.policies.plan import Plan
from tapfinger.policies.rates import RateTracker
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import CPU, GPU, MEM, Snapshot, TaskView


@register("tetris")
class TetrisPolicy(BaselinePolicy):
    """Alignment packing with a shortest-remaining-time term, minimum-demand allocations."""

    def __init__(self, env: Any, seed: int = 0, srpt: float = 1.0) -> None:
        super().__init__(env, seed)
        self.srpt = float(srpt)
        self.tracker = RateTracker()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.tracker = RateTracker()

    def observe(self, snap: Snapshot) -> None:
        self.tracker.update(snap)

    def duration(self, tv: TaskView) -> float | None:
        """Estimated slots to finish at the minimum demand, from observed speeds (None: unknown)."""
        rate = self.tracker.rate(tv.type, (int(tv.min_demand[CPU]), int(tv.min_demand[GPU])))
        if rate is None:
            rate = self.tracker.mean_rate(tv.type)
        if rate is None or rate <= 0:
            return None
        return (1.0 - tv.progress) / rate

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        plan = Plan(snap)
        tasks = list(snap.pending.values())
        durations = [self.duration(tv) for tv in tasks]
        known = [d for d in durations if d is not None]
        longest = max(known) if known else 1.0
        dur = np.array([longest if d is None else d for d in durations])
        srpt_score = 1.0 - dur / max(longest, 1e-9) if known else np.zeros(len(tasks))
        cap = np.maximum(snap.capacity, 1).astype(float)
        left = list(range(len(tasks)))
        while left:
            pairs = []
            for i in left:
                tv = tasks[i]
                mn = tv.min_demand
                for c in sorted(tv.where):
                    if not plan.fits(c, tv, int(mn[CPU]), int(mn[GPU])):
                        continue
                    kinds = [CPU, GPU, MEM] if snap.capacity[c, MEM] > 0 else [CPU, GPU]
                    norm = cap[c, kinds]
                    align = float(np.dot(mn[kinds] / norm, plan.free[c, kinds] / norm))
                    pairs.append((align, i, c))
            if not pairs:
                break
            # Alignment normalised over this step's feasible pairs, plus the SRPT term.
            top = max(a for a, _, _ in pairs) or 1.0
            _, i, c = max(
                ((a / top + self.srpt * srpt_score[i], -tasks[i].task, -c), i, c)
                for a, i, c in pairs
            )
            tv = tasks[i]
            plan.start(c, tv, int(tv.min_demand[CPU]), int(tv.min_demand[GPU]))
            left.remove(i)
        return plan
