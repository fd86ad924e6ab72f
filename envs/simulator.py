"""Simulator: edge clusters, waiting and running tasks, slots and rounds (pure Python + numpy).

Time (DESIGN §4.1): a slot holds rounds of simultaneous decisions; a round in which nothing
changes (or the round limit) ends the slot. At a slot's end running tasks progress, finished tasks
leave (their resources are free from the next round on), new tasks arrive. A task that arrives in
slot ``a`` and finishes at the end of slot ``f`` has JCT ``f + 1 - a``. When no agent can start
anything, the simulator jumps to the next slot in which something changes and accounts the
skipped slots exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from envs.pending import PendingTasks, WindowStarts, spare_capacity
from envs.speed_models import SpeedModel
from envs.trace import Trace

#: Progress within this of the work counts as done (keeps 4 x 0.25 from needing a fifth slot).
DONE_TOLERANCE = 1e-9

#: One operation of a round: (task, cpu, gpu, is_start); is_start False resizes (cpu 0 pauses).
Op = tuple[int, int, int, bool]


class Status(IntEnum):
    """Life cycle of a task."""

    FUTURE = 0
    WAITING = 1
    RUNNING = 2
    DONE = 3


# Plain ints for the hot paths (comparing a numpy scalar with an IntEnum member is slow).
_WAITING, _RUNNING, _DONE = int(Status.WAITING), int(Status.RUNNING), int(Status.DONE)


class InfeasibleStart(RuntimeError):
    """A start or resize that does not fit; the env's masks make it unreachable for policies."""


@dataclass
class SlotOutcome:
    """What happened between two decision points: how many slots passed and their costs."""

    slots: int = 0
    in_system: int = 0  # sum over the elapsed slots of the tasks in the system (team cost)
    attributed: list[int] = field(default_factory=list)  # per cluster: its attributed tasks


@dataclass
class RoundOutcome:
    """What one round did, per cluster, and the slots that passed after it (none mid-slot)."""

    started: list[int]
    lost: list[int]  # starts that lost a conflict to another agent (no-ops)
    invalid: list[int]
    """Operations that did not fit (InfeasibleStart); the rest of that agent's sequence is void."""
    conflicts: int
    """Claims beyond the first on a contested task."""
    slot_ended: bool
    elapsed: SlotOutcome


