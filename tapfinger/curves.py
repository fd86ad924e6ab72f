"""Learning curves: plot TensorBoard scalars of one or more runs to a PNG.

``python -m tapfinger.curves RUN_DIR [RUN_DIR ...] --out curves.png`` draws, against environment
steps, the greedy held-out evaluation (``eval/tapfinger/avg_jct``) of each run with the
baselines evaluated on the same seeds as labelled flat lines (the best fair baseline solid,
oracles dotted), and the training episodes' mean JCT (``sched/avg_jct``).

The warm start (behaviour cloning, ``losses/bc_loss`` logged once per update, before PPO's step
0) is marked: the steps it took (``bc_env_steps`` of the run's ``summary.json``, else of its
``checkpoints/latest.pt``) come first on the step axis, shaded, and a line marks where PPO
starts; when they are not known, a line at step 0 marks its end. Tick labels are plain ("20k",
"1.5M"; JCTs without exponents); baselines beyond ``CLIP_FACTOR`` times the best fair one are
listed above the axis instead of stretching it.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, ScalarFormatter
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from envs.errors import ConfigError
from tapfinger.checkpoint import load_checkpoint
from tapfinger.cli import OneLineParser, error_line
from tapfinger.plots import CLIP_FACTOR
from tapfinger.policies import policy_entry


@dataclass
class RunCurves:
    """What one run's folder says for the plot."""

    name: str
    eval: list[tuple[int, float]] = field(default_factory=list)
    """(PPO step, greedy held-out mean JCT) of the learned policy."""
    train: list[tuple[int, float]] = field(default_factory=list)
    """(PPO step, mean JCT of the training episodes that ended there)."""
    baselines: dict[str, float] = field(default_factory=dict)
    """Held-out mean JCT of each baseline (its last logged value)."""
    bc_updates: int = 0
    """Behaviour-cloning updates logged (0: no warm start)."""
    bc_policy: str | None = None
    """The teacher of the warm start, from the hyperparameter table."""
    bc_env_steps: int | None = None
    """Environment steps the warm start took (None: not recorded in the folder)."""

    @property
    def offset(self) -> int:
        """Where PPO's step 0 lies on the plot's step axis (after the warm start's steps)."""
        return self.bc_env_steps or 0


def steps_label(x: float, pos: int | None = None) -> str:
    """A step count as a tick label: ``0``, ``500``, ``2.5k``, ``20k``, ``1.5M``."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f}".rstrip("0").rstrip(".") + suffix
    return f"{x:.2f}".rstrip("0").rstrip(".")


def spread(values: Sequence[float], gap: float) -> list[float]:
    """Label positions for ``values``: each value, moved up just enough that labels (in
    ascending order) lie at least ``gap`` apart; in the order of ``values``."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = list(values)
    for prev, i in itertools.pairwise(order):
        out[i] = max(values[i], out[prev] + gap)
    return out


def is_oracle(name: str) -> bool:
    """Whether the registry knows ``name`` as an oracle (unknown names count as fair)."""
    try:
        return policy_entry(name).oracle
    except ConfigError:
        return False


def _hparams(acc: EventAccumulator) -> dict[str, str]:
    """``section.key -> value`` of the run's hyperparameter table (``config.hparam_table``)."""
    tag = "hyperparameters/text_summary"
    if tag not in acc.Tags().get("tensors", []):
        return {}
    text = acc.Tensors(tag)[0].tensor_proto.string_val[0].decode("utf-8")
    rows = [line.strip("|").split("|") for line in text.splitlines()]
    return {f"{r[0]}.{r[1]}": r[2] for r in rows if len(r) == 3}


def _bc_env_steps(run: Path) -> int | None:
    summary = run / "summary.json"
    if summary.is_file():
        value = json.loads(summary.read_text()).get("bc_env_steps")
        if value is not None:
            return int(value)
    latest = run / "checkpoints" / "latest.pt"
    if latest.is_file():
        try:
            return int(load_checkpoint(latest)["counters"]["bc_env_steps"])
        except (ConfigError, KeyError):
            return None
    return None


def read_run(run: Path) -> RunCurves:
    """The curves, baselines and warm start of one run folder."""
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    out = RunCurves(run.name)

    def points(tag: str) -> list[tuple[int, float]]:
        return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in tags else []

    out.eval = points("eval/tapfinger/avg_jct")
    out.train = points("sched/avg_jct")
    for tag in tags:
        parts = tag.split("/")
        if len(parts) == 3 and parts[::2] == ["eval", "avg_jct"] and parts[1] != "tapfinger":
            out.baselines[parts[1]] = acc.Scalars(tag)[-1].value
    out.bc_updates = len(points("losses/bc_loss"))
    if out.bc_updates:
        out.bc_policy = _hparams(acc).get("train.bc_policy")
        out.bc_env_steps = _bc_env_steps(run)
    return out


