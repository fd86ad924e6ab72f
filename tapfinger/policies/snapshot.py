"""Snapshot: every agent's view of one round, read into one object for the rule-based baselines.

Every baseline sees all agents' observations in one ``act`` call, so it schedules the whole
network at once. :func:`build_snapshot` reads the pending windows and running sets of all
clusters into a :class:`Snapshot`: one :class:`TaskView` per waiting task (with every window it
sits in) and one :class:`RunningView` per running task. The plan (:mod:`.plan`) is decided on it.

Baselines read only the observations and the documented ``infos`` keys. A task's true
remaining work lands in :attr:`TaskView.oracle_work` / :attr:`RunningView.oracle_work` when the
infos carry it (``task_remaining_work`` under work clairvoyance, for every policy; else the
oracle key ``oracle_remaining_work``), NaN otherwise; policies that read it are oracles except
under work clairvoyance (:meth:`~.registry.PolicyEntry.oracle_under`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

nan = float("nan")

#: Columns of the views' resource arrays (``min_demand``, ``alloc``, ``free``, ``capacity``).
CPU, GPU, MEM = 0, 1, 2


@dataclass
class TaskView:
    """A waiting task in one or more pending windows."""

    task: int
    """Simulator task row (``infos["task_index"]``)."""
    type: int
    arrival: int
    attained_gpu: float
    """GPU x slots of service received so far (non-zero only for paused tasks)."""
    done: float
    """Work done so far (non-zero only for paused tasks)."""
    progress: float
    """Fraction of the work done: 0 for a task that never ran, NaN for a paused one unless the
    regime tells the work."""
    min_demand: np.ndarray
    """int [3]: minimum CPU, GPU and memory (0 where memory is not modelled)."""
    cap: np.ndarray
    """int [2]: per-task cap on CPU and GPU."""
    oracle_work: float
    """The true remaining work when the infos carry it (see the module docstring), else NaN."""
    where: dict[int, int] = field(default_factory=dict)
    """Cluster index -> action index of this task in that cluster's window."""


@dataclass
class RunningView:
    """A task running on a cluster."""

    task: int
    type: int
    cluster: int
    alloc: np.ndarray
    """int [2]: current CPU and GPU."""
    done: float
    """Work done so far."""
    rate: float
    """Observed rate: the work gained in the last slot it ran (0 before its first slot)."""
    progress: float
    """Fraction of the work done; NaN unless the regime tells the work."""
    oracle_work: float
    """The true remaining work when the infos carry it, else NaN."""
    attained_gpu: float
    action: int
    """Action index that addresses it in elastic mode; -1 when it cannot be addressed."""
    min_demand: np.ndarray
    """int [3] in elastic mode (from ``obs["demand"]``); the remembered value otherwise."""
    cap: np.ndarray


@dataclass
class Snapshot:
    """Everything the baselines see in one round, for all clusters at once."""

    agents: list[str]
    slot: int
    pending: dict[int, TaskView]
    """Task row -> view, in arrival order (ties by row)."""
    running: list[list[RunningView]]
    free: np.ndarray
    """int [N, 3]."""
    capacity: np.ndarray
    """int [N, 3]."""
    finished: list[tuple[int, float]] = field(default_factory=list)
    """(type, work) of the tasks that finished since the last round (a task's work is known
    once it has finished)."""

    @property
    def n(self) -> int:
        return len(self.agents)


def build_snapshot(
    env: Any, observations: dict[str, dict], infos: dict[str, dict] | None, memory: dict
) -> Snapshot:
    """Read every agent's observation and infos into one :class:`Snapshot`.

    ``memory`` maps task rows to ``(min_demand, cap)`` seen while they waited, so running tasks
    keep their minimum demand in non-elastic mode (where the observation no longer shows it).
    """
    if infos is None:
        raise ValueError("rule-based baselines need the env's infos (task_index and friends)")
    d = env.dims
    agents = list(env.possible_agents)
    n = len(agents)
    free = np.zeros((n, 3), dtype=np.int64)
    capacity = np.asarray(env.capacity, dtype=np.int64).copy()
    pending: dict[int, TaskView] = {}
    running: list[list[RunningView]] = [[] for _ in range(n)]
    slot = 0
    for c, agent in enumerate(agents):
        if agent not in observations:
            continue
        obs, info = observations[agent], infos[agent]
        slot = int(info["slot"])
        free[c] = np.asarray(obs["free"], dtype=np.int64)
        index = np.asarray(info["task_index"])
        demand = np.asarray(obs["demand"])
        oracle = info.get("task_remaining_work", info.get("oracle_remaining_work"))
        told = info.get("task_progress")
        for i in range(1, d.window + 1):
            t = int(index[i])
            if t < 0:
                continue
            tv = pending.get(t)
            if tv is None:
                mn = demand[i].astype(np.int64).copy()
                cap = np.asarray(info["task_cap"][i], dtype=np.int64).copy()
                memory[t] = (mn, cap)
                tv = TaskView(
                    task=t,
                    type=int(info["task_type"][i]),
                    arrival=int(info["task_arrival"][i]),
                    attained_gpu=float(info["task_attained_gpu"][i]),
                    done=(done := float(info["task_done"][i])),
                    progress=float(told[i]) if told is not None else (0.0 if done == 0 else nan),
                    min_demand=mn,
                    cap=cap,
                    oracle_work=float(oracle[i]) if oracle is not None else nan,
                )
                pending[t] = tv
            tv.where[c] = i
        run_ids = np.asarray(info["running_index"])
        run_left = info.get("running_remaining_work")
        run_frac = info.get("running_progress")
        lo = 1 + d.window
        for j, t in enumerate(run_ids.tolist()):
            action = lo + j if d.elastic and lo + j < d.actions else -1
            if action >= 0:
                mn = demand[action].astype(np.int64).copy()
                cap = np.asarray(info["task_cap"][action], dtype=np.int64).copy()
                attained = float(info["task_attained_gpu"][action])
                memory[t] = (mn, cap)
            else:
                mn, cap = memory.get(t, (np.zeros(3, np.int64), capacity[c, :2].copy()))
                attained = 0.0
            running[c].append(
                RunningView(
                    task=int(t),
                    type=int(info["running_type"][j]),
                    cluster=c,
                    alloc=np.asarray(info["running_alloc"][j], dtype=np.int64).copy(),
                    done=float(info["running_done"][j]),
                    rate=float(info["running_rate"][j]),
                    progress=float(run_frac[j]) if run_frac is not None else nan,
                    oracle_work=float(run_left[j])
                    if run_left is not None
                    else (float(oracle[action]) if oracle is not None and action >= 0 else nan),
                    attained_gpu=attained,
                    action=action,
                    min_demand=mn,
                    cap=cap,
                )
            )
    order = sorted(pending.values(), key=lambda v: (v.arrival, v.task))
    first = next((infos[a] for a in agents if a in infos), {})
    finished = list(
        zip(
            np.asarray(first.get("finished_type", ()), dtype=np.int64).tolist(),
            np.asarray(first.get("finished_work", ()), dtype=float).tolist(),
        )
    )
    return Snapshot(
        agents=agents,
        slot=slot,
        pending={v.task: v for v in order},
        running=running,
        free=free,
        capacity=capacity,
        finished=finished,
    )
