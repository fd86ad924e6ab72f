"""Simulator: edge clusters, waiting and running tasks, slots and rounds (pure Python + numpy).

Time (DESIGN §4.1): a slot holds rounds of simultaneous decisions; a round in which nothing
changes (or the round limit) ends the slot. At a slot's end running tasks progress, finished tasks
leave (their resources are free from the next round on), new tasks arrive. A task that arrives in
slot ``a`` and finishes at the end of slot ``f`` has JCT ``f + 1 - a``. When no agent can start
anything, the simulator jumps to the next slot in which something changes and accounts the
skipped slots exactly.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from envs.speed_models import SpeedModel
from envs.trace import Trace

#: Progress within this of the work counts as done (keeps 4 x 0.25 from needing a fifth slot).
DONE_TOLERANCE = 1e-9


class Status(IntEnum):
    """Life cycle of a task."""

    FUTURE = 0
    WAITING = 1
    RUNNING = 2
    DONE = 3


class InfeasibleStart(RuntimeError):
    """A start or resize that does not fit; the env's masks make it unreachable for policies."""


@dataclass
class SlotOutcome:
    """What happened between two decision points: how many slots passed and their costs."""

    slots: int = 0
    in_system: int = 0
    """Sum over the elapsed slots of the tasks in the system (team cost)."""
    attributed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per cluster: sum over the elapsed slots of the tasks attributed to it."""


def spare_capacity(free: np.ndarray, demand: np.ndarray) -> float:
    """How many copies of the minimum demand (cpu, gpu) fit the free resources (the paper's
    spare capacity, used by the spare-capacity conflict rule and the Bayes rule)."""
    ratios = [free[k] / demand[k] for k in range(2) if demand[k] > 0]
    return float(min(ratios)) if ratios else float(free[:2].sum())


class Simulator:
    """The state of the world for one episode over a trace."""

    def __init__(
        self,
        capacity: np.ndarray,
        speed: SpeedModel,
        *,
        window: int,
        elastic: bool = False,
        switch_penalty: float = 0.5,
        max_slots: int = 100_000,
        fast_forward: bool = True,
    ) -> None:
        self.capacity = np.asarray(capacity, dtype=np.int64)
        self.n = len(self.capacity)
        self.speed = speed
        self.window_size = window
        self.elastic = elastic
        self.switch_penalty = switch_penalty
        self.max_slots = max_slots
        self.fast_forward = fast_forward

    # ------------------------------------------------------------------ episode set-up
    def reset(self, trace: Trace) -> None:
        """Start an episode over ``trace`` (arrival-sorted); tasks of slot 0 arrive."""
        if trace.num_clusters != self.n:
            raise ValueError(f"trace has {trace.num_clusters} clusters, simulator {self.n}")
        self.trace = trace
        t = len(trace)
        self.status = np.zeros(t, dtype=np.int8)
        self.progress = np.zeros(t)
        self.cluster = np.full(t, -1, dtype=np.int64)
        self.alloc = np.zeros((t, 3), dtype=np.int64)
        self.start_slot = np.full(t, -1, dtype=np.int64)
        self.finish_slot = np.full(t, -1, dtype=np.int64)
        self.first_alloc = np.zeros((t, 3), dtype=np.int64)
        self.attained_gpu = np.zeros(t)
        self.run_slots = np.zeros(t, dtype=np.int64)
        self.switched = np.zeros(t, dtype=bool)
        self.free = self.capacity.copy()
        self.waiting: list[int] = []
        self.running: list[list[int]] = [[] for _ in range(self.n)]
        self.slot = 0
        self.round = 0
        self.next_arrival = 0
        self.num_done = 0
        self.busy = np.zeros((self.n, 3))  # allocated resource-slots per cluster and kind
        self.util_trace: list[tuple[int, np.ndarray]] = []
        self._windows: list[np.ndarray] | None = None
        self._visible_waiting: np.ndarray | None = None
        self._arrive()

    # ------------------------------------------------------------------ queries
    @property
    def done(self) -> bool:
        return self.num_done == len(self.trace)

    @property
    def truncated(self) -> bool:
        return self.slot >= self.max_slots and not self.done

    def windows(self) -> list[np.ndarray]:
        """Per cluster: ids of the tasks in its pending window (arrival order)."""
        if self._windows is None:
            w = np.asarray(self.waiting, dtype=np.int64)
            vis = self.trace.visible[w] if len(w) else np.zeros((0, self.n), dtype=bool)
            self._visible_waiting = vis.sum(axis=0)
            self._windows = [w[vis[:, c]][: self.window_size] for c in range(self.n)]
        return self._windows

    def waiting_visible(self) -> np.ndarray:
        """Per cluster: how many waiting tasks it can see (window plus queue)."""
        self.windows()
        assert self._visible_waiting is not None
        return self._visible_waiting

    def fits(self, c: int, task: int, cpu: int, gpu: int) -> bool:
        """Could ``task`` start on cluster ``c`` with this allocation now?"""
        tr = self.trace
        mn = tr.min_demand[task]
        cap = tr.cap[task]
        return bool(
            self.status[task] == Status.WAITING
            and tr.visible[task, c]
            and mn[0] <= cpu <= min(cap[0], self.free[c, 0])
            and mn[1] <= gpu <= min(cap[1], self.free[c, 1])
            and (self.capacity[c, 2] == 0 or mn[2] <= self.free[c, 2])
        )

    def can_decide(self) -> bool:
        """Can any agent change anything now (start a windowed task, or resize in elastic)?"""
        if self.elastic and any(self.running):
            return True
        tr = self.trace
        for c, ids in enumerate(self.windows()):
            if len(ids) == 0:
                continue
            mn = tr.min_demand[ids]
            ok = (mn[:, 0] <= self.free[c, 0]) & (mn[:, 1] <= self.free[c, 1])
            if self.capacity[c, 2] > 0:
                ok &= mn[:, 2] <= self.free[c, 2]
            if ok.any():
                return True
        return False

    def in_system(self) -> int:
        return len(self.waiting) + sum(len(r) for r in self.running)

    def attributed(self) -> np.ndarray:
        """Per cluster: tasks running on it plus waiting tasks it can see."""
        return self.waiting_visible() + np.array([len(r) for r in self.running])

    # ------------------------------------------------------------------ changes
    def start(self, c: int, task: int, cpu: int, gpu: int) -> None:
        """Start ``task`` on cluster ``c``; raises InfeasibleStart if it does not fit."""
        if not self.fits(c, task, cpu, gpu):
            raise InfeasibleStart(f"task {task} does not fit cluster {c} with ({cpu}, {gpu})")
        mem = self.trace.min_demand[task, 2] if self.capacity[c, 2] > 0 else 0
        a = np.array([cpu, gpu, mem], dtype=np.int64)
        self.free[c] -= a
        self.alloc[task] = a
        self.cluster[task] = c
        self.status[task] = Status.RUNNING
        if self.start_slot[task] < 0:
            self.start_slot[task] = self.slot
            self.first_alloc[task] = a
        elif self.progress[task] > 0:
            self.switched[task] = True  # resuming a paused task pays the switch penalty
        self.waiting.pop(bisect.bisect_left(self.waiting, task))
        self.running[c].append(task)
        self._windows = None

    def resize(self, c: int, task: int, cpu: int, gpu: int) -> bool:
        """Elastic mode: change a running task's allocation, or pause it with ``cpu == 0``.

        Returns whether anything changed (a resize to the current allocation is no change).
        """
        if not self.elastic:
            raise InfeasibleStart("resize needs elastic mode")
        if self.status[task] != Status.RUNNING or self.cluster[task] != c:
            raise InfeasibleStart(f"task {task} is not running on cluster {c}")
        old = self.alloc[task]
        if cpu == 0:
            self.free[c] += old
            self.alloc[task] = 0
            self.cluster[task] = -1
            self.status[task] = Status.WAITING
            self.running[c].remove(task)
            bisect.insort(self.waiting, task)
            self._windows = None
            return True
        mn = self.trace.min_demand[task]
        cap = self.trace.cap[task]
        if not (
            mn[0] <= cpu <= min(cap[0], self.free[c, 0] + old[0])
            and mn[1] <= gpu <= min(cap[1], self.free[c, 1] + old[1])
        ):
            raise InfeasibleStart(f"resize of task {task} to ({cpu}, {gpu}) does not fit")
        if cpu == old[0] and gpu == old[1]:
            return False
        self.free[c, 0] += old[0] - cpu
        self.free[c, 1] += old[1] - gpu
        self.alloc[task, 0] = cpu
        self.alloc[task, 1] = gpu
        self.switched[task] = True
        return True

    def end_slot(self) -> SlotOutcome:
        """End the current slot, then skip every slot in which nothing can be decided."""
        out = SlotOutcome(attributed=np.zeros(self.n, dtype=np.int64))
        self._advance(1, out)
        return self.skip_idle(out)

    def skip_idle(self, out: SlotOutcome | None = None) -> SlotOutcome:
        """Jump over slots in which no agent can decide anything, accounting them exactly."""
        if out is None:
            out = SlotOutcome(attributed=np.zeros(self.n, dtype=np.int64))
        while not self.done and not self.truncated and not self.can_decide():
            self._advance(self._quiet_slots(), out)
        return out

    def _quiet_slots(self) -> int:
        """How many slots can pass with no arrival and no finish before the last of them."""
        horizon = self.max_slots - self.slot
        if not self.fast_forward:
            return 1
        if self.next_arrival < len(self.trace):
            horizon = min(horizon, int(self.trace.arrival[self.next_arrival]) - self.slot)
        run = [t for r in self.running for t in r]
        if run:
            ids = np.asarray(run)
            types = self.trace.type_idx[ids]
            if not self.speed.stationary[types].all() or self.switched[ids].any():
                return 1
            rate = self.speed.rate(
                types, self.alloc[ids, 0], self.alloc[ids, 1], self._fraction(ids)
            )
            remaining = self.trace.work[ids] - self.progress[ids] - DONE_TOLERANCE
            positive = rate > 0
            if positive.any():
                need = np.ceil(remaining[positive] / rate[positive])
                horizon = min(horizon, int(max(1, need.min())))
        return max(1, horizon)

    def _fraction(self, ids: np.ndarray) -> np.ndarray:
        return self.progress[ids] / self.trace.work[ids]

    def _advance(self, k: int, out: SlotOutcome) -> None:
        """Let ``k`` slots pass; nothing arrives or finishes before the end of the last one."""
        out.slots += k
        out.in_system += k * self.in_system()
        out.attributed += k * self.attributed()
        run = [t for r in self.running for t in r]
        used = self.capacity - self.free
        self.busy += k * used
        self.util_trace.append((self.slot, used))
        if run:
            ids = np.asarray(run)
            rate = self.speed.rate(
                self.trace.type_idx[ids],
                self.alloc[ids, 0],
                self.alloc[ids, 1],
                self._fraction(ids),
            )
            rate = np.where(self.switched[ids], rate * (1.0 - self.switch_penalty), rate)
            self.progress[ids] += k * rate
            self.attained_gpu[ids] += k * self.alloc[ids, 1]
            self.run_slots[ids] += k
            self.switched[ids] = False
            finished = ids[self.progress[ids] >= self.trace.work[ids] - DONE_TOLERANCE]
            for task in finished:
                c = int(self.cluster[task])
                self.free[c] += self.alloc[task]
                self.running[c].remove(task)
                self.status[task] = Status.DONE
                self.finish_slot[task] = self.slot + k
            self.num_done += len(finished)
        self.slot += k
        self.round = 0
        self._arrive()

    def _arrive(self) -> None:
        arrival = self.trace.arrival
        n = len(self.trace)
        while self.next_arrival < n and arrival[self.next_arrival] <= self.slot:
            self.status[self.next_arrival] = Status.WAITING
            self.waiting.append(self.next_arrival)
            self.next_arrival += 1
            self._windows = None

    # ------------------------------------------------------------------ invariants
    def check_invariants(self) -> None:
        """DESIGN §4.1: free + allocated == capacity; no task runs twice or on two clusters."""
        allocated = np.zeros_like(self.capacity)
        seen: set[int] = set()
        for c, ids in enumerate(self.running):
            for t in ids:
                if t in seen:
                    raise AssertionError(f"task {t} runs twice")
                seen.add(t)
                if self.cluster[t] != c or self.status[t] != Status.RUNNING:
                    raise AssertionError(f"task {t} is listed on cluster {c} but is not there")
                allocated[c] += self.alloc[t]
        if not np.array_equal(self.free + allocated, self.capacity):
            raise AssertionError("free + allocated != capacity")
        if (self.free < 0).any():
            raise AssertionError("negative free resources")
        if set(self.waiting) & seen:
            raise AssertionError("a task is both waiting and running")
        if self.waiting != sorted(self.waiting):
            raise AssertionError("waiting list out of arrival order")
        done = self.status == Status.DONE
        if (self.finish_slot[done] < 0).any() or (self.finish_slot[~done] >= 0).any():
            raise AssertionError("finish slots disagree with status")
        if int(done.sum()) != self.num_done:
            raise AssertionError("done count disagrees with status")

    # ------------------------------------------------------------------ lower bound
    def lower_bound(self) -> np.ndarray:
        """Per task: slots to finish alone at its best allocation on the best visible cluster."""
        tr = self.trace
        cache: dict[tuple, int] = {}
        out = np.empty(len(tr))
        for i in range(len(tr)):
            best = math.inf
            for c in np.flatnonzero(tr.visible[i]):
                cap_c = self.capacity[c]
                key = (
                    int(tr.type_idx[i]),
                    float(tr.work[i]),
                    *tr.min_demand[i].tolist(),
                    *tr.cap[i].tolist(),
                    *cap_c.tolist(),
                )
                if key not in cache:
                    cache[key] = self._best_duration(i, cap_c)
                best = min(best, cache[key])
            out[i] = best
        return out

    def _best_duration(self, i: int, cap_c: np.ndarray) -> int:
        tr = self.trace
        mn, cap = tr.min_demand[i], tr.cap[i]
        if (mn[:2] > cap_c[:2]).any() or (cap_c[2] > 0 and mn[2] > cap_c[2]):
            return math.inf
        hi_c = min(cap[0], cap_c[0], self.speed.base.shape[1] - 1)
        hi_g = min(cap[1], cap_c[1], self.speed.base.shape[2] - 1)
        k = int(tr.type_idx[i])
        table = self.speed.base[k, mn[0] : hi_c + 1, mn[1] : hi_g + 1]
        # Every model's rate grows with its base at any progress, so the best base is best.
        c, g = np.unravel_index(int(np.argmax(table)), table.shape)
        return self.speed.slots_to_finish(k, int(mn[0] + c), int(mn[1] + g), float(tr.work[i]), 0)
