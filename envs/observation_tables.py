"""Lookup tables the observation builder gathers from instead of recomputing per round.

Each table holds exactly what the direct computation gives (same operations, element by
element), so a gather from it is bit for bit the computed value.
"""

from __future__ import annotations

import numpy as np

from envs.observation import RUNNING_FEATURES, TASK_FEATURES, Dims, Exposure, columns, squash
from envs.pending import NO_TASK_DEMAND
from envs.speed_models import SpeedModel
from envs.trace import Trace

#: Columns of the per-task integer table the builder gathers raw facts from.
INT_COLUMNS = ("task_id", "arrival", "type", "min_cpu", "min_gpu", "mem", "max_cpu", "max_gpu")
INT = columns(INT_COLUMNS)
DEMAND = slice(INT["min_cpu"], INT["mem"] + 1)
CAP = slice(INT["max_cpu"], INT["max_gpu"] + 1)


def range_masks(levels: int) -> np.ndarray:
    """bool [levels + 1, levels, levels]: ``[lo, hi, l]`` is ``lo <= l <= hi``; row ``lo ==
    levels`` is all false (a task that cannot start)."""
    lv = np.arange(levels)
    out = np.zeros((levels + 1, levels, levels), dtype=bool)
    out[:levels] = (lv[None, None, :] >= lv[:, None, None]) & (
        lv[None, None, :] <= lv[None, :, None]
    )
    return out


class RunningRows:
    """Rows of running tasks' features (see RUNNING_FEATURES), filled as the regime allows."""

    def __init__(self, d: Dims, exposure: Exposure, scale: tuple[int, int]) -> None:
        self.d, self.exposure = d, exposure
        self.scale = np.array(scale)
        self.col = columns(RUNNING_FEATURES, d.types)
        if self.col["gpu"] != self.col["cpu"] + 1:
            raise RuntimeError("RunningRows writes cpu and gpu as one block")
        self.one_hot = np.zeros((d.types, d.types + len(RUNNING_FEATURES)), dtype=np.float32)
        self.one_hot[np.arange(d.types), np.arange(d.types)] = 1.0

    def __call__(
        self,
        types: np.ndarray,
        alloc: np.ndarray,
        done: np.ndarray,
        work: np.ndarray,
        rate: np.ndarray,
        run_slots: np.ndarray,
        squash8: np.ndarray,
    ) -> np.ndarray:
        """float32 [k, types + running features] (``done``: work done; ``work``: the task's
        work, read only under work clairvoyance; ``rate``: the work gained in the last slot run;
        ``squash8``: a :class:`SquashTable` of scale 8 covering ``run_slots``)."""
        col, unit = self.col, self.exposure.work_unit
        rows = self.one_hot[types]
        rows[:, col["cpu"] : col["gpu"] + 1] = alloc[:, :2] / self.scale
        rows[:, col["run_slots"]] = squash8[run_slots]
        rows[:, col["rate"]] = np.minimum(rate / unit, 1.0)
        rows[:, col["done"]] = squash(done / unit, 1.0)
        if self.exposure.work:
            rows[:, col["progress"]] = np.minimum(done / work, 1.0)
            rows[:, col["remaining"]] = squash(np.maximum(work - done, 0.0) / unit, 1.0)
        return rows

    def at_start(self, kinds: int) -> np.ndarray:
        """float32 [kinds, cpu_levels, gpu_levels, F]: the row of a task that has just started
        with (cpu, gpu): nothing done, no slot run, no rate measured yet (its ``remaining``,
        under work clairvoyance, is the task's own: written per task)."""
        d = self.d
        types, cpu, gpu = (a.ravel() for a in np.indices((kinds, d.cpu_levels, d.gpu_levels)))
        zero = np.zeros(len(types))
        squash8 = SquashTable(8.0).upto(0)
        alloc = np.stack([cpu, gpu], axis=1)
        rows = self(types, alloc, zero, zero + 1.0, zero, zero.astype(np.int64), squash8)
        rows[:, self.col["remaining"]] = 0.0
        return rows.reshape(kinds, d.cpu_levels, d.gpu_levels, -1)


