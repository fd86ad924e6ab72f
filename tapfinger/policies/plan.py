"""Plan: the starts and resizes a baseline decides for one round, and the actions they become.

Builds on :mod:`.snapshot`. A baseline decides a :class:`Plan` on the round's
:class:`~.snapshot.Snapshot` (which pending task starts where and with how much, which running
task is resized), and :meth:`Plan.actions` turns it into one masked-valid action vector per
agent. A task planned on one cluster is claimed, so no other agent picks it in the same round,
and the env never has to settle a conflict.

An agent changes at most ``max_starts`` things per round (one in single-task mode); rounds go on
inside a slot while any agent changes something, so a plan with more changes than that is
carried out over the following rounds of the same slot. Non-preemptive baselines simply plan
again every round (their plan only ever starts tasks), usually with :func:`place_in_order`,
whose ``placement`` option picks the cluster among those that fit (:func:`fit_score`).
Elastic baselines keep the slot's target allocations in :class:`SlotTargets` and emit their
remaining differences each round with :func:`plan_towards`, so a slot's decision is taken once
and cannot oscillate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tapfinger.policies.snapshot import CPU, GPU, MEM, RunningView, Snapshot, TaskView


@dataclass
class Op:
    """One change on one cluster: start a pending task or resize a running one."""

    action: int
    task: int
    cpu: int
    gpu: int
    mem: int
    """Memory the op takes (start) or gives back (pause); 0 for resizes."""
    old: tuple[int, int]
    """Allocation before the op ((0, 0) for a start)."""
    start: bool

    @property
    def releases(self) -> bool:
        """The op gives resources back and takes none (a pause or a pure shrink)."""
        return not self.start and self.cpu <= self.old[0] and self.gpu <= self.old[1]


class Plan:
    """Starts and resizes decided for one round, with the free resources they leave.

    ``free`` is what remains once every planned op has happened; ops are checked against it as
    they are added, and :meth:`actions` orders them so that each emitted one fits the resources
    actually free when the env executes it.
    """

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.free = snap.free.copy()
        self.ops: list[list[Op]] = [[] for _ in range(snap.n)]
        self.started: dict[int, tuple[int, int, int]] = {}
        """Task row -> (cluster, cpu, gpu) of the planned starts."""

    # ---------------------------------------------------------------- checks
    def fits(self, c: int, tv: TaskView, cpu: int, gpu: int) -> bool:
        """Would pending task ``tv`` fit cluster ``c`` with (cpu, gpu) after the planned ops?"""
        if tv.task in self.started or c not in tv.where:
            return False
        mn, cap, free = tv.min_demand, tv.cap, self.free[c]
        return bool(
            mn[CPU] <= cpu <= min(cap[CPU], free[CPU])
            and mn[GPU] <= gpu <= min(cap[GPU], free[GPU])
            and mn[MEM] <= free[MEM]
        )

    def max_alloc(self, c: int, tv: TaskView) -> tuple[int, int] | None:
        """The largest (cpu, gpu) ``tv`` can get on ``c`` now; None if its minimum does not fit."""
        if not self.fits(c, tv, int(tv.min_demand[CPU]), int(tv.min_demand[GPU])):
            return None
        free = self.free[c]
        return int(min(tv.cap[CPU], free[CPU])), int(min(tv.cap[GPU], free[GPU]))

    # ---------------------------------------------------------------- changes
    def start(self, c: int, tv: TaskView, cpu: int, gpu: int) -> None:
        """Plan to start pending task ``tv`` on cluster ``c`` with (cpu, gpu)."""
        if not self.fits(c, tv, cpu, gpu):
            raise ValueError(f"task {tv.task} does not fit cluster {c} with ({cpu}, {gpu})")
        mem = int(tv.min_demand[MEM])
        self.free[c] -= (cpu, gpu, mem)
        self.started[tv.task] = (c, cpu, gpu)
        self.ops[c].append(Op(tv.where[c], tv.task, cpu, gpu, mem, (0, 0), True))

    def resize(self, rv: RunningView, cpu: int, gpu: int) -> None:
        """Plan to resize running task ``rv`` to (cpu, gpu), or pause it with (0, 0)."""
        if rv.action < 0:
            raise ValueError(f"running task {rv.task} cannot be addressed")
        c = rv.cluster
        old = (int(rv.alloc[CPU]), int(rv.alloc[GPU]))
        if (cpu, gpu) == old:
            return
        mem = 0
        if cpu == 0 and gpu == 0:
            mem = int(rv.min_demand[MEM])
            self.free[c, MEM] += mem
        elif not (
            rv.min_demand[CPU] <= cpu <= min(rv.cap[CPU], self.free[c, CPU] + old[0])
            and rv.min_demand[GPU] <= gpu <= min(rv.cap[GPU], self.free[c, GPU] + old[1])
        ):
            raise ValueError(f"resize of task {rv.task} to ({cpu}, {gpu}) does not fit")
        self.free[c, CPU] += old[0] - cpu
        self.free[c, GPU] += old[1] - gpu
        self.ops[c].append(Op(rv.action, rv.task, cpu, gpu, mem, old, False))

    # ---------------------------------------------------------------- actions
    def actions(self, env: Any, observations: dict[str, dict]) -> dict[str, np.ndarray]:
        """One action vector per agent: its first ops that fit, releases first.

        The first emitted triple of each agent is checked against its observation's masks; the
        following ones (multi-task mode) against the free resources the earlier ones leave.
        """
        starts = env.dims.max_starts
        out: dict[str, np.ndarray] = {}
        for c, agent in enumerate(self.snap.agents):
            if agent not in observations:
                continue
            a = np.zeros(3 * starts, dtype=np.int64)
            free = self.snap.free[c].copy()
            ordered = [op for op in self.ops[c] if op.releases] + [
                op for op in self.ops[c] if not op.releases
            ]
            k = 0
            for op in ordered:
                if k == starts:
                    break
                if op.start:
                    ok = op.cpu <= free[CPU] and op.gpu <= free[GPU] and op.mem <= free[MEM]
                else:
                    ok = op.cpu - op.old[0] <= free[CPU] and op.gpu - op.old[1] <= free[GPU]
                if not ok:
                    continue
                pause = not op.start and op.cpu == 0
                gpu = pause_gpu(observations[agent], op.action) if pause else op.gpu
                if k == 0 and not masked_valid(observations[agent], op.action, op.cpu, gpu):
                    raise AssertionError(
                        f"{agent}: planned ({op.action}, {op.cpu}, {gpu}) is not mask-valid"
                    )
                if op.start:
                    free -= (op.cpu, op.gpu, op.mem)
                else:
                    free[CPU] += op.old[0] - op.cpu
                    free[GPU] += op.old[1] - op.gpu
                    free[MEM] += op.mem
                a[3 * k : 3 * k + 3] = (op.action, op.cpu, gpu)
                k += 1
            out[agent] = a
        return out


def masked_valid(obs: dict, action: int, cpu: int, gpu: int) -> bool:
    """Is (action, cpu, gpu) allowed by the observation's task and allocation masks?"""
    return bool(
        obs["task_mask"][action] and obs["cpu_mask"][action][cpu] and obs["gpu_mask"][action][gpu]
    )