class Simulator:
    """The state of the world for one episode over a trace.

    Every change bumps per-cluster counters (``free_version``, ``running_version`` here,
    ``pending.window_version``) so that readers can rebuild only what changed.
    """

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
        conflict_rule: str = "spare_capacity",
        max_rounds: int = 32,
    ) -> None:
        self.capacity = np.asarray(capacity, dtype=np.int64)
        self.n = len(self.capacity)
        self.speed = speed
        self.window_size = window
        self.elastic = elastic
        self.switch_penalty = switch_penalty
        self.max_slots = max_slots
        self.fast_forward = fast_forward
        self.conflict_rule = conflict_rule
        self.max_rounds = max_rounds
        self.mem_on = self.capacity[:, 2] > 0  # memory is modelled on these clusters

    # ------------------------------------------------------------------ episode set-up
    def reset(self, trace: Trace, rng: np.random.Generator | None = None) -> None:
        """Start an episode over ``trace`` (arrival-sorted); tasks of slot 0 arrive.

        ``rng`` breaks conflict ties (seeded generator; a fixed one if omitted).
        """
        if trace.num_clusters != self.n:
            raise ValueError(f"trace has {trace.num_clusters} clusters, simulator {self.n}")
        self.trace = trace
        self.rng = rng if rng is not None else np.random.default_rng(0)
        t = len(trace)
        self.status = np.zeros(t, dtype=np.int8)
        self.progress, self.last_rate = np.zeros(t), np.zeros(t)  # last_rate: work per slot
        self.cluster = np.full(t, -1, dtype=np.int64)
        self.alloc = np.zeros((t, 3), dtype=np.int64)
        self.start_slot = np.full(t, -1, dtype=np.int64)
        self.finish_slot = np.full(t, -1, dtype=np.int64)
        self.first_alloc = np.zeros((t, 3), dtype=np.int64)
        self.attained_gpu = np.zeros(t)
        self.run_slots = np.zeros(t, dtype=np.int64)
        self.switched = np.zeros(t, dtype=bool)
        self.changed_slot = np.full(t, -1, dtype=np.int64)  # last start, resize or pause
        self._arrival = trace.arrival.tolist()
        self.free = self.capacity.copy()
        self.pending = PendingTasks(trace, self.window_size, self.capacity)
        self.running: list[list[int]] = [[] for _ in range(self.n)]
        self.slot = 0
        self.round = 0
        self.next_arrival = 0
        self.num_done = 0
        self.finished: list[int] = []
        self.util_trace: list[tuple[int, np.ndarray]] = []
        """(slot, resources allocated per cluster and kind from that slot on), per change."""
        self.free_version = [0] * self.n
        self.running_version = [0] * self.n
        self._arrive()

    # ------------------------------------------------------------------ queries
    @property
    def done(self) -> bool:
        return self.num_done == len(self.trace)

    @property
    def truncated(self) -> bool:
        return self.slot >= self.max_slots and not self.done

    @property
    def waiting(self) -> list[int]:
        """All waiting tasks, in arrival order."""
        return self.pending.waiting

    def waiting_visible(self) -> np.ndarray:
        """Per cluster: how many waiting tasks it can see (window plus queue)."""
        return np.array(self.pending.visible_counts(), dtype=np.int64)

    def fits(self, c: int, task: int, cpu: int, gpu: int) -> bool:
        """Could ``task`` start on cluster ``c`` with this allocation now (it waits, and the
        start rule of :meth:`PendingTasks.fits` holds)?"""
        return bool(self.status[task] == _WAITING) and self.pending.fits(
            c, task, cpu, gpu, self.free[c]
        )

    def window_starts(self) -> WindowStarts:
        """Who can start where at the minimum demand (cached; the env's masks read it too)."""
        return self.pending.window_starts(self.free)

    def can_decide(self) -> bool:
        """Can any agent change anything now (start a windowed task, or resize in elastic)?"""
        if self.elastic and any(self.running):
            return True
        return bool(self.window_starts().fits.any())

    # ------------------------------------------------------------------ a round
    def play_round(self, plans: Sequence[Sequence[Op]]) -> RoundOutcome:
        """One round of simultaneous decisions: ``plans[c]`` is cluster ``c``'s operations.

        Several agents starting one task is a conflict; the scenario's rule picks the winner
        (``spare_capacity``: the most spare copies of the task's minimum demand, ties at random;
        ``random``: uniformly), the others' starts are no-ops. Operations apply cluster by
        cluster, in order; one that does not fit voids the rest of its agent's sequence. A round
        in which nothing changed, or the round limit, ends the slot.
        """
        n = self.n
        claims: dict[int, list[int]] = {}
        for c, plan in enumerate(plans):
            for task, _cpu, _gpu, is_start in plan:
                if is_start:
                    agents = claims.setdefault(task, [])
                    if c not in agents:  # an agent never conflicts with itself
                        agents.append(c)
        winners = {task: self._winner(task, agents) for task, agents in claims.items()}
        conflicts = sum(len(agents) - 1 for agents in claims.values())
        started, lost, invalid = [0] * n, [0] * n, [0] * n
        changes = 0
        for c, plan in enumerate(plans):
            for task, cpu, gpu, is_start in plan:
                if is_start and winners[task] != c:
                    lost[c] += 1
                    continue
                try:
                    if is_start:
                        self.start(c, task, cpu, gpu)
                        started[c] += 1
                        changes += 1
                    elif self.resize(c, task, cpu, gpu):
                        changes += 1
                except InfeasibleStart:
                    invalid[c] += 1
                    break
        self.round += 1
        ended = changes == 0 or self.round >= self.max_rounds
        elapsed = self.end_slot() if ended else SlotOutcome(attributed=[0] * n)
        return RoundOutcome(started, lost, invalid, conflicts, ended, elapsed)

    def _winner(self, task: int, agents: list[int]) -> int:
        if len(agents) == 1:
            return agents[0]
        if self.conflict_rule == "spare_capacity":
            need = self.trace.min_demand[task]
            spare = np.array([spare_capacity(self.free[c], need) for c in agents])
            best = np.flatnonzero(spare == spare.max())
            return agents[int(self.rng.choice(best))]
        return agents[int(self.rng.integers(len(agents)))]

    # ------------------------------------------------------------------ changes
    def start(self, c: int, task: int, cpu: int, gpu: int) -> None:
        """Start ``task`` on cluster ``c``; raises InfeasibleStart if it does not fit."""
        if not self.fits(c, task, cpu, gpu):
            raise InfeasibleStart(f"task {task} does not fit cluster {c} with ({cpu}, {gpu})")
        a = (cpu, gpu, self.pending.memory(task) if self.mem_on[c] else 0)
        self.free[c] -= a
        self.alloc[task] = a
        self.cluster[task] = c
        self.status[task] = _RUNNING
        if self.start_slot[task] < 0:
            self.start_slot[task] = self.slot
            self.first_alloc[task] = a
        elif self.progress[task] > 0:
            self.switched[task] = True  # resuming a paused task pays the switch penalty
        self.pending.leave(task)
        self.running[c].append(task)
        self._task_changed(c, task)

    def resize(self, c: int, task: int, cpu: int, gpu: int) -> bool:
        """Elastic mode: change a running task's allocation, or pause it with ``cpu == 0``.

        Returns whether anything changed (a resize to the current allocation is no change).
        """
        if not self.elastic:
            raise InfeasibleStart("resize needs elastic mode")
        if self.status[task] != _RUNNING or self.cluster[task] != c:
            raise InfeasibleStart(f"task {task} is not running on cluster {c}")
        old = self.alloc[task]
        if cpu == 0:
            self.free[c] += old
            self.alloc[task] = 0
            self.cluster[task] = -1
            self.status[task] = _WAITING
            self.running[c].remove(task)
            self.pending.join(task, arriving=False)
            self._task_changed(c, task)
            return True
        if not self.pending.fits(c, task, cpu, gpu, self.free[c] + old):  # the start rule
            raise InfeasibleStart(f"resize of task {task} to ({cpu}, {gpu}) does not fit")
        if cpu == old[0] and gpu == old[1]:
            return False
        self.free[c, 0] += old[0] - cpu
        self.free[c, 1] += old[1] - gpu
        self.alloc[task, 0] = cpu
        self.alloc[task, 1] = gpu
        self.switched[task] = True
        self._task_changed(c, task)
        return True

    def _task_changed(self, c: int, task: int) -> None:
        """``task``'s allocation on cluster ``c`` changed in this slot."""
        self.changed_slot[task] = self.slot
        self._cluster_changed(c)

    def _cluster_changed(self, c: int) -> None:
        """Cluster ``c``'s free resources and running set (or allocations) changed."""
        self.free_version[c] += 1
        self.running_version[c] += 1
        self.pending.free_changed()

    def end_slot(self) -> SlotOutcome:
        """End the current slot, then skip every slot in which nothing can be decided."""
        out = SlotOutcome(attributed=[0] * self.n)
        self._advance(1, out=out)
        return self.skip_idle(out)

    def skip_idle(self, out: SlotOutcome | None = None) -> SlotOutcome:
        """Jump over slots in which no agent can decide anything, accounting them exactly."""
        if out is None:
            out = SlotOutcome(attributed=[0] * self.n)
        while not self.done and not self.truncated and not self.can_decide():
            self._advance(*self._quiet_slots(), out=out)
        return out

    def _quiet_slots(self) -> tuple[int, np.ndarray | None]:
        """How many slots can pass with no arrival and no finish before the last of them, and
        the running tasks' rates when they were needed to tell (reused by :meth:`_advance`)."""
        horizon = self.max_slots - self.slot
        if not self.fast_forward:
            return 1, None
        if self.next_arrival < len(self.trace):
            horizon = min(horizon, int(self.trace.arrival[self.next_arrival]) - self.slot)
        run = [t for r in self.running for t in r]
        rate = None
        if run:
            ids = np.asarray(run)
            types = self.trace.type_idx[ids]
            if not self.speed.stationary[types].all() or self.switched[ids].any():
                return 1, None
            alloc, fraction = self.alloc[ids], self.progress[ids] / self.trace.work[ids]
            rate = self.speed.rate(types, alloc[:, 0], alloc[:, 1], fraction)
            remaining = self.trace.work[ids] - self.progress[ids] - DONE_TOLERANCE
            positive = rate > 0
            if positive.any():
                need = np.ceil(remaining[positive] / rate[positive])
                horizon = min(horizon, int(max(1, need.min())))
        return max(1, horizon), rate

    def _advance(self, k: int, rate: np.ndarray | None = None, *, out: SlotOutcome) -> None:
        """Let ``k`` slots pass; nothing arrives or finishes before the end of the last one.

        ``rate``: the running tasks' rates (cluster order), when the caller has them already.
        """
        out.slots += k
        lens = [len(r) for r in self.running]
        out.in_system += k * (len(self.waiting) + sum(lens))
        seen = self.pending.visible_counts()
        out.attributed = [x + k * (a + b) for x, a, b in zip(out.attributed, seen, lens)]
        self.util_trace.append((self.slot, self.capacity - self.free))
        run = [t for r in self.running for t in r]
        if run:
            ids = np.array(run, dtype=np.int64)
            alloc = self.alloc[ids]
            work = self.trace.work[ids]
            progress = self.progress[ids]
            if rate is None:
                types = self.trace.type_idx[ids]
                rate = self.speed.rate(types, alloc[:, 0], alloc[:, 1], progress / work)
            if self.elastic:  # only resizes and resumptions switch
                switched = self.switched[ids]
                rate = np.where(switched, rate * (1.0 - self.switch_penalty), rate)
                self.switched[ids] = False
            progress += k * rate
            self.progress[ids] = progress
            self.last_rate[ids] = rate
            self.attained_gpu[ids] += k * alloc[:, 1]
            self.run_slots[ids] += k
            finished = ids[progress >= work - DONE_TOLERANCE].tolist()
            for task in finished:
                c = int(self.cluster[task])
                self.free[c] += self.alloc[task]
                self.running[c].remove(task)
                self.status[task] = _DONE
                self.finish_slot[task] = self.slot + k
                self.finished.append(task)  # drained by the env (what finished since)
                self._cluster_changed(c)
            self.num_done += len(finished)
        self.slot += k
        self.round = 0
        self._arrive()

    def _arrive(self) -> None:
        arrival = self._arrival
        n = len(arrival)
        while self.next_arrival < n and arrival[self.next_arrival] <= self.slot:
            self.status[self.next_arrival] = _WAITING
            self.pending.join(self.next_arrival, arriving=True)
            self.next_arrival += 1

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
        self.pending.check()
        done = self.status == Status.DONE
        if (self.finish_slot[done] < 0).any() or (self.finish_slot[~done] >= 0).any():
            raise AssertionError("finish slots disagree with status")
        if int(done.sum()) != self.num_done:
            raise AssertionError("done count disagrees with status")
