"""Metrics per task and per episode (DESIGN §4.5), read off a finished or truncated simulator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.simulator import Simulator, Status
from envs.speed_models import SpeedModel
from envs.trace import Trace


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
    """Mean / p50 / p95 / p99 JCT, makespan, utilisation per kind, lower-bound ratio, conflicts."""
    done = records.finish >= 0
    jct = records.jct.astype(float)
    lb = records.lower_bound
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
        "lower_bound_mean_jct": float(lb.mean()) if len(lb) else float("nan"),
        "lower_bound_ratio": float(jct.mean() / lb.mean()) if len(lb) else float("nan"),
        "utilization_cpu": util["cpu"],
        "utilization_gpu": util["gpu"],
        "utilization_mem": util["mem"],
        "conflicts": float(conflicts),
        "slots": float(sim.slot),
    }
    return out


def lower_bound(trace: Trace, capacity: np.ndarray, speed: SpeedModel) -> np.ndarray:
    """Per task: slots to finish alone at its best allocation on the best visible cluster."""
    tr = trace
    cache: dict[tuple, int] = {}
    out = np.empty(len(tr))
    types, work = tr.type_idx.tolist(), tr.work.tolist()
    demand, cap, visible = tr.min_demand.tolist(), tr.cap.tolist(), tr.visible.tolist()
    caps = [tuple(row) for row in capacity.tolist()]
    for i in range(len(tr)):
        best = math.inf
        task = (types[i], work[i], *demand[i], *cap[i])
        for c, seen in enumerate(visible[i]):
            if not seen:
                continue
            key = task + caps[c]
            if key not in cache:
                cache[key] = _best_duration(tr, speed, i, capacity[c])
            best = min(best, cache[key])
        out[i] = best
    return out


def _best_duration(tr: Trace, speed: SpeedModel, i: int, cap_c: np.ndarray) -> int:
    mn, cap = tr.min_demand[i], tr.cap[i]
    if (mn[:2] > cap_c[:2]).any() or (cap_c[2] > 0 and mn[2] > cap_c[2]):
        return math.inf
    hi_c = min(cap[0], cap_c[0], speed.base.shape[1] - 1)
    hi_g = min(cap[1], cap_c[1], speed.base.shape[2] - 1)
    k = int(tr.type_idx[i])
    table = speed.base[k, mn[0] : hi_c + 1, mn[1] : hi_g + 1]
    # Every model's rate grows with its base at any progress, so the best base is best.
    c, g = np.unravel_index(int(np.argmax(table)), table.shape)
    return speed.slots_to_finish(k, int(mn[0] + c), int(mn[1] + g), float(tr.work[i]), 0)
