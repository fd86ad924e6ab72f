"""Observed progress rates per task type and allocation, learned online from the running tasks.

Builds on :mod:`.snapshot`. Baselines that estimate durations without the oracle keys
(:mod:`.tetris`, and :mod:`.optimus` through its fitted model in :mod:`.optimus_fit`) feed
every round's snapshot to a :class:`RateTracker` and read its rates.
"""

from __future__ import annotations

from tapfinger.policies.snapshot import CPU, GPU, Snapshot


class RateTracker:
    """Observed progress rates per task type and allocation, from the running tasks' infos.

    Between two slots a running task whose allocation did not change gains
    ``running_progress`` at ``running_alloc``; the tracker adds that (fraction of the work per
    slot) to its type's samples. Intervals that include a change (a resize, or a resume after
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
                    seen[rv.task] = (snap.slot, rv.progress, alloc, rv.progress > 0)
                    continue
                slot, progress, old, dirty = rec
                if old != alloc:
                    seen[rv.task] = (snap.slot, rv.progress, alloc, True)
                elif snap.slot > slot:
                    if not dirty:
                        self.add(rv.type, alloc, rv.progress - progress, snap.slot - slot)
                    seen[rv.task] = (snap.slot, rv.progress, alloc, False)
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
