"""`sjf`: shortest job first, each at the allocation that finishes it soonest (an oracle).

Source: shortest-job-first / shortest-remaining-processing-time scheduling, which minimises the
mean completion time on one server when sizes are known (Schrage, "A proof of the optimality of
the shortest remaining processing time discipline", Operations Research, 1968); GPU-cluster
papers use it as the clairvoyant reference (Tiresias, NSDI 2019, compares against SRTF/SRSF).

It reads every waiting task's true remaining work and the true speed model: facts a real
scheduler is not told, so it is an ORACLE (registered with ``oracle=True``) except where the
information regime tells both to every policy (``information: profiled`` with ``work_known:
true``). Elsewhere it needs ``oracle_infos: true`` (evaluation sets it for oracles only).

Adaptation: all clusters are scheduled together. A task's expected work is the number of slots
it needs at its best allocation on the largest cluster that can see it; waiting tasks start in
increasing order of it (ties by arrival). On each cluster of its pending windows a task gets the
allocation that minimises ``slots x (1 + q x share)``, where ``slots`` is its completion time
there, ``share`` the allocation's dominant share of the cluster and ``q`` the number of tasks
waiting behind it in that cluster's window (later in SJF order): its own completion time plus
the delay its resource-time imposes on the queue. With an empty queue that is the allocation
that finishes it soonest; under load it starts tasks small so that many run at once. Ties go to
the smallest allocation (fewest CPU and GPU shares). The task starts on the cluster with the
lowest such cost, then the soonest finish, then the roomiest. ``alloc="fastest"`` ignores the
queue (``q = 0``: plain soonest finish), which starves the queue when the system is overloaded
(testbed preset: 87 vs 57 mean JCT over 3 seeds). Non-preemptive: running tasks are never
resized, also in elastic mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.errors import ConfigError
from tapfinger.policies.base import BaselinePolicy, check_choice
from tapfinger.policies.plan import Plan, free_score
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import CPU, GPU, Snapshot, TaskView


class SlotsTable:
    """Oracle: slots to finish a task from every allocation, exactly as the simulator runs it."""

    def __init__(self, speed: Any) -> None:
        self.speed = speed
        self.cache: dict[tuple[int, float, float], np.ndarray] = {}

    def slots(self, type_: int, work: float, done: float) -> np.ndarray:
        """float [cpu_levels, gpu_levels]: slots to finish (inf where the rate is 0)."""
        key = (type_, round(work, 12), round(done, 12))
        table = self.cache.get(key)
        if table is not None:
            return table
        base = self.speed.base[type_]
        remaining = work - done
        with np.errstate(divide="ignore", invalid="ignore"):
            if not self.speed.sqrt_decay[type_]:
                table = np.where(base > 0, np.ceil(remaining / base - 1e-9), np.inf)
                table = np.maximum(table, 1.0)
            else:
                table = np.full(base.shape, np.inf)
                progress = np.full(base.shape, float(done))
                live = base > 0
                steps = 0
                while live.any() and steps < 100_000:
                    steps += 1
                    rate = base * np.sqrt(np.maximum(1.2 - progress / work, 0.0))
                    progress = np.where(live, progress + rate, progress)
                    finished = live & (progress >= work - 1e-9)
                    table[finished] = steps
                    live &= ~finished
                    if steps > 10_000 and not (rate[live] > 0).any():
                        break
        self.cache[key] = table
        return table


@register("sjf", oracle=True)
class SjfPolicy(BaselinePolicy):
    """Oracle shortest-expected-work first, soonest-finishing allocation."""

    def __init__(self, env: Any, seed: int = 0, alloc: str = "queue") -> None:
        super().__init__(env, seed)
        self.alloc = check_choice("alloc", alloc, ("queue", "fastest"))
        self.table: SlotsTable | None = None

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.table = None

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        if infos and self.table is None:
            self.table = SlotsTable(self.oracle_speed(infos))
        return super().act(observations, infos)

    def _table(self, tv: TaskView) -> np.ndarray:
        assert self.table is not None
        if not np.isfinite(tv.oracle_work):
            raise ConfigError(
                "policy 'sjf' reads the true remaining work: it needs scenario.work_known=true "
                "or scenario.oracle_infos=true"
            )
        return self.table.slots(tv.type, tv.done + tv.oracle_work, tv.done)

    def best(
        self, tv: TaskView, hi_cpu: int, hi_gpu: int, capacity: np.ndarray, queue: int
    ) -> tuple[float, float, int, int] | None:
        """(cost, slots, cpu, gpu) of the best allocation within the box (None: nothing fits).

        cost = slots x (1 + queue x dominant share of ``capacity``); ties go to the allocation
        with the fewest CPU and GPU shares.
        """
        mc, mg = int(tv.min_demand[CPU]), int(tv.min_demand[GPU])
        hc, hg = min(hi_cpu, int(tv.cap[CPU])), min(hi_gpu, int(tv.cap[GPU]))
        table = self._table(tv)
        hc, hg = min(hc, table.shape[0] - 1), min(hg, table.shape[1] - 1)
        if hc < mc or hg < mg:
            return None
        slots = table[mc : hc + 1, mg : hg + 1]
        cs = np.arange(mc, hc + 1)[:, None] / max(int(capacity[CPU]), 1)
        gs = np.arange(mg, hg + 1)[None, :] / max(int(capacity[GPU]), 1)
        cost = slots * (1.0 + queue * np.maximum(cs, gs))
        best = float(cost.min())
        if not np.isfinite(best):
            return None
        cells = np.argwhere(cost <= best * (1 + 1e-12))
        size = cells[:, 0] / max(hc, 1) + cells[:, 1] / max(hg, 1)
        c, g = cells[int(np.argmin(size))]
        return best, float(slots[c, g]), mc + int(c), mg + int(g)

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        plan = Plan(snap)
        keyed = []
        for tv in snap.pending.values():
            sizes = [
                self.best(tv, *snap.capacity[c, :2].tolist(), snap.capacity[c], 0) for c in tv.where
            ]
            sizes = [b[1] for b in sizes if b is not None]
            keyed.append((min(sizes) if sizes else np.inf, tv.arrival, tv.task, tv))
        keyed.sort(key=lambda k: k[:3])
        # Waiting tasks in each cluster's window not yet placed: the queue behind a start.
        queue = np.zeros(snap.n, dtype=np.int64)
        for tv in snap.pending.values():
            for c in tv.where:
                queue[c] += 1
        for _, _, _, tv in keyed:
            for c in tv.where:
                queue[c] -= 1
            choice = None
            for c in sorted(tv.where):
                if plan.max_alloc(c, tv) is None:
                    continue
                q = int(queue[c]) if self.alloc == "queue" else 0
                b = self.best(
                    tv, int(plan.free[c, CPU]), int(plan.free[c, GPU]), snap.capacity[c], q
                )
                if b is None:
                    continue
                key = (b[0], b[1], -free_score(plan, c, b[2], b[3]))
                if choice is None or key < choice[0]:
                    choice = (key, c, b[2], b[3])
            if choice is not None:
                plan.start(choice[1], tv, choice[2], choice[3])
        return plan
