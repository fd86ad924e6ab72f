"""`fifo`: first in, first out: the earliest-arrived waiting task starts first, at a fixed size.

Source: the classic first-come-first-served queue of cluster schedulers (e.g. the FIFO default of
Hadoop YARN and of Kubernetes' scheduling queue), used as a baseline throughout the ML-scheduling
literature (Tiresias, NSDI 2019; Optimus, EuroSys 2018).

Adaptation: all clusters are scheduled together. Waiting tasks are taken in arrival order (ties
by task row) and each starts on the roomiest cluster whose pending window holds it and that fits
it, with a fixed allocation rule: ``alloc="min"`` (default) gives the type's minimum demand,
``alloc="cap"`` the task's per-task cap (its full request) clipped to the free resources. With
``backfill=True`` (default) a later task may start where an earlier one does not fit; with
``backfill=False`` a cluster starts nothing behind an earlier task of its window that fits
nowhere. Running tasks are never resized.
"""

from __future__ import annotations

from typing import Any

from tapfinger.policies.base import BaselinePolicy, check_choice
from tapfinger.policies.plan import Plan, min_alloc, place_in_order
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import Snapshot, TaskView


def cap_alloc(plan: Plan, c: int, tv: TaskView) -> tuple[int, int] | None:
    """The task's cap clipped to the cluster's free resources (None if its minimum does not fit)."""
    return plan.max_alloc(c, tv)


@register("fifo")
class FifoPolicy(BaselinePolicy):
    """Earliest arrival first, fixed allocation rule."""

    def __init__(self, env: Any, seed: int = 0, alloc: str = "min", backfill: bool = True) -> None:
        super().__init__(env, seed)
        self.alloc = check_choice("alloc", alloc, ("min", "cap"))
        self.backfill = bool(backfill)

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        plan = Plan(snap)
        rule = min_alloc if self.alloc == "min" else cap_alloc
        if self.backfill:
            place_in_order(plan, list(snap.pending.values()), rule)
            return plan
        blocked: set[int] = set()
        for tv in snap.pending.values():
            open_ = {c: i for c, i in tv.where.items() if c not in blocked}
            view = TaskView(**{**tv.__dict__, "where": open_})
            place_in_order(plan, [view], rule)
            if view.task not in plan.started:
                blocked.update(tv.where)
        return plan
