"""`tiresias`: least attained service first, over discretised priority queues (2D-LAS).

Source: Gu et al., "Tiresias: A GPU Cluster Manager for Distributed Deep Learning", NSDI 2019: a
job's attained service is GPUs x time executed; jobs sit in K priority queues by
attained service (thresholds between them), FIFO inside a queue; the scheduler serves the queues
in order and preempts running jobs of lower queues for waiting jobs of higher ones; it needs no
knowledge of job sizes or speeds, and a job keeps its GPU count while it runs.

Adaptation: all clusters are scheduled together. A task's attained service is
``infos["task_attained_gpu"]`` (GPU x slots); its queue is the number of ``thresholds`` at or
below it. Tasks are served in (queue, arrival) order: a running task keeps its allocation if it
still fits what higher-priority tasks leave of its cluster, a waiting task is admitted at its
minimum demand on the roomiest cluster of its windows where that fits. The tasks admitted on a
cluster in a slot then share its spare resources: with ``alloc="spread"`` (default) spare GPUs
and CPUs go one at a time, round robin in priority order, up to each task's cap (equal shares:
the work-conserving rule of the official TapFinger code's Tiresias, applied at start), with
``alloc="min"`` they keep their minimum (Tiresias's fixed request; FIFO at the minimum when
nothing was ever preempted).

- Elastic mode (``env.scenario.elastic``): preemptive. A running task that no longer fits is
  paused (allocation (0, 0)) and waits with its attained service, to resume when it is served
  again; running tasks are never resized. Pauses are only taken when the env's masks allow
  them; a running task that cannot be paused keeps its allocation.
- Default mode: non-preemptive; waiting tasks have attained nothing, so they start in arrival
  order.

The default ``thresholds=(64.0,)`` makes two queues split at 64 GPU x slots. In the paper's
presets task sizes are not heavy-tailed and few tasks attain that much before they finish, so
preemption is rare; lower thresholds preempt more and lose, since a paused task pays the switch
penalty when it resumes (20 seeds, pauses allowed, thresholds (16, 64) vs (64,): 5.24 vs 5.06 on
paper_synthetic, 8.28 vs 6.62 on paper_hetero6, 88.2 vs 69.4 on testbed).

``make_policy("tiresias", env)`` picks the variant from the env's mode. The official code's
elastic Tiresias instead re-spreads all GPUs over the running tasks every slot; every such
resize pays the switch penalty (its testbed figure collapses for that reason, see
``../shared/reference/official-baselines.md``), which the start-time spread avoids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.policies.base import BaselinePolicy, check_choice
from tapfinger.policies.plan import Plan, SlotTargets, can_pause, plan_towards
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import CPU, GPU, MEM, Snapshot, TaskView


def spread(mins: np.ndarray, caps: np.ndarray, spare: np.ndarray) -> np.ndarray:
    """Allocations from the minima plus spare units handed out round robin, up to the caps.

    ``mins`` and ``caps`` are int [k, 2] in priority order, ``spare`` int [2]; returns int [k, 2].
    """
    alloc = mins.astype(np.int64).copy()
    for kind in (CPU, GPU):
        left = int(spare[kind])
        while left > 0:
            room = caps[:, kind] - alloc[:, kind]
            open_ = np.flatnonzero(room > 0)
            if len(open_) == 0:
                break
            give = open_[:left]
            alloc[give, kind] += 1
            left -= len(give)
    return alloc


@register("tiresias")
class TiresiasPolicy(BaselinePolicy):
    """Discretised 2D-LAS: preemptive in elastic mode, non-preemptive otherwise."""

    def __init__(
        self,
        env: Any,
        seed: int = 0,
        thresholds: tuple[float, ...] | list[float] = (64.0,),
        alloc: str = "spread",
    ) -> None:
        super().__init__(env, seed)
        self.thresholds = np.sort(np.asarray(thresholds, dtype=float))
        self.alloc = check_choice("alloc", alloc, ("min", "spread"))
        self.slot_targets = SlotTargets()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.slot_targets = SlotTargets()

    def queue(self, attained: float) -> int:
        """Priority queue of a task with this attained GPU service (0 = highest)."""
        return int(np.searchsorted(self.thresholds, attained, side="right"))

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        if not self.elastic:
            return plan_towards(snap, observations, self._targets(snap, observations))
        targets = self.slot_targets.get(snap)
        if targets is None:
            targets = self._targets(snap, observations)
            self.slot_targets.set(snap, targets)
        return plan_towards(snap, observations, targets)

    def _targets(
        self, snap: Snapshot, observations: dict[str, dict]
    ) -> dict[int, tuple[int, int, int]]:
        """Pauses ((0, 0)) of preempted running tasks and starts of admitted waiting ones."""
        room = snap.capacity.copy()
        keyed: list[tuple[int, int, Any]] = []
        for c, runs in enumerate(snap.running):
            obs = observations.get(snap.agents[c])
            for rv in runs:
                pausable = (
                    self.elastic
                    and obs is not None
                    and rv.action >= 0
                    and can_pause(obs, rv.action)
                )
                if pausable:
                    keyed.append((self.queue(rv.attained_gpu), rv.task, rv))
                else:
                    room[c] -= (*rv.alloc, rv.min_demand[MEM])
        keyed += [(self.queue(tv.attained_gpu), tv.task, tv) for tv in snap.pending.values()]
        keyed.sort(key=lambda k: k[:2])
        top = np.maximum(snap.capacity[:, :2].max(axis=0), 1)
        targets: dict[int, tuple[int, int, int]] = {}
        admitted: list[list[TaskView]] = [[] for _ in range(snap.n)]
        for _, _, view in keyed:
            if not isinstance(view, TaskView):
                c = view.cluster
                need = np.array([*view.alloc, view.min_demand[MEM]])
                if (room[c] >= need).all():
                    room[c] -= need
                else:
                    targets[view.task] = (c, 0, 0)
                continue
            best: tuple[float, int] | None = None
            for c in sorted(view.where):
                if (room[c] >= view.min_demand).all():
                    score = float(((room[c, :2] - view.min_demand[:2]) / top).sum())
                    if best is None or score > best[0] + 1e-12:
                        best = (score, c)
            if best is not None:
                room[best[1]] -= view.min_demand
                admitted[best[1]].append(view)
        for c, tvs in enumerate(admitted):
            if not tvs:
                continue
            mins = np.array([tv.min_demand[:2] for tv in tvs])
            caps = np.array([np.minimum(tv.cap, snap.capacity[c, :2]) for tv in tvs])
            spare = room[c, :2] if self.alloc == "spread" else np.zeros(2, dtype=np.int64)
            alloc = spread(mins, caps, np.maximum(spare, 0))
            for tv, (cpu, gpu) in zip(tvs, alloc.tolist()):
                targets[tv.task] = (c, cpu, gpu)
        return targets