def can_pause(obs: dict, action: int) -> bool:
    """Do the masks allow pausing the running task at ``action``?

    A pause is CPU level 0 (the env ignores the GPU level then), so it needs ``cpu_mask`` at 0
    and any GPU level the mask allows (:func:`pause_gpu`).
    """
    return bool(obs["cpu_mask"][action][0] and np.any(obs["gpu_mask"][action]))


def pause_gpu(obs: dict, action: int) -> int:
    """The GPU level a pause of the running task at ``action`` is emitted with: the lowest one
    its mask allows (a plan records a pause as (0, 0); the env reads CPU 0 as the pause)."""
    allowed = np.flatnonzero(obs["gpu_mask"][action])
    return int(allowed[0]) if len(allowed) else 0


# ---------------------------------------------------------------------------------- placement
PLACEMENTS = ("worst_fit", "best_fit")
"""Placement rules of the baselines, for the cluster a task starts on among those it fits:
``worst_fit``, the roomiest one (most CPU and GPU left after the start, as Kubernetes'
default ``LeastAllocated`` scoring spreads pods); ``best_fit``, the tightest one (least left,
the bin-packing rule of Kubernetes' ``MostAllocated`` scoring, which keeps large clusters whole
for large tasks)."""


def fit_score(left: np.ndarray, top: np.ndarray, placement: str) -> float:
    """Preference (higher first) for a cluster that keeps ``left`` (CPU, GPU, ... after the
    start; only the first two count) under ``placement``; ``top`` (int [2]) scales each kind by
    the largest cluster's capacity so that CPU and GPU weigh alike."""
    room = float((np.asarray(left[:2], dtype=float) / top).sum())
    return room if placement == "worst_fit" else -room


def kind_scale(capacity: np.ndarray) -> np.ndarray:
    """int [2]: the largest cluster's CPU and GPU (at least 1), the scale of :func:`fit_score`."""
    return np.maximum(np.asarray(capacity)[:, :2].max(axis=0), 1)


def free_score(plan: Plan, c: int, cpu: int, gpu: int) -> float:
    """How much room cluster ``c`` keeps after a start: free CPU and GPU shares of the largest
    cluster, summed (the ``worst_fit`` score)."""
    left = plan.free[c, :2] - (cpu, gpu)
    return fit_score(left, kind_scale(plan.snap.capacity), "worst_fit")


