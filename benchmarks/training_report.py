"""Training report: for each run folder, the steps and wall-clock to its best checkpoint.

``python benchmarks/training_report.py runs/<run> [runs/<run> ...]`` prints one Markdown row per
run: scenario, seed, warm-start env steps, PPO env steps to the best held-out evaluation, wall
time to it (from the TensorBoard event times), the wall time to the first held-out evaluation
below every baseline evaluated beside it (the bar, on the held-out seeds), the best held-out mean
JCT, the baselines on the same held-out seeds, and the PPO throughput (median ``charts/SPS``).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def row(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text())
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    start = min(acc.Scalars(t)[0].wall_time for t in tags)
    evals = acc.Scalars("eval/tapfinger/avg_jct")
    best = min(evals, key=lambda e: e.value)
    baselines = {
        t.split("/")[1]: acc.Scalars(t)[-1].value
        for t in tags
        if t.startswith("eval/") and t.endswith("/avg_jct") and "/tapfinger/" not in t
    }
    bar_line = min(baselines.values())
    below = [e for e in evals if e.value < bar_line]
    to_bar = f"{below[0].wall_time - start:.0f} s" if below else "not reached"
    sps = statistics.median(e.value for e in acc.Scalars("charts/SPS"))
    base = ", ".join(f"{k} {v:.2f}" for k, v in sorted(baselines.items()))
    return (
        f"| {summary['scenario']} | {summary['seed']} | {summary.get('bc_env_steps', 0):,} | "
        f"{best.step:,} | {best.wall_time - start:.0f} s | {to_bar} | {best.value:.3f} | {base} | "
        f"{sps:.0f} | {summary['wall_s']:.0f} s |"
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    print(
        "| scenario | seed | warm-start env steps | PPO steps to best | wall to best | "
        "wall to bar | best held-out JCT | baselines (same seeds) | PPO SPS | total wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in argv:
        print(row(Path(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
