"""`tetris`: multi-resource packing: the task whose demand best aligns with the free resources.

Source: Grandl et al., "Multi-Resource Packing for Cluster Schedulers", SIGCOMM 2014: for
every (task, machine) pair that fits, the alignment score is the dot product of the task's peak
demand vector and the machine's free-resource vector (both normalised by the machine's
capacity); to cut completion time it adds a shortest-remaining-time term, weighted so that the
two are of comparable size, and places the pair with the highest combined score, repeatedly,
until nothing fits. Durations are estimated from earlier runs of the same kind of task.

Adaptation: Tetris packs each task at its peak demand and never resizes it. The demand packed
is the task's request, its minimum demand (``demand="min"``, default: the Alibaba importer reads
a pod's requests as its minimum demand, and Kubernetes schedules on requests, the limits being
the cap); ``demand="cap"`` packs the cap within the cluster's capacity instead, which leaves one
task per cluster (20 training-range seeds 1000000-1000019: 48.8 vs 15.4 mean JCT on
paper_synthetic, 53.7 vs 25.3 on paper_hetero6, 340.0 vs 68.9 on testbed). Placement is the
source's own: the alignment score picks the cluster with the task, and because both vectors are
normalised by the cluster's capacity it prefers the cluster where the task takes the largest
share, so it keeps large clusters for large tasks without a ``placement`` option (Alibaba
replay: 171.4 mean JCT, lower bound 159.0).

The duration of a waiting task is its type's mean finished work (:class:`~.rates.WorkHistory`,
no oracle) over the work per slot observed on running tasks of its type at its demand (or at
any allocation); types never seen yet get the longest estimate so far. What a regime tells
replaces the estimate (as the source uses the durations it has): under ``information:
profiled`` the slots at the packed allocation come from the told speed table (exactly as the
simulator runs a task of that work, :class:`~.sjf.SlotsTable`), under ``work_known: true`` the
work is the told one. The rates and finished works seen are kept across episodes
(``history``), warm in evaluation. The score of a pair is
``alignment / max alignment + srpt x (1 - duration / max duration)`` over the feasible pairs
(``srpt=1`` by default). Tasks are packed pair by pair, across all clusters at once.
Non-preemptive: running tasks are never resized, also in elastic mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.policies.base import BaselinePolicy, check_choice
from tapfinger.policies.plan import Plan
from tapfinger.policies.rates import RateTracker, WorkHistory
from tapfinger.policies.registry import register
from tapfinger.policies.sjf import SlotsTable
from tapfinger.policies.snapshot import CPU, GPU, MEM, Snapshot, TaskView


@register("tetris")
class TetrisPolicy(BaselinePolicy):
    """Alignment packing with a shortest-remaining-time term, at a fixed demand per task."""

    history = ("tracker", "works")

    def __init__(self, env: Any, seed: int = 0, srpt: float = 1.0, demand: str = "min") -> None:
        super().__init__(env, seed)
        self.srpt = float(srpt)
        self.demand = check_choice("demand", demand, ("min", "cap"))
        self.work_known = bool(env.scenario.work_known)
        self.table: SlotsTable | None = None
        """Slots to finish per allocation, from the told speed table (``profiled`` only)."""

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        if self.table is None and (speed := self.told_speed(infos)) is not None:
            self.table = SlotsTable(speed)
        return super().act(observations, infos)

    def fresh_history(self) -> None:
        self.tracker = RateTracker()
        self.works = WorkHistory()

    def observe(self, snap: Snapshot) -> None:
        self.tracker.update(snap)
        self.works.update(snap)

    def peak(self, snap: Snapshot, c: int, tv: TaskView) -> tuple[int, int]:
        """The (cpu, gpu) Tetris packs for ``tv`` on cluster ``c``: its minimum demand, or with
        ``demand="cap"`` its cap within the cluster's capacity."""
        mn = tv.min_demand
        if self.demand == "min":
            return int(mn[CPU]), int(mn[GPU])
        cap = np.maximum(np.minimum(tv.cap, snap.capacity[c, :2]), mn[:2])
        return int(cap[CPU]), int(cap[GPU])

    def duration(self, tv: TaskView, alloc: tuple[int, int]) -> float | None:
        """Estimated slots to finish at ``alloc``, from observed speeds (None: unknown).

        The task has not run (Tetris never pauses), so its whole work is left: its type's mean
        finished work (:class:`~.rates.WorkHistory`) over the observed work per slot of its type
        at ``alloc``, else over its type's mean observed rate.
        """
        work = float(tv.oracle_work) if self.work_known else self.works.mean(tv.type)
        if self.table is not None:
            return float(self.table.slots(tv.type, tv.done + work, tv.done)[alloc])
        rate = self.tracker.rate(tv.type, alloc)
        if rate is None:
            rate = self.tracker.mean_rate(tv.type)
        if rate is None or rate <= 0:
            return None
        return work / rate

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        plan = Plan(snap)
        tasks = list(snap.pending.values())
        peaks = [{c: self.peak(snap, c, tv) for c in sorted(tv.where)} for tv in tasks]
        durations = {
            (i, c): self.duration(tasks[i], a) for i, by in enumerate(peaks) for c, a in by.items()
        }
        known = [d for d in durations.values() if d is not None]
        longest = max(known) if known else 1.0
        srpt_score = {
            k: (1.0 - (longest if d is None else d) / max(longest, 1e-9)) if known else 0.0
            for k, d in durations.items()
        }
        cap = np.maximum(snap.capacity, 1).astype(float)
        left = list(range(len(tasks)))
        while left:
            pairs = []
            for i in left:
                tv = tasks[i]
                for c, (cpu, gpu) in peaks[i].items():
                    if not plan.fits(c, tv, cpu, gpu):
                        continue
                    kinds = [CPU, GPU, MEM] if snap.capacity[c, MEM] > 0 else [CPU, GPU]
                    norm = cap[c, kinds]
                    vec = np.array([cpu, gpu, tv.min_demand[MEM]], dtype=float)[kinds]
                    align = float(np.dot(vec / norm, plan.free[c, kinds] / norm))
                    pairs.append((align, i, c))
            if not pairs:
                break
            # Alignment normalised over this step's feasible pairs, plus the SRPT term.
            top = max(a for a, _, _ in pairs) or 1.0
            _, i, c = max(
                ((a / top + self.srpt * srpt_score[i, c], -tasks[i].task, -c), i, c)
                for a, i, c in pairs
            )
            plan.start(c, tasks[i], *peaks[i][c])
            left.remove(i)
        return plan