def _mark_warm_start(ax: Any, run: RunCurves, color: str, label: bool) -> None:
    if not run.bc_updates:
        return
    teacher = f" from {run.bc_policy}" if run.bc_policy else ""
    text = f"warm start: BC{teacher}, {run.bc_updates} updates"
    if run.bc_env_steps:
        ax.axvspan(0, run.offset, color=color, alpha=0.08, linewidth=0)
        text += " | PPO"
    else:
        text = "end of " + text
    ax.axvline(run.offset, color=color, linestyle=":", linewidth=1.5)
    if label:
        ax.annotate(
            text,
            (run.offset, 0.98),
            xycoords=("data", "axes fraction"),
            rotation=90,
            ha="center",
            va="top",
            fontsize=7,
            color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )


def _plain_axes(ax: Any) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(steps_label))
    y = ScalarFormatter(useOffset=False)
    y.set_scientific(False)
    ax.yaxis.set_major_formatter(y)
    ax.grid(alpha=0.3)


def _draw_baselines(ax: Any, baselines: dict[str, float], top: float) -> None:
    """Flat labelled lines; those above ``top`` are listed in one note instead."""
    fair = {n: v for n, v in baselines.items() if not is_oracle(n)}
    best = min(fair, key=fair.get) if fair else None
    shown = {n: v for n, v in baselines.items() if v <= top}
    for name, value in shown.items():
        if name == best:
            style = {"color": "tab:blue", "linestyle": "-", "linewidth": 1.5}
        elif is_oracle(name):
            style = {"color": "black", "linestyle": ":", "linewidth": 1.2}
        else:
            style = {"color": "grey", "linestyle": "--", "linewidth": 1}
        ax.axhline(value, **style)
    names = sorted(shown, key=shown.get)
    positions = spread([shown[n] for n in names], 0.045 * top)
    for name, pos in zip(names, positions):
        role = " (best fair)" if name == best else " (oracle)" if is_oracle(name) else ""
        ax.annotate(
            f"{name}{role} {shown[name]:.1f}",
            (1.0, pos),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    off = sorted((n for n in baselines if n not in shown), key=baselines.get)
    if off:
        listed = ", ".join(f"{n} {baselines[n]:.1f}" for n in off)
        ax.set_title(f"off the scale: {listed}", fontsize=7, loc="right")


def plot(runs: list[Path], out: Path, title: str = "") -> Path:
    """Write the learning-curve PNG of ``runs`` to ``out``."""
    curves = [read_run(run) for run in runs]
    fig = Figure(figsize=(12, 4.2), dpi=100, layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    baselines: dict[str, float] = {}
    for i, run in enumerate(curves):
        color = f"C{i}"
        if run.eval:
            steps, values = zip(*run.eval)
            ax1.plot(
                [s + run.offset for s in steps],
                values,
                marker="o",
                color=color,
                label=f"tapfinger ({run.name})",
            )
        if run.train:
            steps, values = zip(*run.train)
            ax2.plot(
                [s + run.offset for s in steps], values, color=color, alpha=0.8, label=run.name
            )
        for ax in (ax1, ax2):
            _mark_warm_start(ax, run, color, label=True)
        for name, value in run.baselines.items():
            baselines.setdefault(name, value)
    learned = [v for run in curves for _, v in run.eval]
    fair = [v for n, v in baselines.items() if not is_oracle(n)]
    everything = learned + list(baselines.values())
    top = 1.08 * max(everything, default=1.0)
    if fair and top > CLIP_FACTOR * min(fair):
        top = max(CLIP_FACTOR * min(fair), 1.08 * max(learned, default=0.0))
    ax1.set_ylim(0, top)
    _draw_baselines(ax1, baselines, top)
    warm = any(run.bc_env_steps for run in curves)
    xlabel = "environment steps" + (" (warm start first)" if warm else "")
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("mean JCT (slots), greedy, held-out seeds")
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("mean JCT of training episodes (sampling)")
    for ax in (ax1, ax2):
        _plain_axes(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right")
    ax2.set_ylim(bottom=0)
    if title:
        fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description="Plot learning curves of training runs.")
    parser.add_argument("runs", nargs="+", help="run folders (with TensorBoard events)")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    runs = [Path(r) for r in args.runs]
    missing = [r for r in runs if not list(r.glob("events.out.tfevents.*"))]
    if missing:
        return error_line(f"no TensorBoard events in {missing[0]}")
    print(f"wrote {plot(runs, Path(args.out), args.title)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
