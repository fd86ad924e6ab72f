"""Learning curves: plot TensorBoard scalars of one or more runs to a PNG.

``python -m tapfinger.curves RUN_DIR [RUN_DIR ...] --out curves.png`` draws the greedy held-out
evaluation (``eval/tapfinger/avg_jct``) of each run against environment steps, with the
baselines evaluated on the same seeds as flat lines, and the training episodes' mean JCT
(``sched/avg_jct``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tapfinger.cli import OneLineParser, error_line


def plot(runs: list[Path], out: Path, title: str = "") -> Path:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    baselines: dict[str, float] = {}
    for run in runs:
        acc = EventAccumulator(str(run))
        acc.Reload()
        tags = acc.Tags()["scalars"]
        ev = [(e.step, e.value) for e in acc.Scalars("eval/tapfinger/avg_jct")]
        if ev:
            ax1.plot(*zip(*ev), marker="o", label=f"tapfinger ({run.name})")
        for tag in tags:
            parts = tag.split("/")
            if (
                len(parts) == 3
                and parts[0] == "eval"
                and parts[2] == "avg_jct"
                and (parts[1] != "tapfinger")
            ):
                baselines.setdefault(parts[1], acc.Scalars(tag)[-1].value)
        if "sched/avg_jct" in tags:
            tr = [(e.step, e.value) for e in acc.Scalars("sched/avg_jct")]
            ax2.plot(*zip(*tr), label=run.name, alpha=0.8)
    for name, value in sorted(baselines.items()):
        ax1.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax1.annotate(name, (0, value), fontsize=8, va="bottom")
    ax1.set_xlabel("environment steps")
    ax1.set_ylabel("mean JCT (slots), greedy, held-out seeds")
    ax1.set_yscale("log")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("environment steps")
    ax2.set_ylabel("mean JCT of training episodes (sampling)")
    ax2.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
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
