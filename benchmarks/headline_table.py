"""The headline tables of results/README.md from evaluation folders.

``python benchmarks/headline_table.py results/<preset> [results/baselines/<name> ...]`` reads each
folder's ``results.json`` (written by ``evaluate.py --policies all``: every policy in both modes)
and prints two Markdown tables:

1. the strongest fair baseline per mode (the non-elastic policies, the ``@elastic`` variants)
   and over both, each with its mean JCT and 95% CI, the best one's JCT / bound, the two lower
   bounds (per task and pooled capacity, non-elastic, averaged over episodes) and the elastic
   SRPT oracle;
2. where the folder holds the learned policy (``tapfinger``): its mean JCT and the paired
   difference to the best fair baseline, with CIs (negative: faster).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tapfinger.policies.registry import ELASTIC_SUFFIX as ELASTIC
from tapfinger.statistics import best_fair_baseline


def fmt(p: dict[str, Any]) -> str:
    lo, hi = p["mean_jct_ci"]
    return f"{p['mean_jct']:.2f} [{lo:.2f}, {hi:.2f}]"


def bounds(policies: dict[str, dict]) -> tuple[float, float]:
    """(per-task, pooled) mean bounds of the non-elastic episodes (any non-elastic policy)."""
    p = next(p for n, p in policies.items() if not n.endswith(ELASTIC))
    return p["lower_bound_per_task_mean_jct"], p["lower_bound_pooled_mean_jct"]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    loaded = []
    for arg in argv:
        path = Path(arg) / "results.json"
        if not path.is_file():
            print(f"error: {path} not found (run evaluate.py first)", file=sys.stderr)
            return 2
        loaded.append((Path(arg).name, json.loads(path.read_text())))
    print(
        "| workload | best non-elastic | best elastic | best fair (both modes) | its JCT / bound "
        "| per-task bound | pooled bound | srpt@elastic (oracle) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in loaded:
        pol = r["policies"]
        fixed, elastic = best_fair_baseline(pol, False), best_fair_baseline(pol, True)
        best = r["best_baseline"]
        per_task, pooled = bounds(pol)
        srpt = fmt(pol["srpt@elastic"]) if "srpt@elastic" in pol else "n/a"
        cells = [
            f"{fixed} {fmt(pol[fixed])}" if fixed else "n/a",
            f"{elastic} {fmt(pol[elastic])}" if elastic else "n/a",
            f"**{best}**",
            f"{pol[best]['lower_bound_ratio']:.2f}",
            f"{per_task:.2f}",
            f"{pooled:.2f}",
            srpt,
        ]
        print(f"| {name} ({r['episodes']} ep.) | " + " | ".join(cells) + " |")
    learned = [(n, r) for n, r in loaded if "tapfinger" in r["policies"]]
    if learned:
        print()
        print("| workload | tapfinger (shipped) | best fair baseline | Δ vs best [CI] | Δ % |")
        print("|---|---|---|---|---|")
        for name, r in learned:
            t, best = r["policies"]["tapfinger"], r["best_baseline"]
            lo, hi = t["diff_to_best_ci"]
            rel = 100 * t["diff_to_best"] / r["policies"][best]["mean_jct"]
            print(
                f"| {name} | {fmt(t)} | {best} {fmt(r['policies'][best])} | "
                f"{t['diff_to_best']:+.2f} [{lo:+.2f}, {hi:+.2f}] | {rel:+.1f}% |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
