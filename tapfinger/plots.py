"""Evaluation plots: mean JCT per policy, the JCT distribution, and utilisation over time."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from envs.scenario import RESOURCE_KINDS
from tapfinger.eval_types import Evaluation, reported_kinds, write_atomic


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_atomic(path, buf.getvalue())
    return path


def write_plots(out: Path, evaluation: Evaluation) -> list[Path]:
    """mean_jct.png (error bars = CI), jct_cdf.png (pooled per-task JCTs), utilization.png."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    results = evaluation.results
    names = list(results["policies"])
    pols = results["policies"]
    best = results["best_baseline"]
    level = round(100 * results["confidence"])
    written = []

    fig = Figure(figsize=(max(4.0, 0.8 * len(names) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    means = np.array(
        [np.nan if pols[n]["mean_jct"] is None else pols[n]["mean_jct"] for n in names]
    )
    lo = np.array([(pols[n]["mean_jct_ci"] or [m, m])[0] for n, m in zip(names, means)])
    hi = np.array([(pols[n]["mean_jct_ci"] or [m, m])[1] for n, m in zip(names, means)])
    colors = ["tab:orange" if n == best else "tab:blue" for n in names]
    # A degenerate interval [v, v] can sit a rounding error away from the mean: clip at 0.
    yerr = [np.maximum(means - lo, 0.0), np.maximum(hi - means, 0.0)]
    ax.bar(names, means, color=colors, yerr=yerr, capsize=4)
    ax.set_ylabel("mean JCT (slots)")
    ax.set_title(
        f"{results['scenario']}: mean JCT\n{level}% CI over {results['episodes']} episodes",
        fontsize="medium",
    )
    ax.tick_params(axis="x", labelrotation=30)
    written.append(_save(fig, out / "mean_jct.png"))

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for name in names:
        jct = np.sort(np.concatenate([e.jct for e in evaluation.episodes if e.policy == name]))
        if len(jct):
            ax.step(jct, np.arange(1, len(jct) + 1) / len(jct), where="post", label=name)
    ax.set_xlabel("JCT (slots)")
    ax.set_ylabel("fraction of tasks")
    ax.set_title(f"{results['scenario']}: JCT distribution, all episodes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    written.append(_save(fig, out / "jct_cdf.png"))

    kinds = reported_kinds(results)
    capacity = np.array(
        [[c[k] for k in RESOURCE_KINDS] for c in results["config"]["scenario"]["clusters"]]
    ).sum(axis=0)
    seed = results["seeds"][0]
    fig = Figure(figsize=(6.0, 1.2 + 1.8 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    for e in evaluation.episodes:
        if e.util_slots is None or e.seed != seed or len(e.util_alloc) == 0:
            continue
        for ax, kind in zip(axes, kinds):
            k = RESOURCE_KINDS.index(kind)
            frac = e.util_alloc[:, k] / capacity[k]
            ax.step(e.util_slots, [*frac, frac[-1]], where="post", label=e.policy)
    for ax, kind in zip(axes, kinds):
        ax.set_ylabel(f"{kind} allocated")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{results['scenario']}: utilisation over time, seed {seed}")
    axes[0].legend(fontsize="small", ncol=2)
    axes[-1].set_xlabel("slot")
    written.append(_save(fig, out / "utilization.png"))
    return written


__all__ = ["write_plots"]
