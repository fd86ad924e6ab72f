"""Evaluation statistics: per-policy means of episode metrics, with bootstrap intervals.

DESIGN §5.4. Per policy the per-episode metrics of the env (``env.episode_summary()``) are
averaged over episodes; the 95% confidence intervals are percentile bootstraps over episodes
(``scipy.stats.bootstrap``, seeded), on the mean and on the paired difference to the best
non-oracle baseline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tapfinger.eval_types import EPISODE_METRICS, EpisodeResult, EvalRequest
from tapfinger.policies import policy_entry
from tapfinger.policies.registry import ELASTIC_SUFFIX
from tapfinger.report_notes import rigid_requests, workload_notes

log = logging.getLogger(__name__)

#: Metrics that also get a bootstrap confidence interval (``<metric>_ci``).
CI_METRICS = ("mean_jct", "p95_jct", "makespan", "lower_bound_ratio")


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    Returns None when it is undefined (fewer than two values, or a missing value), and the
    degenerate interval ``(v, v)`` when all values are equal.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2 or not np.isfinite(x).all():
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=resamples,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_summary(summaries: list[dict]) -> dict[str, float]:
    """The mean of each key over episodes' ``episode_summary()`` dicts (keys of the first)."""
    return {k: float(np.mean([s[k] for s in summaries])) for k in summaries[0]}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if np.isfinite(values).all() else float("nan")


def best_fair_baseline(policies: dict[str, dict], elastic: bool | None = None) -> str | None:
    """The lowest mean JCT among the rule-based policies without privileged facts (no oracle,
    nothing learned) of results.json's ``policies``; ``elastic`` True / False keeps only the
    ``@elastic`` variants / only the others (None: both modes)."""
    candidates = [
        n
        for n, p in policies.items()
        if not p["oracle"]
        and not p["learned"]
        and math.isfinite(p["mean_jct"])
        and (elastic is None or n.endswith(ELASTIC_SUFFIX) == elastic)
    ]
    return min(candidates, key=lambda n: policies[n]["mean_jct"]) if candidates else None


def summarize(request: EvalRequest, results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """The ``policies``, ``best_baseline`` and notes sections of results.json from episode
    results (:mod:`tapfinger.report_notes`: no best baseline when nothing ever waited)."""
    ev = request.config.eval
    by_policy: dict[str, list[EpisodeResult]] = {name: [] for name in request.policies}
    for r in results:
        by_policy[r.policy].append(r)
    per_episode: dict[str, dict[str, np.ndarray]] = {}
    policies: dict[str, dict[str, Any]] = {}
    for name, runs in by_policy.items():
        runs.sort(key=lambda r: request.seeds.index(r.seed))
        values = {m: np.array([r.summary[m] for r in runs], dtype=float) for m in EPISODE_METRICS}
        # A truncated episode has no makespan (the env reports -1).
        values["makespan"] = np.where(values["makespan"] < 0, np.nan, values["makespan"])
        per_episode[name] = values
        truncated = sum(r.truncated for r in runs)
        if truncated:
            log.warning(
                "%s: %d of %d episodes hit max_slots; their JCTs cover finished tasks only",
                name,
                truncated,
                len(runs),
            )
        entry: dict[str, Any] = {
            "episodes": len(runs),
            "oracle": policy_entry(name).oracle,
            "learned": policy_entry(name).learned,
            "truncated_episodes": truncated,
        }
        for m in EPISODE_METRICS:
            entry[m] = _mean(values[m])
            if m in CI_METRICS:
                entry[f"{m}_ci"] = bootstrap_ci(
                    values[m], confidence=ev.confidence, resamples=ev.bootstrap, seed=ev.seed
                )
        policies[name] = entry
    for name, entry in policies.items():
        entry["per_episode"] = {
            "seed": list(request.seeds),
            **{m: per_episode[name][m].tolist() for m in EPISODE_METRICS},
        }
    rigid = rigid_requests(request.config.scenario, request.trace)
    idle, ties, notes = workload_notes(policies, rigid)
    best = None if idle else best_fair_baseline(policies)
    for name, entry in policies.items():
        if best is None:
            entry["diff_to_best"] = None
            entry["diff_to_best_ci"] = None
            continue
        diff = per_episode[name]["mean_jct"] - per_episode[best]["mean_jct"]
        entry["diff_to_best"] = _mean(diff)
        entry["diff_to_best_ci"] = bootstrap_ci(
            diff, confidence=ev.confidence, resamples=ev.bootstrap, seed=ev.seed
        )
    return {
        "best_baseline": best,
        "policies": policies,
        "nothing_waited": idle,
        "rigid_requests": rigid,
        "ties": ties,
        "notes": notes,
    }


__all__ = ["CI_METRICS", "bootstrap_ci", "mean_summary", "summarize"]
