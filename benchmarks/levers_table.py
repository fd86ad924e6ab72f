"""RL levers against their shared warm start and the best fair baseline, paired on test seeds.

``python benchmarks/levers_table.py results/<preset> runs/levers/<preset>_s<k>`` reads the main
evaluation (``results/<preset>``: every baseline on the test seeds) and, in the levers folder of
one training seed (``benchmarks/rl_levers.sh``), the evaluation of the warm start
(``warm/eval``: ``checkpoints/warm_start.pt``) and of every variant (``<variant>/eval``: its
``best.pt``, chosen by the held-out seeds during training). Prints one Markdown row per variant:
its held-out mean JCT (from ``summary.json``: what chose its checkpoint), the test mean JCT with
its 95% bootstrap CI, the paired difference to the warm start (the RL phase's own gain) and to
the best fair baseline of the main table (over both modes), and the PPO wall time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_table import aligned_jcts, main_table, mean_ci, paired


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    main_dir, levers = Path(argv[0]), Path(argv[1])
    results, best_name, seeds, best = main_table(main_dir)

    def test_jcts(folder: Path) -> np.ndarray:
        return aligned_jcts(folder / "eval", seeds, main_dir)

    warm = test_jcts(levers / "warm")
    print(
        f"{results['scenario']} ({levers.name}): best fair baseline {best_name} "
        f"{best.mean():.2f}; warm start {warm.mean():.2f} [{paired(warm, best)} vs "
        f"{best_name}]; {len(seeds)} paired test episodes\n"
    )
    print(
        "| variant | held-out best | test mean JCT [95% CI] | Δ vs warm start [CI] | "
        f"Δ vs {best_name} [CI] | best at step | PPO wall |"
    )
    print("|---|---|---|---|---|---|---|")
    for folder in sorted(p for p in levers.iterdir() if (p / "eval").is_dir() and p.name != "warm"):
        summary = json.loads((folder / "summary.json").read_text())
        jct = test_jcts(folder)
        print(
            f"| {folder.name} | {summary['best_eval_mean_jct']:.3f} | {mean_ci(jct)} | "
            f"{paired(jct, warm)} | {paired(jct, best)} | {summary['best_step']:,} | "
            f"{summary['wall_s']:.0f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
