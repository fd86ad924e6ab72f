"""Evaluation plots: mean JCT per policy and the paired difference to the best fair baseline;
``write_plots`` also writes the raw episodes' plots of :mod:`tapfinger.episode_plots`.

The two comparison plots read only results.json's ``policies`` and ``best_baseline``: the bars
are sorted by mean JCT (best first), each policy drawn by its role (learned, oracle, the best
fair baseline, another fair baseline), and an axis that would be dominated by the floors (random
and the like, often several times worse) stops at ``CLIP_FACTOR`` times the best fair baseline,
the cut bars carrying their values. The order and the styles are decided as data
(:func:`jct_bars`, :func:`diff_rows`) before anything is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tapfinger.episode_plots import plot_jct_cdf, plot_utilization, save_png
from tapfinger.eval_types import Evaluation

#: Where a comparison axis stops: this many times the best fair baseline's mean JCT (in the bar
#: plot), this many times it minus one (in the difference plot). Longer bars and rows are cut.
CLIP_FACTOR = 2.0

#: Roles of a policy in the comparison plots: bar colour, line colour (difference plot) and
#: legend text. Oracles are also hatched (bars) or hollow (difference plot).
ROLE_STYLE = {
    "learned": ("tab:red", "tab:red", "learned"),
    "best": ("tab:blue", "tab:blue", "best fair baseline"),
    "baseline": ("#9ecae1", "tab:gray", "fair baseline"),
    "oracle": ("#d9d9d9", "black", "oracle (reads hidden facts)"),
}
ORACLE_HATCH = "//"

#: File name of the paired-difference plot.
DIFF_PLOT = "jct_diff_to_best.png"


@dataclass(frozen=True)
class Bar:
    """One policy in the comparison plots: its role and the interval drawn for it."""

    name: str
    role: str
    """A key of ``ROLE_STYLE``: ``learned``, ``oracle``, ``best`` or ``baseline``."""
    oracle: bool
    value: float
    """Mean JCT (bar plot) or paired difference to the best fair baseline; NaN when missing."""
    low: float | None
    high: float | None
    """Its confidence interval (None when undefined, e.g. one episode)."""

    @property
    def label(self) -> str:
        """The name, with its role in words where it is not a plain fair baseline."""
        tags = {"learned": ["learned"], "best": ["best baseline"]}.get(self.role, [])
        if self.oracle:
            tags.append("oracle")
        return f"{self.name} ({', '.join(tags)})" if tags else self.name


def _role(p: dict[str, Any], name: str, best: str | None) -> str:
    if p["learned"]:
        return "learned"
    if p["oracle"]:
        return "oracle"
    return "best" if name == best else "baseline"


def _value(v: float | None) -> float:
    return float("nan") if v is None or not math.isfinite(v) else float(v)


def _sorted(bars: list[Bar]) -> list[Bar]:
    """Lowest value first; missing values last; ties keep the report order."""
    return sorted(
        bars, key=lambda b: (math.isnan(b.value), 0.0 if math.isnan(b.value) else b.value)
    )


def jct_bars(results: dict[str, Any]) -> list[Bar]:
    """The bars of mean_jct.png, in the order drawn: by mean JCT, best first."""
    best = results["best_baseline"]
    bars = []
    for name, p in results["policies"].items():
        ci = p["mean_jct_ci"]
        bars.append(
            Bar(
                name,
                _role(p, name, best),
                bool(p["oracle"]),
                _value(p["mean_jct"]),
                *(ci if ci is not None else (None, None)),
            )
        )
    return _sorted(bars)


def diff_rows(results: dict[str, Any]) -> list[Bar]:
    """The rows of the difference plot, top first: each policy's paired difference of mean JCT
    to the best fair baseline (``diff_to_best``, with ``diff_to_best_ci``), lowest first; no
    rows when there is no fair baseline."""
    best = results["best_baseline"]
    if best is None:
        return []
    rows = []
    for name, p in results["policies"].items():
        ci = p["diff_to_best_ci"]
        rows.append(
            Bar(
                name,
                _role(p, name, best),
                bool(p["oracle"]),
                _value(p["diff_to_best"]),
                *(ci if ci is not None else (None, None)),
            )
        )
    return _sorted(rows)


def axis_limit(values: Sequence[float], limit: float | None) -> float | None:
    """``limit`` where some of ``values`` lie beyond it (the axis is cut there), else None (the
    axis fits everything); NaNs are ignored."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    if limit is None or not math.isfinite(limit) or limit <= 0 or not finite:
        return None
    return limit if max(finite) > limit else None


