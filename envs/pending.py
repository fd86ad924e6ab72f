"""Pending tasks as the clusters see them: per-cluster queues, pending windows, the start rule.

A waiting task sits in the queue of every cluster that can see it (arrival order); the first
``window`` tasks of a queue are that cluster's pending window. The start rule says who fits
where: :meth:`PendingTasks.fits` for one allocation, :meth:`PendingTasks.window_starts` for whole
windows at the minimum demand (the simulator's idle test and the env's masks read the latter).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import islice

import numpy as np

from envs.trace import Trace

#: Padding of task-index matrices. Padded task tables end with a "no task" row, so gathering
#: them at ``NO_TASK`` reads that row.
NO_TASK = -1
#: Minimum demand of the "no task" row: larger than any capacity, so it never fits.
NO_TASK_DEMAND = 1 << 40


def spare_capacity(free: np.ndarray, demand: np.ndarray) -> float:
    """How many copies of the minimum demand (cpu, gpu) fit the free resources (the paper's
    spare capacity, used by the spare-capacity conflict rule and the Bayes rule)."""
    ratios = [free[k] / demand[k] for k in range(2) if demand[k] > 0]
    return float(min(ratios)) if ratios else float(free[:2].sum())


@dataclass
class WindowStarts:
    """Per cluster and pending-window position (padded [N, W]): who can start there now."""

    fits: np.ndarray
    """bool: the task can start at its minimum demand."""
    hi_cpu: np.ndarray
    """int: the most CPU it may start with, ``min(cap, free)``."""
    hi_gpu: np.ndarray
    """int: the most GPU it may start with."""


class PendingTasks:
    """The waiting tasks of one episode, per cluster, with the start rule.

    ``window_version[c]`` grows whenever cluster ``c``'s window changes, so readers can rebuild
    only the windows that changed.
    """

    def __init__(self, trace: Trace, window: int, capacity: np.ndarray) -> None:
        n, t = trace.num_clusters, len(trace)
        self.trace = trace
        self.window = window
        self.mem_on = capacity[:, 2] > 0
        self.waiting: list[int] = []
        """All waiting tasks, in arrival order."""
        self.queues: list[list[int]] = [[] for _ in range(n)]
        """Per cluster: the waiting tasks it can see, in arrival order (window first)."""
        self.window_version = [0] * n
        cols = iter(np.nonzero(trace.visible)[1].tolist())
        self.visible_to = [list(islice(cols, k)) for k in trace.visible.sum(axis=1).tolist()]
        self._demand_cap = np.empty((t + 1, 5), dtype=np.int64)  # min cpu, gpu, mem; cap cpu, gpu
        self._demand_cap[:t, :3] = trace.min_demand
        self._demand_cap[:t, 3:] = trace.cap
        self._demand_cap[t] = (NO_TASK_DEMAND,) * 3 + (0, 0)
        self._demand_cap_rows = self._demand_cap.tolist()
        self._mem_on = self.mem_on.tolist()
        self._any_mem = any(self._mem_on)
        self._win = np.full((n, window), NO_TASK, dtype=np.int64)
        self._stale = False
        self._starts: WindowStarts | None = None

    # ------------------------------------------------------------------ queries
    def windows(self) -> list[list[int]]:
        """Per cluster: the tasks in its pending window (arrival order)."""
        return [q[: self.window] for q in self.queues]

    def window_matrix(self) -> np.ndarray:
        """int [N, W]: the pending windows padded with :data:`NO_TASK` (do not modify; a new
        array whenever a window changed)."""
        if self._stale:  # a fresh array: one that was handed out stays as it was
            w, pad = self.window, NO_TASK
            rows = [q[:w] if len(q) >= w else q + [pad] * (w - len(q)) for q in self.queues]
            self._win = np.array(rows, dtype=np.int64).reshape(len(rows), w)
            self._stale = False
        return self._win

    def visible_counts(self) -> list[int]:
        """Per cluster: how many waiting tasks it can see (window plus queue)."""
        return [len(q) for q in self.queues]

    def fits(self, c: int, task: int, cpu: int, gpu: int, free: np.ndarray) -> bool:
        """The start rule for one allocation of ``task`` on cluster ``c`` with ``free``
        resources: ``c`` sees the task; per kind, minimum demand <= amount <= ``min(cap,
        free)``; its memory (where modelled) fits the free memory. (A resize is a start with
        the task's own allocation counted free.)"""
        mn_c, mn_g, mn_m, cap_c, cap_g = self._demand_cap_rows[task]
        free_c, free_g, free_m = free.tolist()
        return bool(
            c in self.visible_to[task]
            and mn_c <= cpu <= min(cap_c, free_c)
            and mn_g <= gpu <= min(cap_g, free_g)
            and (not self._mem_on[c] or mn_m <= free_m)
        )

    def memory(self, task: int) -> int:
        """The task's memory demand (allocated with it where memory is modelled)."""
        return self._demand_cap_rows[task][2]

    def window_starts(self, free: np.ndarray) -> WindowStarts:
        """The start rule of :meth:`fits` at the minimum demand, for every windowed task.

        Cached until a window changes or :meth:`free_changed` is called.
        """
        if self._starts is None:
            dc = self._demand_cap[self.window_matrix()]
            hi = np.minimum(dc[..., 3:], free[:, None, :2])
            le = dc[..., :2] <= hi
            ok = le[..., 0] & le[..., 1]
            if self._any_mem:
                ok &= ~self.mem_on[:, None] | (dc[..., 2] <= free[:, None, 2])
            self._starts = WindowStarts(ok, hi[..., 0], hi[..., 1])
        return self._starts

    # ------------------------------------------------------------------ changes
    def join(self, task: int, *, arriving: bool) -> None:
        """``task`` waits (it arrives, or is paused): it joins every queue that can see it."""
        if arriving:  # arrivals come in index order, after every waiting task
            self.waiting.append(task)
        else:
            bisect.insort(self.waiting, task)
        for c in self.visible_to[task]:
            q = self.queues[c]
            if arriving:
                q.append(task)
                pos = len(q) - 1
            else:
                pos = bisect.bisect_left(q, task)
                q.insert(pos, task)
            if pos < self.window:
                self._window_changed(c)

    def leave(self, task: int) -> None:
        """``task`` starts: it leaves every queue (the next visible task slides into windows)."""
        self.waiting.pop(bisect.bisect_left(self.waiting, task))
        for c in self.visible_to[task]:
            q = self.queues[c]
            pos = bisect.bisect_left(q, task)
            q.pop(pos)
            if pos < self.window:
                self._window_changed(c)

    def free_changed(self) -> None:
        """A cluster's free resources changed: the cached :meth:`window_starts` is stale."""
        self._starts = None

    def _window_changed(self, c: int) -> None:
        self.window_version[c] += 1
        self._stale = True
        self._starts = None

    def check(self) -> None:
        """Invariant: each queue holds exactly the visible waiting tasks, in arrival order."""
        if self.waiting != sorted(self.waiting):
            raise AssertionError("waiting list out of arrival order")
        waiting = np.asarray(self.waiting, dtype=np.int64)
        visible = self.trace.visible[waiting]
        win = self.window_matrix()
        for c, q in enumerate(self.queues):
            if q != waiting[visible[:, c]].tolist():
                raise AssertionError(f"cluster {c}'s queue is not its visible waiting tasks")
            shown = win[c][win[c] != NO_TASK].tolist()
            if shown != q[: self.window]:
                raise AssertionError(f"cluster {c}'s window is not the head of its queue")
