"""Evaluation plots of the raw episodes: the pooled JCT distribution and utilisation over time.

The comparison plots (mean JCT, paired differences) and ``write_plots`` are in
:mod:`tapfinger.plots`; both write their PNGs through :func:`save_png`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.scenario import RESOURCE_KINDS
from tapfinger.eval_types import EpisodeResult, reported_kinds, write_atomic


def save_png(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure to ``path`` as a PNG at 100 dpi (atomically)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_atomic(path, buf.getvalue())
    return path


def plot_jct_cdf(
    results: dict[str, Any], episodes: Sequence[EpisodeResult], names: Sequence[str], path: Path
) -> Path:
    """jct_cdf.png: the distribution of every finished task's JCT over all episodes, one line
    per policy, in the order (and legend order) of ``names``."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        jct = np.sort(np.concatenate([e.jct for e in episodes if e.policy == name]))
        if len(jct):
            # Ten colours, then dashed lines: no two policies look alike.
            style = {"color": f"C{i % 10}", "linestyle": "-" if i < 10 else "--"}
            ax.step(jct, np.arange(1, len(jct) + 1) / len(jct), where="post", label=name, **style)
    ax.set_xlabel("JCT (slots)")
    ax.set_ylabel("fraction of tasks")
    ax.set_title(f"{results['scenario']}: JCT distribution, all episodes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_png(fig, path)


def plot_utilization(
    results: dict[str, Any], episodes: Sequence[EpisodeResult], path: Path
) -> Path:
    """utilization.png: the allocated share of each reported resource kind over the first
    seed's episode, one line per policy."""
    from matplotlib.figure import Figure

    kinds = reported_kinds(results)
    capacity = np.array(
        [[c[k] for k in RESOURCE_KINDS] for c in results["config"]["scenario"]["clusters"]]
    ).sum(axis=0)
    seed = results["seeds"][0]
    fig = Figure(figsize=(6.0, 1.2 + 1.8 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    for e in episodes:
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
    return save_png(fig, path)


__all__ = ["plot_jct_cdf", "plot_utilization", "save_png"]
