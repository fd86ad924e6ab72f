"""`srpt`: shortest remaining processing time first, preemptive in elastic mode (an oracle).

Source: Schrage, "A proof of the optimality of the shortest remaining processing time
discipline", Operations Research 16(3), 1968: on one server with preemption, always serving the
job with the least remaining work minimises the mean completion time (and flow time) for any
arrival sequence. GPU-cluster papers use its multi-resource forms as the clairvoyant reference
(Tiresias, NSDI 2019: SRTF / SRSF). Here it is the reference of what preemption can reach.

This baseline is an ORACLE, like :mod:`.sjf` (which it extends): it reads every task's true
remaining work (:attr:`~.snapshot.TaskView.oracle_work`, :attr:`~.snapshot.RunningView.
oracle_work`) and the true speed model (:meth:`~.base.BaselinePolicy.oracle_speed`), so it needs
``oracle_infos: true`` (or a regime that tells both). Registered with ``oracle=True``.

- Elastic mode (``env.scenario.elastic``): preemptive. Once per slot, every task (running or
  waiting) is keyed by its remaining time: the slots it needs from where it is to its end at
  its best allocation on its best cluster (a running task on its own cluster; a paused task
  with the ``switch_penalty`` it pays when it resumes), less the penalty for a running task,
  which it would pay if it lost its place (swapping two tasks on one server lowers the sum of
  their completion times only if the newcomer is shorter by more than that). In increasing
  order of that key (ties: running tasks first, then by task row), each task takes the best
  allocation within what the earlier ones left (see ``alloc``), ties to the fewest CPU and GPU
  shares; a running task keeps its allocation unless a change (paying the penalty) is better,
  and is paused (the env's masks allowing) when its minimum no longer fits, to resume when its
  turn comes; a waiting task goes to the cluster where it is best, ties to the tightest
  (best fit, :data:`~.plan.PLACEMENTS`: it keeps large clusters whole for large tasks). The
  slot's targets are carried out over its rounds (:class:`~.plan.SlotTargets`,
  :func:`~.plan.plan_towards`).
- Default mode: non-preemptive SRPT: nothing has run while it waits, so the remaining work is
  the whole work and the policy is :mod:`.sjf` with the same ``alloc`` (the default makes it
  exactly ``sjf``; ``alloc="fastest"`` is SJF by greatest speed-up).

``alloc`` picks the allocation. ``"fastest"`` is plain SRPT: the one that finishes the task
soonest. ``"queue"`` (default) is SJF's queue-aware cost: an allocation's slots x (1 + q x its
dominant share of the cluster), ``q`` the tasks after it in the order that could use that
cluster, so that under load tasks start smaller and more run at once. Measured on 20
training-range seeds (1000000-1000019), elastic mode, mean JCT: paper_synthetic 3.36 (queue)
vs 3.42 (fastest), paper_hetero6 4.01 vs 4.96, testbed 58.5 vs 209.7 (there the fastest
allocation of a GPU-sensitive task takes a whole cluster and the overloaded queue starves).
Against the non-preemptive ``sjf`` on the same seeds (3.49, 4.26, 55.6) preemption gains on
the paper's synthetic presets and loses on the testbed, whose tasks are similar in size and
pay half a slot per switch: ranking by remaining time is optimal on one server, not for tasks
whose speed-up is concave in the resources they get (heSRPT, Berg et al., "heSRPT: Parallel
scheduling to minimize mean slowdown", Performance 2020), where ``optimus@elastic``
(marginal-gain resizing) does better (52.7 on the testbed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.errors import ConfigError
from tapfinger.policies.plan import (
    Plan,
    SlotTargets,
    can_pause,
    fit_score,
    kind_scale,
    plan_towards,
)
from tapfinger.policies.registry import register
from tapfinger.policies.sjf import SjfPolicy
from tapfinger.policies.snapshot import CPU, GPU, MEM, RunningView, Snapshot, TaskView


def switched_slots(speed: Any, type_: int, work: float, done: float, penalty: float) -> np.ndarray:
    """float [cpu_levels, gpu_levels]: slots to finish from ``done`` after a change (a resize
    or a resumption), whose first slot loses ``penalty`` of its progress, as the simulator runs
    it (inf where the rate is 0)."""
    base = speed.base[type_]
    remaining = work - done
    with np.errstate(divide="ignore", invalid="ignore"):
        if not speed.sqrt_decay[type_]:
            table = np.where(base > 0, np.ceil(remaining / base + penalty - 1e-9), np.inf)
            return np.maximum(table, 1.0)
        table = np.full(base.shape, np.inf)
        progress = np.full(base.shape, float(done))
        live = base > 0
        steps = 0
        while live.any() and steps < 100_000:
            steps += 1
            rate = base * np.sqrt(np.maximum(1.2 - progress / work, 0.0))
            if steps == 1:
                rate = rate * (1.0 - penalty)
            progress = np.where(live, progress + rate, progress)
            finished = live & (progress >= work - 1e-9)
            table[finished] = steps
            live &= ~finished
            if steps > 10_000 and not (rate[live] > 0).any():
                break
    return table


@register("srpt", oracle=True, elastic=True)
class SrptPolicy(SjfPolicy):
    """Oracle shortest remaining time first: preemptive and resizing in elastic mode."""

    def __init__(self, env: Any, seed: int = 0, alloc: str = "queue") -> None:
        super().__init__(env, seed, alloc=alloc)
        self.penalty = float(env.scenario.switch_penalty)
        self.slot_targets = SlotTargets()
        self.switched: dict[tuple[int, float, float], tuple[np.ndarray, np.ndarray]] = {}
        """This slot's :meth:`tables` by (type, work, done)."""

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.slot_targets = SlotTargets()
        self.switched = {}

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        if not self.elastic:
            return super().plan(snap, observations)
        targets = self.slot_targets.get(snap)
        if targets is None:
            targets = self._targets(snap, observations)
            self.slot_targets.set(snap, targets)
        return plan_towards(snap, observations, targets)

    # ------------------------------------------------------------------ remaining time
    def tables(self, view: TaskView | RunningView) -> tuple[np.ndarray, np.ndarray]:
        """(slots to finish without a change, slots after a change) from every allocation.

        Kept for one slot only: in elastic mode the work done changes every slot, so a cache
        over the episode would grow with slots x tasks (tables of cpu x gpu levels each).
        """
        if not np.isfinite(view.oracle_work):
            raise ConfigError(
                "policy 'srpt' reads the true remaining work: it needs scenario.oracle_infos=true"
            )
        assert self.table is not None
        work, done = view.done + view.oracle_work, view.done
        key = (view.type, round(work, 12), round(done, 12))
        if key not in self.switched:
            speed = self.table.speed
            self.switched[key] = (
                switched_slots(speed, *key, 0.0),
                switched_slots(speed, *key, self.penalty),
            )
        return self.switched[key]

    def choose(
        self,
        table: np.ndarray,
        view: TaskView | RunningView,
        box: np.ndarray,
        capacity: np.ndarray,
        queue: int,
    ) -> tuple[float, float, int, int] | None:
        """(cost, slots, cpu, gpu) of the best allocation of ``view`` within ``box`` (int [2]),
        ties to the fewest shares of ``capacity``; None when its minimum does not fit."""
        mc, mg = int(view.min_demand[CPU]), int(view.min_demand[GPU])
        hc = min(int(box[CPU]), int(view.cap[CPU]), table.shape[0] - 1)
        hg = min(int(box[GPU]), int(view.cap[GPU]), table.shape[1] - 1)
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
        size = cells[:, 0] / max(int(capacity[CPU]), 1) + cells[:, 1] / max(int(capacity[GPU]), 1)
        c, g = cells[int(np.argmin(size))]
        return best, float(slots[c, g]), mc + int(c), mg + int(g)

    def remaining_time(self, view: TaskView | RunningView, snap: Snapshot) -> float:
        """The SRPT key: slots to finish at the best allocation on the best cluster, all else
        away (a paused task with the penalty it pays when it resumes), less the switch penalty
        for a running task, which it would pay if it lost its place: a task preempts a running
        one only when it is shorter by more than that (two tasks on one server: swapping them
        lowers the sum of their completion times iff ``b + penalty < a``)."""
        plain, switched = self.tables(view)
        if isinstance(view, RunningView):
            where, table, bonus = [view.cluster], plain, self.penalty
        else:
            where, table, bonus = list(view.where), plain if view.done == 0 else switched, 0.0
        best = [self.choose(table, view, snap.capacity[c, :2], snap.capacity[c], 0) for c in where]
        return min((b[1] for b in best if b is not None), default=np.inf) - bonus

    # ------------------------------------------------------------------ targets
    def _targets(
        self, snap: Snapshot, observations: dict[str, dict]
    ) -> dict[int, tuple[int, int, int]]:
        """The slot's targets: allocations in SRPT order, (0, 0) for the preempted."""
        self.switched = {}  # a new slot: the tables of the last one are stale
        room = snap.capacity.copy()
        top = kind_scale(snap.capacity)
        views: list[TaskView | RunningView] = []
        for c, runs in enumerate(snap.running):
            obs = observations.get(snap.agents[c])
            for rv in runs:
                if rv.action < 0 or obs is None or not can_pause(obs, rv.action):
                    room[c] -= (*rv.alloc, rv.min_demand[MEM])  # cannot be moved: reserved
                else:
                    views.append(rv)
        views += list(snap.pending.values())
        # SRPT order; on equal remaining time a running task goes first (no switch for nothing).
        keyed = sorted(
            (self.remaining_time(v, snap), not isinstance(v, RunningView), v.task, v) for v in views
        )
        # Tasks later in the order that could use each cluster: the queue behind a decision.
        queue = np.zeros(snap.n, dtype=np.int64)
        for *_, v in keyed:
            for c in [v.cluster] if isinstance(v, RunningView) else v.where:
                queue[c] += 1
        targets: dict[int, tuple[int, int, int]] = {}
        for *_, v in keyed:
            where = [v.cluster] if isinstance(v, RunningView) else sorted(v.where)
            for c in where:
                queue[c] -= 1
            plain, switched = self.tables(v)
            mem = int(v.min_demand[MEM])
            if isinstance(v, RunningView):
                c = v.cluster
                q = int(queue[c]) if self.alloc == "queue" else 0
                box = room[c, :2]
                cur = (int(v.alloc[CPU]), int(v.alloc[GPU]))
                move = (
                    self.choose(switched, v, box, snap.capacity[c], q)
                    if room[c, MEM] >= mem
                    else None
                )
                keep = None
                if (box >= cur).all() and room[c, MEM] >= mem:
                    share = max(
                        cur[CPU] / max(int(snap.capacity[c, CPU]), 1),
                        cur[GPU] / max(int(snap.capacity[c, GPU]), 1),
                    )
                    keep = float(plain[cur]) * (1.0 + q * share)
                if keep is not None and (move is None or keep <= move[0] * (1 + 1e-12)):
                    room[c] -= (*cur, mem)
                elif move is not None:
                    room[c] -= (move[2], move[3], mem)
                    targets[v.task] = (c, move[2], move[3])
                else:
                    targets[v.task] = (c, 0, 0)
                continue
            table = plain if v.done == 0 else switched
            choice = None
            for c in where:
                if room[c, MEM] < mem:
                    continue
                q = int(queue[c]) if self.alloc == "queue" else 0
                b = self.choose(table, v, room[c, :2], snap.capacity[c], q)
                if b is None:
                    continue
                left = room[c, :2] - (b[2], b[3])
                key = (b[0], b[1], -fit_score(left, top, "best_fit"))
                if choice is None or key < choice[0]:
                    choice = (key, c, b[2], b[3])
            if choice is not None:
                _, c, cpu, gpu = choice
                room[c] -= (cpu, gpu, mem)
                targets[v.task] = (c, cpu, gpu)
        return targets
