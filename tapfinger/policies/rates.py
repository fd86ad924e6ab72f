"""What fair baselines learn from measurements: progress rates and task sizes per type.

Builds on :mod:`.snapshot`. Baselines that estimate durations without the oracle keys
(:mod:`.tetris`, and :mod:`.optimus` through its fitted model in :mod:`.optimus_fit`) feed
every round's snapshot to a :class:`RateTracker` (work per slot per type and allocation, from
the running tasks' work done) and a :class:`WorkHistory` (the work of finished tasks, known
once they finish), and read their estimates. Both may be kept across episodes (a baseline's
``history``, warmed on training-range episodes: :mod:`.base`).
"""

from __future__ import annotations

import numpy as np

from tapfinger.policies.snapshot import CPU, GPU, Snapshot


class RateTracker:
    """Observed progress rates per task type and allocation, from the running tasks' infos.

    Between two slots a running task whose allocation did not change gains work
    (``running_done``) at ``running_alloc``; the tracker adds that (work per slot) to its
    type's samples. Intervals that include a change (a resize, or a resume after
    a pause, which pay the switch penalty) are left out.
    """

    def __init__(self) -> None:
        self.last: dict[int, tuple[int, float, tuple[int, int], bool]] = {}
        self.samples: dict[int, dict[tuple[int, int], list[float]]] = {}
        """type -> (cpu, gpu) -> [progress gained, slots]."""
        self.version = 0

    def update(self, snap: Snapshot) -> None:
        seen: dict[int, tuple[int, float, tuple[int, int], bool]] = {}
        for runs in snap.running:
            for rv in runs:
                alloc = (int(rv.alloc[CPU]), int(rv.alloc[GPU]))
                rec = self.last.get(rv.task)
                if rec is None:
                    seen[rv.task] = (snap.slot, rv.done, alloc, rv.done > 0)
                    continue
                slot, done, old, dirty = rec
                if old != alloc:
                    seen[rv.task] = (snap.slot, rv.done, alloc, True)
                elif snap.slot > slot:
                    if not dirty:
                        self.add(rv.type, alloc, rv.done - done, snap.slot - slot)
                    seen[rv.task] = (snap.slot, rv.done, alloc, False)
                else:
                    seen[rv.task] = rec
        self.last = seen

    def add(self, type_: int, alloc: tuple[int, int], gained: float, slots: int) -> None:
        s = self.samples.setdefault(type_, {}).setdefault(alloc, [0.0, 0.0])
        s[0] += gained
        s[1] += slots
        self.version += 1

    def rate(self, type_: int, alloc: tuple[int, int]) -> float | None:
        """Mean observed rate of the type at exactly this allocation, if seen."""
        s = self.samples.get(type_, {}).get(alloc)
        if s is None or s[1] <= 0:
            return None
        return s[0] / s[1]

    def mean_rate(self, type_: int) -> float | None:
        """Mean observed rate of the type over all allocations, if any."""
        s = self.samples.get(type_)
        if not s:
            return None
        gained = sum(v[0] for v in s.values())
        slots = sum(v[1] for v in s.values())
        return gained / slots if slots > 0 else None


class WorkHistory:
    """The work of finished tasks per type, and the expected remaining work it implies.

    A task's work is unknown until it finishes (unless the regime tells it); what a scheduler
    can know is the sizes of the tasks of its type that finished before. The expected remaining
    work of a task that has done ``d`` is the mean of ``w - d`` over the finished works
    ``w > d`` of its type (the empirical mean residual work: ``1 - d`` for a fixed work of 1).
    Without such a task of its type, the pooled sizes of all types stand in; past every size
    seen, a tenth of the type's mean; with no history at all, ``prior`` work units.
    """

    def __init__(self, prior: float = 1.0) -> None:
        self.prior = float(prior)
        self.works: dict[int, list[float]] = {}
        self._sorted: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, snap: Snapshot) -> None:
        for type_, work in snap.finished:
            self.works.setdefault(type_, []).append(work)
            self._sorted.pop(type_, None)
            self._sorted.pop(-1, None)

    def _table(self, type_: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Sorted works of the type (-1: all types) and their suffix sums."""
        if type_ not in self._sorted:
            w = self.works.get(type_) if type_ >= 0 else [x for v in self.works.values() for x in v]
            if not w:
                return None
            srt = np.sort(np.asarray(w, dtype=float))
            self._sorted[type_] = (srt, np.cumsum(srt[::-1])[::-1])
        return self._sorted[type_]

    def mean(self, type_: int) -> float:
        """Mean work of the type's finished tasks (pooled, then ``prior``, without any)."""
        table = self._table(type_) or self._table(-1)
        return float(table[1][0] / len(table[0])) if table is not None else self.prior

    def remaining(self, type_: int, done: float) -> float:
        """Expected remaining work of a task of ``type_`` that has done ``done``."""
        table = self._table(type_) or self._table(-1)
        if table is None:
            return max(self.prior - done, 0.1 * self.prior)
        works, suffix = table
        i = int(np.searchsorted(works, done, side="right"))
        if i == len(works):
            return 0.1 * float(suffix[0] / len(works))
        return float(suffix[i] / (len(works) - i) - done)