def place_in_order(
    plan: Plan,
    order: list[TaskView],
    alloc: Callable[[Plan, int, TaskView], tuple[int, int] | None],
    placement: str = "worst_fit",
) -> None:
    """Start the tasks of ``order`` one after the other, each on its best cluster.

    ``alloc(plan, c, tv) -> (cpu, gpu) | None`` is the policy's allocation rule on cluster
    ``c``; among the clusters where that allocation fits, a task goes to the one ``placement``
    prefers (:data:`PLACEMENTS`, :func:`fit_score`), ties to the lower index. A task that fits
    nowhere is skipped (backfill).
    """
    top = kind_scale(plan.snap.capacity)
    for tv in order:
        best: tuple[float, int, int, int] | None = None
        for c in sorted(tv.where):
            a = alloc(plan, c, tv)
            if a is None:
                continue
            cpu, gpu = a
            if not plan.fits(c, tv, cpu, gpu):
                continue
            score = fit_score(plan.free[c, :2] - (cpu, gpu), top, placement)
            if best is None or score > best[0] + 1e-12:
                best = (score, c, cpu, gpu)
        if best is not None:
            plan.start(best[1], tv, best[2], best[3])


def min_alloc(plan: Plan, c: int, tv: TaskView) -> tuple[int, int]:
    """The type's minimum demand (the allocation rule of ``min`` and of ``fifo`` by default)."""
    return int(tv.min_demand[CPU]), int(tv.min_demand[GPU])


# ---------------------------------------------------------------------------------- elastic
class SlotTargets:
    """The target allocations of one slot, kept while its rounds carry them out.

    ``targets`` maps task rows to (cluster, cpu, gpu); (0, 0) pauses a running task, a missing
    running task keeps its allocation, a missing pending task keeps waiting.
    """

    def __init__(self) -> None:
        self.slot = -1
        self.targets: dict[int, tuple[int, int, int]] = {}

    def get(self, snap: Snapshot) -> dict[int, tuple[int, int, int]] | None:
        if snap.slot != self.slot:
            return None
        for t, (c, cpu, _) in self.targets.items():
            tv = snap.pending.get(t)
            if tv is not None and cpu > 0 and c not in tv.where:
                return None  # a task to start left the cluster's window: decide again
        return self.targets

    def set(self, snap: Snapshot, targets: dict[int, tuple[int, int, int]]) -> None:
        self.slot = snap.slot
        self.targets = dict(targets)


def plan_towards(
    snap: Snapshot, observations: dict[str, dict], targets: dict[int, tuple[int, int, int]]
) -> Plan:
    """A plan of the differences between the current state and ``targets``.

    Pauses and shrinks come first (they free resources), then grows and starts in the order of
    ``targets``. An op that does not fit yet waits for a later round of the slot.
    """
    plan = Plan(snap)
    rows = {rv.task: rv for runs in snap.running for rv in runs}
    for c, agent in enumerate(snap.agents):
        obs = observations.get(agent)
        if obs is None:
            continue
        for rv in snap.running[c]:
            tgt = targets.get(rv.task)
            if tgt is None or rv.action < 0:
                continue
            _, cpu, gpu = tgt
            if cpu == 0 and gpu == 0 and not can_pause(obs, rv.action):
                cpu, gpu = int(rv.min_demand[CPU]), int(rv.min_demand[GPU])
            if cpu <= rv.alloc[CPU] and gpu <= rv.alloc[GPU] and (cpu, gpu) != tuple(rv.alloc):
                plan.resize(rv, cpu, gpu)
    for t, (c, cpu, gpu) in targets.items():
        rv = rows.get(t)
        if rv is not None:
            if rv.action < 0 or (cpu <= rv.alloc[CPU] and gpu <= rv.alloc[GPU]):
                continue
            cpu = max(cpu, int(rv.min_demand[CPU]))
            gpu = max(gpu, int(rv.min_demand[GPU]))
            # A running task grows where it runs: the target's cluster is stale when someone
            # else started the task this slot (another driver, e.g. a student under DAgger).
            c = rv.cluster
            room_c = plan.free[c, CPU] + rv.alloc[CPU]
            room_g = plan.free[c, GPU] + rv.alloc[GPU]
            cpu, gpu = int(min(cpu, room_c)), int(min(gpu, room_g))
            if (cpu, gpu) != tuple(rv.alloc) and cpu >= rv.min_demand[CPU]:
                plan.resize(rv, cpu, gpu)
            continue
        tv = snap.pending.get(t)
        if tv is not None and cpu > 0 and plan.fits(c, tv, cpu, gpu):
            plan.start(c, tv, cpu, gpu)
    return plan