class SquashTable:
    """``squash(k, scale)`` of the integers ``k >= 0``, in float32 like the direct computation;
    grows on demand."""

    def __init__(self, scale: float, size: int = 1024) -> None:
        self.scale = scale
        self.table = squash(np.arange(size, dtype=np.float32), scale)

    def upto(self, k: int) -> np.ndarray:
        """The table, covering at least ``0..k``."""
        if k >= len(self.table):
            self.table = squash(np.arange(2 * (k + 1), dtype=np.float32), self.scale)
        return self.table


def rate_scale(speed: SpeedModel) -> np.ndarray:
    """Per type: the largest base rate (rates are shown relative to it)."""
    return np.maximum(speed.base.reshape(len(speed.base), -1).max(axis=1), 1e-12)


class TaskTables:
    """Per-trace tables of task facts, each with a "no task" row at the end (read by gathering
    at :data:`~envs.pending.NO_TASK`)."""

    def __init__(
        self,
        d: Dims,
        trace: Trace,
        scale: tuple[int, int],
        rate_norm: np.ndarray,
        exposure: Exposure,
    ) -> None:
        t = len(trace)
        ints = np.empty((t + 1, len(INT_COLUMNS)), dtype=np.int64)
        ints[:t, INT["task_id"]] = trace.task_id
        ints[:t, INT["arrival"]] = trace.arrival
        ints[:t, INT["type"]] = trace.type_idx
        ints[:t, DEMAND] = trace.min_demand
        ints[:t, CAP] = trace.cap
        # A "no task" row demands more than any capacity, so its masks are all false.
        ints[t] = (-1, -1, -1, *(NO_TASK_DEMAND,) * 3, 0, 0)
        self.ints = ints
        """int64 [T + 1, INT_COLUMNS]."""
        self.demand = np.zeros((t + 1, 3), dtype=np.int64)
        """int64: the observation's ``demand`` (0 for "no task")."""
        self.demand[:t] = trace.min_demand
        self.valid = np.append(np.ones(t, dtype=np.int8), np.int8(0))
        """int8: 1 for a task, 0 for "no task" (the pending mask)."""
        self.visible = np.zeros((t + 1, d.clusters), dtype=np.int8)
        self.visible[:t] = trace.visible
        f = columns(TASK_FEATURES, d.types)
        rows = np.zeros((t + 1, d.types + len(TASK_FEATURES)), dtype=np.float32)
        rows[np.arange(t), trace.type_idx] = 1.0
        rows[:t, f["min_cpu"]] = trace.min_demand[:, 0] / scale[0]
        rows[:t, f["min_gpu"]] = trace.min_demand[:, 1] / scale[1]
        rows[:t, f["max_cpu"]] = np.minimum(trace.cap[:, 0] / scale[0], 1.0)
        rows[:t, f["max_gpu"]] = np.minimum(trace.cap[:, 1] / scale[1], 1.0)
        rows[:t, f["visible_clusters"]] = trace.visible.sum(axis=1) / d.clusters
        if exposure.speeds:
            lc = np.minimum(trace.min_demand[:, 0], d.cpu_levels - 1)
            lg = np.minimum(trace.min_demand[:, 1], d.gpu_levels - 1)
            rows[:t, f["rate_at_min"]] = rate_norm[trace.type_idx, lc, lg]
        if exposure.work:
            rows[:t, f["remaining"]] = squash(trace.work / exposure.work_unit, 1.0)
        self.pending_rows = rows
        """float32: a waiting task's features; the dynamic ones are zero (filled per build)."""
        self.work = np.append(trace.work, 0.0)
        self.types = trace.type_idx.tolist()
        self.alloc = np.zeros((t + 1, 2), dtype=np.int64)
        """int64: a running task's (cpu, gpu), as last written."""
        self.run_slots = np.zeros(t + 1, dtype=np.int64)
        """int64: a running task's slots run, as last written."""
        self.done = np.zeros(t + 1)
        """float64: a running task's work done, as last written."""
        self.rate = np.zeros(t + 1)
        """float64: a running task's observed rate, as last written."""
        self.running_rows = np.zeros((t + 1, d.types + len(RUNNING_FEATURES)), dtype=np.float32)
        """float32: a running task's features, as last written (the "no task" row stays 0)."""
