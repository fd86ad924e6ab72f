"""TensorBoard scalars of one training iteration (DESIGN §5.3: CleanRL's tag names)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.algorithms.mappo import Rollout
from tapfinger.statistics import mean_summary


def log_iteration(
    writer: Any,
    step: int,
    stats: dict[str, float],
    ro: Rollout,
    ret: np.ndarray,
    finished: list[dict],
    charts: dict[str, float],
) -> None:
    """Losses, the critic's explained variance, ``charts/*`` and the finished episodes'
    scheduling metrics (``sched/*``) at environment step ``step``."""
    for k, v in stats.items():
        writer.add_scalar(f"losses/{k}", v, step)
    values = np.concatenate([v.reshape(-1) for v in ro.values])  # steps may differ in width
    var = np.var(ret)
    writer.add_scalar(
        "losses/explained_variance",
        float(1 - np.var(ret.reshape(-1) - values) / var) if var > 0 else 0.0,
        step,
    )
    for k, v in charts.items():
        writer.add_scalar(f"charts/{k}", v, step)
    if finished:
        m = mean_summary(finished)
        writer.add_scalar("charts/episodic_return", -m["mean_jct"] * m["tasks"], step)
        writer.add_scalar("sched/avg_jct", m["mean_jct"], step)
        writer.add_scalar("sched/p95_jct", m["p95_jct"], step)
        writer.add_scalar("sched/utilization_cpu", m["utilization_cpu"], step)
        writer.add_scalar("sched/utilization_gpu", m["utilization_gpu"], step)
        writer.add_scalar("sched/conflicts", m["conflicts"], step)