def _reference(bars: Sequence[Bar]) -> float | None:
    """The best fair baseline's value, else the lowest value drawn (the scale of the cut)."""
    for b in bars:
        if b.role == "best" and math.isfinite(b.value):
            return b.value
    finite = [b.value for b in bars if math.isfinite(b.value)]
    return min(finite) if finite else None


def _legend(ax: Any, bars: Sequence[Bar]) -> None:
    from matplotlib.patches import Patch

    roles = [r for r in ROLE_STYLE if any(b.role == r for b in bars)]
    handles = [
        Patch(
            facecolor=ROLE_STYLE[r][0],
            edgecolor="black",
            hatch=ORACLE_HATCH if r == "oracle" else "",
            label=ROLE_STYLE[r][2],
        )
        for r in roles
    ]
    ax.legend(handles=handles, fontsize="x-small", loc="best", framealpha=0.9)


def plot_mean_jct(results: dict[str, Any], path: Path) -> Path:
    """mean_jct.png: sorted bars, error bars the CI, cut at ``CLIP_FACTOR`` x the best."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    bars = jct_bars(results)
    level = round(100 * results["confidence"])
    means = np.array([b.value for b in bars])
    tops = [b.high if b.high is not None else b.value for b in bars]
    ref = _reference(bars)
    limit = axis_limit(means, None if ref is None else CLIP_FACTOR * ref)
    fig = Figure(figsize=(max(4.0, 0.8 * len(bars) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(bars))
    shown = means if limit is None else np.minimum(means, limit)
    for i, b in enumerate(bars):
        ax.bar(
            i,
            0.0 if math.isnan(shown[i]) else shown[i],
            color=ROLE_STYLE[b.role][0],
            hatch=ORACLE_HATCH if b.oracle else "",
            edgecolor="black",
            linewidth=1.5 if b.role in ("best", "learned") else 0.6,
        )
        cut = limit is not None and b.value > limit
        if b.low is not None and not cut:
            # A degenerate interval [v, v] can sit a rounding error away from the mean: clip at 0.
            err = [[max(b.value - b.low, 0.0)], [max(b.high - b.value, 0.0)]]
            ax.errorbar(i, b.value, yerr=err, color="black", capsize=4, linewidth=1)
    top = (
        limit
        if limit is not None
        else 1.3 * max((t for t in tops if math.isfinite(t)), default=1.0)
    )
    ax.set_ylim(0, top)
    for i, b in enumerate(bars):
        text = "n/a" if math.isnan(b.value) else f"{b.value:.2f}"
        if limit is not None and b.value > limit:
            # A cut bar: a white gap near its top, and its value written under the gap.
            ax.plot([i - 0.4, i + 0.4], [0.9 * top, 0.93 * top], color="white", linewidth=3)
            ax.text(
                i,
                0.86 * top,
                f"{text}\n(cut)",
                ha="center",
                va="top",
                fontsize="x-small",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            )
        else:
            y = tops[i] if math.isfinite(tops[i]) else 0.0
            ax.text(
                i,
                min(y, 0.93 * top) + 0.01 * top,
                text,
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    ax.set_xticks(x, [b.label for b in bars], rotation=30, ha="right", fontsize="small")
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_ylabel("mean JCT (slots)")
    what = "the best fair baseline" if results["best_baseline"] else "the lowest"
    note = f", axis cut at {CLIP_FACTOR:g}x {what}" if limit is not None else ""
    ax.set_title(
        f"{results['scenario']}: mean JCT, lower is better\n"
        f"{level}% CI over {results['episodes']} episodes{note}",
        fontsize="medium",
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    _legend(ax, bars)
    return save_png(fig, path)


def _ci_text(b: Bar) -> str:
    if math.isnan(b.value):
        return "n/a"
    ci = "" if b.low is None else f" [{b.low:+.2f}, {b.high:+.2f}]"
    return f"{b.value:+.2f}{ci}"


def plot_diff_to_best(results: dict[str, Any], path: Path) -> Path:
    """The paired difference of each policy's mean JCT to the best fair baseline, with its CI
    (a forest plot: one row per policy, lowest first, a zero line; rows beyond the cut are
    arrows at the edge, every row's numbers written beside it)."""
    from matplotlib.figure import Figure

    rows = diff_rows(results)
    best = results["best_baseline"]
    level = round(100 * results["confidence"])
    fig = Figure(figsize=(7.0, 1.6 + 0.32 * max(len(rows), 2)), layout="constrained")
    ax = fig.add_subplot()
    if not rows:
        ax.text(
            0.5,
            0.5,
            "no fair baseline among the policies:\nno paired difference to draw",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        ax.set_title(f"{results['scenario']}: difference to the best fair baseline")
        return save_png(fig, path)
    best_mean = _value(results["policies"][best]["mean_jct"])
    # The same cut as the bars': a difference of (CLIP_FACTOR - 1) x the best's mean.
    limit = axis_limit([r.value for r in rows], (CLIP_FACTOR - 1) * best_mean)
    shown = [math.isfinite(r.value) and (limit is None or abs(r.value) <= limit) for r in rows]
    ends = [
        0.0,
        *(v for r, s in zip(rows, shown) if s for v in (r.value, r.low, r.high) if v is not None),
    ]
    span = max(ends) - min(ends)
    pad = 0.06 * span if span > 0 else 0.05 * (best_mean if best_mean > 0 else 1.0)
    lo_x, hi_x = min(ends) - pad, max(ends) + pad
    if limit is not None:
        lo_x, hi_x = max(lo_x, -limit), min(hi_x, limit)
    y = -np.arange(len(rows), dtype=float)
    for yi, r, s in zip(y, rows, shown):
        color = ROLE_STYLE[r.role][1]
        if s:
            if r.low is not None:
                ax.plot([max(r.low, lo_x), min(r.high, hi_x)], [yi, yi], color=color, linewidth=2.5)
            face = "white" if r.oracle else color
            ax.plot(
                r.value,
                yi,
                marker="D" if r.oracle else "o",
                markersize=7,
                color=color,
                markerfacecolor=face,
                markeredgewidth=1.5,
            )
        elif math.isfinite(r.value):  # beyond the cut: an arrow to the edge
            edge = hi_x if r.value > 0 else lo_x
            tail = edge - math.copysign(0.12 * (hi_x - lo_x), r.value)
            ax.annotate(
                "",
                xy=(edge, yi),
                xytext=(tail, yi),
                arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 2},
            )
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_xlim(lo_x, hi_x)
    ax.set_yticks(y, [r.label for r in rows], fontsize="small")
    ax.set_ylim(y[-1] - 0.7, 0.7)
    # Every row's numbers as right-hand tick labels (the layout makes room for those).
    numbers = ax.secondary_yaxis("right")
    numbers.set_yticks(y, [_ci_text(r) for r in rows], fontsize="x-small", family="monospace")
    numbers.tick_params(length=0)
    numbers.set_ylabel(f"difference [{level}% CI] (slots)", fontsize="x-small")
    ax.set_xlabel(f"mean JCT minus {best}'s (slots), paired by episode; negative is faster")
    if best_mean > 0:
        top = ax.secondary_xaxis(
            "top", functions=(lambda d: 100 * d / best_mean, lambda q: q * best_mean / 100)
        )
        top.set_xlabel(f"relative to {best} (%)", fontsize="small")
    note = " (arrows: beyond the axis)" if limit is not None else ""
    ax.set_title(
        f"{results['scenario']}: paired difference to {best} (best fair baseline)\n"
        f"{level}% CI over {results['episodes']} episodes{note}",
        fontsize="medium",
    )
    ax.grid(axis="x", alpha=0.3)
    return save_png(fig, path)


def write_plots(out: Path, evaluation: Evaluation) -> list[Path]:
    """mean_jct.png, jct_diff_to_best.png, jct_cdf.png (pooled per-task JCTs, policies in the
    bars' order) and utilization.png."""
    results, episodes = evaluation.results, evaluation.episodes
    return [
        plot_mean_jct(results, out / "mean_jct.png"),
        plot_diff_to_best(results, out / DIFF_PLOT),
        plot_jct_cdf(results, episodes, [b.name for b in jct_bars(results)], out / "jct_cdf.png"),
        plot_utilization(results, episodes, out / "utilization.png"),
    ]


__all__ = [
    "CLIP_FACTOR",
    "DIFF_PLOT",
    "ROLE_STYLE",
    "Bar",
    "axis_limit",
    "diff_rows",
    "jct_bars",
    "plot_diff_to_best",
    "plot_mean_jct",
    "write_plots",
]
