"""Metrics per task and per episode (DESIGN §4.5), read off a finished or truncated simulator.

The lower bounds they are read against live in :mod:`envs.jct_bounds` (``lower_bound`` is
re-exported here for the env).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.jct_bounds import lower_bound, mean_jct_bounds
from envs.scenario import RESOURCE_KINDS
from envs.simulator import Simulator, Status

__all__ = ["TaskRecords", "episode_metrics", "lower_bound", "resource_slots", "task_records"]


@dataclass
class TaskRecords:
    """Per task (trace order): arrival, start, finish, JCT, waiting, allocation, cluster."""

    task_id: np.ndarray
    task_type: np.ndarray
    arrival: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    jct: np.ndarray
    waiting: np.ndarray
    cpu: np.ndarray
    gpu: np.ndarray
    cluster: np.ndarray
    lower_bound: np.ndarray

    def as_dict(self) -> dict[str, list]:
        return {k: v.tolist() for k, v in self.__dict__.items()}


def task_records(sim: Simulator, lower_bound: np.ndarray) -> TaskRecords:
    """Per-task facts. In a truncated episode an unfinished task has finish -1 and a censored
    JCT: the slots it has spent in the system so far (so a policy that idles is not rewarded by
    leaving tasks out of the mean)."""
    tr = sim.trace
    done = sim.status == Status.DONE
    jct = np.where(done, sim.finish_slot - tr.arrival, np.maximum(sim.slot - tr.arrival, 0))
    waiting = np.where(sim.start_slot >= 0, sim.start_slot - tr.arrival, -1)
    return TaskRecords(
        tr.task_id.copy(),
        tr.type_idx.copy(),
        tr.arrival.copy(),
        sim.start_slot.copy(),
        sim.finish_slot.copy(),
        jct,
        waiting,
        sim.first_alloc[:, 0].copy(),
        sim.first_alloc[:, 1].copy(),
        sim.cluster.copy(),
        lower_bound,
    )


def resource_slots(sim: Simulator) -> np.ndarray:
    """float [N, 3]: resource-slots allocated so far per cluster and kind (from the
    simulator's allocation trace)."""
    out = np.zeros((sim.n, 3))
    if sim.util_trace:
        slots = np.array([s for s, _ in sim.util_trace] + [sim.slot])
        used = np.stack([u for _, u in sim.util_trace])
        out += (np.diff(slots)[:, None, None] * used).sum(axis=0)
    return out


def episode_metrics(sim: Simulator, records: TaskRecords, conflicts: int) -> dict[str, float]:
    """Mean / p50 / p95 / p99 JCT, makespan, utilisation per kind, lower-bound ratio, conflicts.

    ``lower_bound_mean_jct`` is the larger of the mean per-task bound
    (``lower_bound_per_task_mean_jct``) and the pooled-capacity SRPT bound
    (``lower_bound_pooled_mean_jct``), see :mod:`envs.jct_bounds`; in a truncated episode both
    bound the censored JCTs (cut at the current slot), so ``lower_bound_ratio`` (mean JCT over
    that bound) is >= 1 for every policy (NaN while the bound is still 0: nothing has run).
    """
    done = records.finish >= 0
    jct = records.jct.astype(float)
    bounds = mean_jct_bounds(
        sim.trace,
        sim.capacity,
        sim.speed,
        elastic=sim.elastic,
        horizon=None if sim.done else sim.slot,
        per_task=records.lower_bound,
    )
    slots = max(sim.slot, 1)
    cap = sim.capacity.sum(axis=0).astype(float)
    busy = resource_slots(sim).sum(axis=0)
    util = {
        kind: float(busy[i] / (cap[i] * slots)) if cap[i] > 0 else 0.0
        for i, kind in enumerate(("cpu", "gpu", "mem"))
    }
    out = {
        "tasks": float(len(records.jct)),
        "tasks_finished": float(done.sum()),
        "mean_jct": float(jct.mean()) if len(jct) else float("nan"),
        "p50_jct": float(np.percentile(jct, 50)) if len(jct) else float("nan"),
        "p95_jct": float(np.percentile(jct, 95)) if len(jct) else float("nan"),
        "p99_jct": float(np.percentile(jct, 99)) if len(jct) else float("nan"),
        "mean_waiting": float(records.waiting[records.waiting >= 0].mean())
        if (records.waiting >= 0).any()
        else float("nan"),
        "truncated": float(not done.all()),
        "makespan": float(records.finish.max() - records.arrival.min()) if done.all() else -1.0,
        "lower_bound_mean_jct": bounds.bound,
        "lower_bound_per_task_mean_jct": bounds.per_task,
        "lower_bound_pooled_mean_jct": bounds.pooled,
        "lower_bound_ratio": float(jct.mean()) / bounds.bound if bounds.bound > 0 else math.nan,
        "utilization_cpu": util["cpu"],
        "utilization_gpu": util["gpu"],
        "utilization_mem": util["mem"],
        "conflicts": float(conflicts),
        "slots": float(sim.slot),
    }
    return out


def status_text(sim: Simulator, capacity: np.ndarray, agents: list[str]) -> str:
    """The clusters' state now, as text (the env's ``render``)."""
    lines = [f"slot {sim.slot} round {sim.round}: {len(sim.pending.waiting)} waiting"]
    for c, agent in enumerate(agents):
        free, cap = sim.free[c], capacity[c]
        lines.append(
            f"  {agent}: cpu {cap[0] - free[0]}/{cap[0]} gpu {cap[1] - free[1]}/{cap[1]}"
            f" running {len(sim.running[c])}"
        )
    return "\n".join(lines)


class EpisodeMetrics:
    """The env's metric methods (mixed into ``EdgeClusterEnv``, which sets ``sim``, ``trace``,
    ``capacity``, ``speed``, ``_lower_bound`` and ``_conflicts``)."""

    def lower_bound(self) -> np.ndarray:
        if self._lower_bound is None:
            self._lower_bound = lower_bound(self.trace, self.capacity, self.speed)
        return self._lower_bound

    def task_records(self):
        """Per-task metrics of the current episode (DESIGN §4.5)."""
        return task_records(self.sim, self.lower_bound())

    def episode_summary(self) -> dict[str, float]:
        """Per-episode metrics: JCT statistics, makespan, utilisation, lower-bound ratio."""
        return episode_metrics(self.sim, self.task_records(), self._conflicts)

    def utilization_by_cluster(self) -> np.ndarray:
        """float [N, 3]: allocated share of each cluster's capacity per kind over the episode."""
        slots = max(self.sim.slot, 1)
        cap = np.maximum(self.capacity, 1) * slots
        return np.where(self.capacity > 0, resource_slots(self.sim) / cap, 0.0)

    def utilization_trace(self) -> tuple[np.ndarray, np.ndarray]:
        """The episode's allocation over time, summed over clusters.

        Returns:
            ``slots`` int [E + 1]: the slot at which each allocation starts, then the current
            slot; ``alloc`` int [E, 3]: resources allocated per kind from ``slots[i]`` until
            ``slots[i + 1]``.
        """
        trace = self.sim.util_trace
        slots = np.asarray([s for s, _ in trace] + [self.sim.slot], dtype=np.int64)
        alloc = np.asarray([a.sum(axis=0) for _, a in trace], dtype=np.int64)
        return slots, alloc.reshape(-1, len(RESOURCE_KINDS))
