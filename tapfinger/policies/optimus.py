"""`optimus`: a speed model fitted online per task type, resources by greatest marginal gain.

Source: Peng et al., "Optimus: An Efficient Dynamic Resource Scheduler for Deep Learning
Clusters", EuroSys 2018: Optimus fits each job's training speed as a function of its
resources (non-negative least squares on the speeds it observes), estimates the remaining time,
starts every admitted job at a minimal allocation and then repeatedly gives the next unit of
resource to the job whose estimated remaining time drops the most, until no unit helps; it
re-runs this allocation periodically, resizing running jobs. TapFinger (arXiv 2302.00571 §VI)
compares against it in elastic form.

Adaptation:

- Speed model: one model per task type (not per task), fitted by NNLS to the work the
  running tasks gain (``infos["running_done"]`` between slots at ``running_alloc``), with
  Optimus's sync-training model of slots per work plus an Amdahl CPU term
  (:class:`~tapfinger.policies.optimus_fit.FittedSpeed`). An optimistic prior (linear speed-up from
  the minimum demand) stands in where there are no samples yet, so early tasks try large
  allocations and teach the model. Under ``information: profiled`` the true speed table
  (``infos["speed_model"]``: slots per work ``1 / rate`` at the start of a task) replaces the fit.
- Remaining work: Optimus estimates it from the job's convergence; here a task's work is unknown
  until it finishes, so the estimate is the mean residual work of the finished tasks of its type
  (:class:`~tapfinger.policies.rates.WorkHistory`: ``1 - done`` for a fixed work of 1); under
  ``work_known: true`` the told remaining work.
- History: the fit and the sizes seen are kept across episodes (``history``): evaluation warms
  them on training-range episodes and starts every test episode from that state. No oracle key
  is read.
- Admission: waiting tasks in increasing order of estimated remaining time at their minimum
  demand (ties by arrival), each on the cluster of its windows where its minimum fits (in
  elastic mode: where making room for it costs least), the roomiest among equals.
- Queue-aware objective: the greedy minimises, over the tasks of a cluster, the sum of
  ``estimated remaining slots x (1 + q x dominant share)``, where ``q`` is the number of tasks
  left waiting in the cluster's window plus ``reserve`` (expected newcomers): a task's own
  remaining time plus the delay its share of the cluster imposes on the tasks behind it.
  ``queue_aware=False`` sets ``q = 0``: Optimus's own greedy, under which one task takes a
  whole idle cluster and every later task must wait for it (non-preemptive) or pay switch
  penalties to shrink it.
- Elastic mode (``env.scenario.elastic``): every slot, from the current allocations, the greedy
  gives free units, or moves a unit from one task to another of the same cluster, whenever that
  lowers the objective by more than the switch penalty it costs (a resized running task loses
  ``switch_penalty`` of a slot's progress, i.e. that many slots); a waiting task may also take
  units above the minimum of running tasks when that costs less than its expected wait (the
  time until the first running task of the cluster finishes). Running tasks are never paused
  (Optimus does not preempt).
- Default (non-preemptive) mode: a started task keeps its allocation for life, so the greedy
  runs over the tasks starting now, from their minima, with free units only.

``make_policy("optimus", env)`` picks the variant from the env's mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.policies.base import BaselinePolicy
from tapfinger.policies.optimus_fit import FittedSpeed
from tapfinger.policies.plan import Plan, SlotTargets, plan_towards
from tapfinger.policies.rates import RateTracker, WorkHistory
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import CPU, GPU, MEM, Snapshot, TaskView


class Group:
    """The tasks sharing one cluster in a greedy allocation, as arrays."""

    def __init__(self, capacity: np.ndarray, pool: np.ndarray) -> None:
        self.capacity = capacity[:2].astype(np.int64)
        self.pool = pool[:2].astype(np.int64).copy()
        self.tasks: list[int] = []
        self.views: list[Any] = []
        rows: dict[str, list] = {k: [] for k in ("type", "alloc", "mn", "cap", "rem", "pen")}
        self._rows = rows

    def add(self, task: int, view: Any, type_: int, alloc, mn, cap, remaining, penalty) -> None:
        self.tasks.append(task)
        self.views.append(view)
        r = self._rows
        r["type"].append(type_)
        r["alloc"].append([int(alloc[0]), int(alloc[1])])
        r["mn"].append([int(mn[0]), int(mn[1])])
        r["cap"].append([int(min(cap[0], self.capacity[0])), int(min(cap[1], self.capacity[1]))])
        r["rem"].append(float(remaining))
        r["pen"].append(float(penalty))

    def arrays(self) -> None:
        r = self._rows
        self.type = np.asarray(r["type"], dtype=np.int64)
        self.alloc = np.asarray(r["alloc"], dtype=np.int64).reshape(-1, 2)
        self.orig = self.alloc.copy()
        self.mn = np.asarray(r["mn"], dtype=np.int64).reshape(-1, 2)
        self.cap = np.asarray(r["cap"], dtype=np.int64).reshape(-1, 2)
        self.rem = np.asarray(r["rem"], dtype=float)
        self.pen = np.asarray(r["pen"], dtype=float)


@register("optimus", elastic=True)
class OptimusPolicy(BaselinePolicy):
    """Online-fitted speed model, greedy marginal-gain allocation."""

    history = ("tracker", "model", "types", "table", "works")

    def __init__(
        self,
        env: Any,
        seed: int = 0,
        reserve: float = 1.0,
        queue_aware: bool = True,
        prior_slots: float = 1.0,
        min_gain: float = 1e-3,
    ) -> None:
        self.prior_slots = float(prior_slots)
        super().__init__(env, seed)
        self.reserve = float(reserve)
        self.queue_aware = bool(queue_aware)
        self.min_gain = float(min_gain)
        self.penalty = float(env.scenario.switch_penalty) if self.elastic else 0.0
        self.work_known = bool(env.scenario.work_known)
        self.slot_targets = SlotTargets()
        self.told: np.ndarray | None = None

    def fresh_history(self) -> None:
        self.tracker = RateTracker()
        self.model = FittedSpeed(self.prior_slots)
        self.types: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.table = np.ones((0, self.dims.cpu_levels, self.dims.gpu_levels))
        self.works = WorkHistory()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.slot_targets = SlotTargets()

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        if self.told is None and (speed := self.told_speed(infos)) is not None:
            with np.errstate(divide="ignore"):
                self.told = np.where(speed.base > 0, 1.0 / speed.base, np.inf)
        return super().act(observations, infos)

    # ---------------------------------------------------------------- learning
    def left(self, view: Any) -> float:
        """Remaining work of a waiting or running task: told, or estimated from history."""
        if self.work_known:
            return float(view.oracle_work)
        return self.works.remaining(view.type, view.done)

    def observe(self, snap: Snapshot) -> None:
        self.works.update(snap)
        if self.told is not None:
            self.table = self.told
            return
        self.tracker.update(snap)
        for tv in snap.pending.values():
            self.types.setdefault(tv.type, (tv.min_demand, tv.cap))
        for runs in snap.running:
            for rv in runs:
                if rv.min_demand.any():
                    self.types.setdefault(rv.type, (rv.min_demand, rv.cap))
        before = self.model.version
        self.model.refit(self.tracker, self.types)
        if self.model.version != before or len(self.table) <= max(self.types, default=-1):
            k = max(self.types, default=-1) + 1
            cpu, gpu = np.meshgrid(
                np.arange(self.dims.cpu_levels), np.arange(self.dims.gpu_levels), indexing="ij"
            )
            self.table = np.stack([self.model.time(t, cpu, gpu) for t in range(k)])

    # ---------------------------------------------------------------- planning
    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        if self.elastic:
            targets = self.slot_targets.get(snap)
            if targets is None:
                targets = self._elastic_targets(snap)
                self.slot_targets.set(snap, targets)
            return plan_towards(snap, observations, targets)
        return self._static_plan(snap)

    def _order(self, snap: Snapshot) -> list[TaskView]:
        def key(tv: TaskView) -> tuple[float, int]:
            mc, mg = int(tv.min_demand[CPU]), int(tv.min_demand[GPU])
            return self.left(tv) * float(self.table[tv.type, mc, mg]), tv.task

        return sorted(snap.pending.values(), key=key)

    def _static_plan(self, snap: Snapshot) -> Plan:
        plan = Plan(snap)
        pool = snap.free.copy()
        top = np.maximum(snap.capacity[:, :2].max(axis=0), 1)
        chosen: list[tuple[TaskView, int]] = []
        for tv in self._order(snap):
            best = None
            for c in sorted(tv.where):
                if (pool[c] >= tv.min_demand).all():
                    score = float(((pool[c, :2] - tv.min_demand[:2]) / top).sum())
                    if best is None or score > best[0] + 1e-12:
                        best = (score, c)
            if best is not None:
                pool[best[1]] -= tv.min_demand
                chosen.append((tv, best[1]))
        waiting = np.zeros(snap.n)
        taken = {tv.task for tv, _ in chosen}
        for tv in snap.pending.values():
            if tv.task not in taken:
                for c in tv.where:
                    waiting[c] += 1
        for c in range(snap.n):
            group = Group(snap.capacity[c], pool[c])
            for tv, cc in chosen:
                if cc == c:
                    group.add(
                        tv.task,
                        tv,
                        tv.type,
                        tv.min_demand,
                        tv.min_demand,
                        tv.cap,
                        self.left(tv),
                        0.0,
                    )
            if not group.tasks:
                continue
            group.arrays()
            self._greedy(group, queue=self._queue(waiting[c]), transfers=False)
            for i, tv in enumerate(group.views):
                plan.start(c, tv, int(group.alloc[i, 0]), int(group.alloc[i, 1]))
        return plan

    def _elastic_targets(self, snap: Snapshot) -> dict[int, tuple[int, int, int]]:
        groups = []
        for c in range(snap.n):
            g = Group(snap.capacity[c], snap.free[c])
            for rv in snap.running[c]:
                if rv.action < 0:
                    continue  # cannot be addressed: its resources are simply not in the pool
                g.add(
                    rv.task,
                    rv,
                    rv.type,
                    rv.alloc,
                    rv.min_demand,
                    rv.cap,
                    self.left(rv),
                    self.penalty,
                )
            g.arrays()
            groups.append(g)
        pool_mem = snap.free[:, MEM].copy()
        admitted: dict[int, int] = {}
        top = np.maximum(snap.capacity[:, :2].max(axis=0), 1)
        for tv in self._order(snap):
            best = None
            for c in sorted(tv.where):
                if tv.min_demand[MEM] > pool_mem[c]:
                    continue
                cost = self._admission_cost(groups[c], tv)
                if cost is None:
                    continue
                # Cheapest room first, then the roomiest cluster (what is left after its minimum).
                key = (round(cost, 9), -float(((groups[c].pool - tv.min_demand[:2]) / top).sum()))
                if best is None or key < best[0]:
                    best = (key, c)
            if best is None:
                continue
            c = best[1]
            self._reclaim(groups[c], tv.min_demand[:2])
            g = groups[c]
            g.pool -= tv.min_demand[:2]
            pool_mem[c] -= tv.min_demand[MEM]
            self._append(g, tv)
            admitted[tv.task] = c
        waiting = np.zeros(snap.n)
        for tv in snap.pending.values():
            if tv.task not in admitted:
                for c in tv.where:
                    waiting[c] += 1
        targets: dict[int, tuple[int, int, int]] = {}
        for c, g in enumerate(groups):
            if not g.tasks:
                continue
            self._greedy(g, queue=self._queue(waiting[c]), transfers=True)
            for i, t in enumerate(g.tasks):
                a = (int(g.alloc[i, 0]), int(g.alloc[i, 1]))
                if t in admitted or a != (int(g.orig[i, 0]), int(g.orig[i, 1])):
                    targets[t] = (c, *a)
        return targets

    def _queue(self, waiting: float) -> float:
        """The ``q`` of the objective on a cluster with ``waiting`` tasks left in its window."""
        return waiting + self.reserve if self.queue_aware else 0.0

    def _append(self, g: Group, tv: TaskView) -> None:
        """Add a newly admitted task (at its minimum) to an already built group."""
        g.tasks.append(tv.task)
        g.views.append(tv)
        mn = tv.min_demand[:2].astype(np.int64)
        cap = np.minimum(tv.cap, g.capacity).astype(np.int64)
        g.type = np.append(g.type, tv.type)
        g.alloc = np.vstack([g.alloc, mn])
        g.orig = np.vstack([g.orig, mn])
        g.mn = np.vstack([g.mn, mn])
        g.cap = np.vstack([g.cap, cap])
        g.rem = np.append(g.rem, self.left(tv))
        g.pen = np.append(g.pen, self.penalty if tv.done > 0 else 0.0)

    def _objective(self, g: Group, alloc: np.ndarray, queue: float) -> np.ndarray:
        """Per task: estimated remaining slots at ``alloc`` x (1 + queue x dominant share)."""
        c = np.clip(alloc[:, 0], 0, self.table.shape[1] - 1)
        gg = np.clip(alloc[:, 1], 0, self.table.shape[2] - 1)
        t = g.rem * self.table[g.type, c, gg]
        if queue > 0:
            share = np.maximum(alloc[:, 0] / g.capacity[0], alloc[:, 1] / g.capacity[1])
            t = t * (1.0 + queue * share)
        return t

    def _penalty(self, g: Group, alloc: np.ndarray) -> np.ndarray:
        changed = (alloc != g.orig).any(axis=1)
        return np.where(changed, g.pen, 0.0)

    def _admission_cost(self, g: Group, tv: TaskView) -> float | None:
        """Cost (slots) of making room for a waiting task's minimum on this cluster, or None."""
        need = np.maximum(tv.min_demand[:2] - g.pool, 0)
        if not need.any():
            return 0.0
        if len(g.tasks) == 0:
            return None
        spare = np.maximum(g.alloc - g.mn, 0).sum(axis=0)
        if (spare < need).any():
            return None
        trial = g.alloc.copy()
        for k in (CPU, GPU):
            for _ in range(int(need[k])):
                loss = self._unit_loss(g, trial, k)
                i = int(np.argmin(loss))
                trial[i, k] -= 1
        base = self._objective(g, g.alloc, 0.0) + self._penalty(g, g.alloc)
        after = self._objective(g, trial, 0.0) + self._penalty(g, trial)
        cost = float((after - base).sum())
        # Without the room the task waits for the first running task to finish.
        wait = float(self._objective(g, g.alloc, 0.0).min())
        return cost if cost < wait else None

    def _reclaim(self, g: Group, need_total: np.ndarray) -> None:
        need = np.maximum(need_total - g.pool, 0)
        for k in (CPU, GPU):
            for _ in range(int(need[k])):
                loss = self._unit_loss(g, g.alloc, k)
                i = int(np.argmin(loss))
                g.alloc[i, k] -= 1
                g.pool[k] += 1

    def _unit_loss(self, g: Group, alloc: np.ndarray, k: int) -> np.ndarray:
        """Cost of taking one unit of kind ``k`` from each task (inf where at its minimum)."""
        down = alloc.copy()
        down[:, k] -= 1
        ok = down[:, k] >= g.mn[:, k]
        down[:, k] = np.maximum(down[:, k], 0)
        cost = self._objective(g, down, 0.0) + self._penalty(g, down)
        cost -= self._objective(g, alloc, 0.0) + self._penalty(g, alloc)
        return np.where(ok, cost, np.inf)

    def _greedy(self, g: Group, queue: float, transfers: bool) -> None:
        """Optimus's greedy: the next unit to the task whose estimate drops the most."""
        n = len(g.tasks)
        for _ in range(4 * int(g.capacity.sum()) + 8):
            cur = self._objective(g, g.alloc, queue) + self._penalty(g, g.alloc)
            best_gain, move = self.min_gain, None
            for k in (CPU, GPU):
                up = g.alloc.copy()
                up[:, k] += 1
                can_up = up[:, k] <= g.cap[:, k]
                up_val = self._objective(g, up, queue) + self._penalty(g, up)
                gain_up = np.where(can_up, cur - up_val, -np.inf)
                if g.pool[k] > 0:
                    i = int(np.argmax(gain_up))
                    if gain_up[i] > best_gain:
                        best_gain, move = float(gain_up[i]), (None, i, k)
                if transfers and n > 1:
                    loss = self._unit_loss(g, g.alloc, k)
                    for i in np.argsort(-gain_up)[:3]:
                        if not np.isfinite(gain_up[i]):
                            break
                        cand = loss.copy()
                        cand[i] = np.inf
                        j = int(np.argmin(cand))
                        gain = float(gain_up[i] - cand[j])
                        if gain > best_gain:
                            best_gain, move = gain, (j, int(i), k)
            if move is None:
                return
            j, i, k = move
            if j is None:
                g.pool[k] -= 1
            else:
                g.alloc[j, k] -= 1
            g.alloc[i, k] += 1
