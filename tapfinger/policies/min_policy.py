"""`min`: the paper's floor: a random pending task at its type's minimum demand.

Source: TapFinger (Li et al., INFOCOM 2023; arXiv 2302.00571 §VI) "Min" baseline, whose official
code (``random_select_min_allocate``) makes every agent pick a uniformly random task of its
pending window and give it the task type's minimum requirement.

Adaptation: as :mod:`tapfinger.policies.random_policy` (seeded agent order, claimed tasks
excluded, only tasks whose minimum fits are drawn, ``noop`` option, up to ``max_starts`` draws
per agent in multi-task mode); the allocation is always the minimum demand.
"""

from __future__ import annotations

from tapfinger.policies.plan import Plan, min_alloc
from tapfinger.policies.random_policy import RandomStarts
from tapfinger.policies.registry import register
from tapfinger.policies.snapshot import TaskView


@register("min")
class MinPolicy(RandomStarts):
    """Random valid task at the minimum allocation."""

    def allocation(self, plan: Plan, c: int, tv: TaskView) -> tuple[int, int]:
        return min_alloc(plan, c, tv)
