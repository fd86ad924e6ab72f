"""What an evaluation's numbers cannot say by themselves, said in words (results.json ``notes``
and the report): a workload in which nothing ever waited (so no policy can be "best"), and
policies that tie exactly on every episode (and why, when the requests are rigid), so that a
reader does not take either for a bug.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.scenario import ScenarioConfig
from envs.trace import Trace


def rigid_requests(scenario: ScenarioConfig, trace: Trace | None) -> bool:
    """Does every task's minimum demand equal its cap (no choice of how much to give)?"""
    if trace is not None:
        return bool(np.array_equal(trace.min_demand[:, :2], trace.cap))
    return all(t.min_cpu == t.max_cpu and t.min_gpu == t.max_gpu for t in scenario.task_types)


def exact_ties(per_episode_jct: dict[str, np.ndarray]) -> list[list[str]]:
    """Groups (in table order) of two or more policies with the same mean JCT in every episode."""
    groups: list[list[str]] = []
    for name, values in per_episode_jct.items():
        for group in groups:
            if np.array_equal(per_episode_jct[group[0]], values, equal_nan=True):
                group.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def nothing_waited(policies: dict[str, dict[str, Any]]) -> bool:
    """Did no task wait in any episode under any policy?"""
    return all(
        np.nanmax(np.asarray(p["per_episode"]["mean_waiting"], dtype=float), initial=0.0) == 0.0
        for p in policies.values()
    )


def workload_notes(
    policies: dict[str, dict[str, Any]], rigid: bool
) -> tuple[bool, list[list[str]], list[str]]:
    """``(nothing waited, exact ties, notes)`` of a summarised evaluation (``policies`` with
    their ``per_episode`` arrays)."""
    idle = nothing_waited(policies)
    jct = {n: np.asarray(p["per_episode"]["mean_jct"], dtype=float) for n, p in policies.items()}
    ties = exact_ties(jct)
    notes = []
    if idle:
        notes.append(
            "No task waited in any episode under any policy: capacity exceeded demand throughout, "
            "so every JCT is the task's own run time and no policy can be better than another "
            "here; no best baseline is named."
        )
    if ties:
        listed = "; ".join(" = ".join(g) for g in ties)
        why = (
            " The requests are rigid (every task's minimum equals its cap), so policies that "
            "differ only in how much they give act alike; they can differ only in order and "
            "placement, and those that choose alike there tie."
            if rigid
            else " They made the same choices wherever it mattered."
        )
        notes.append(f"Exact ties on every episode: {listed}.{why}")
    return idle, ties, notes


__all__ = ["exact_ties", "nothing_waited", "rigid_requests", "workload_notes"]
