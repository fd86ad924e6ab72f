"""The learned policy over its training seeds, paired with the best fair baseline.

``python benchmarks/seed_table.py results/<preset> runs/<preset>_s1/eval runs/<preset>_s2/eval
...`` reads the main evaluation (``results/<preset>``: every policy, the shipped checkpoint as
``tapfinger``) and one evaluation per training seed (``evaluate.py --policies tapfinger
--checkpoint runs/<preset>_s<k>/checkpoints/best.pt``, the same episodes) and prints one Markdown
row per seed, the seed mean (per episode, the mean over seeds of the seed's mean JCT) and the
shipped policy: mean JCT with its 95% bootstrap CI, and the paired differences (negative: faster)
with their CIs to the best fair baseline of the main table (over both modes) and to the best
fair baseline of the learned policy's own mode (non-elastic: no ``@elastic`` variant). Refuses
evaluations whose seeds differ.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tapfinger.statistics import best_fair_baseline, bootstrap_ci


def episode_jcts(folder: Path, policy: str) -> dict[int, float]:
    """Seed -> mean JCT of ``policy`` in ``folder/episodes.csv``."""
    with (folder / "episodes.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["policy"] == policy]
    if not rows:
        raise SystemExit(f"error: {folder}/episodes.csv has no rows of {policy!r}")
    return {int(r["seed"]): float(r["mean_jct"]) for r in rows}


def main_table(main_dir: Path) -> tuple[dict, str, list[int], np.ndarray]:
    """The main evaluation's ``results.json``, its best fair baseline's name, the test seeds and
    that baseline's mean JCT per seed."""
    results = json.loads((main_dir / "results.json").read_text())
    best_name = results["best_baseline"]
    best_map = episode_jcts(main_dir, best_name)
    seeds = sorted(best_map)
    return results, best_name, seeds, np.array([best_map[s] for s in seeds])


def aligned_jcts(folder: Path, seeds: list[int], main_dir: Path, policy: str = "tapfinger"):
    """``policy``'s mean JCT per seed in ``folder``, in the order of ``seeds``; refuses an
    evaluation on other seeds than the main one's."""
    m = episode_jcts(folder, policy)
    if sorted(m) != seeds:
        raise SystemExit(f"error: {folder} was evaluated on other seeds than {main_dir}")
    return np.array([m[s] for s in seeds])


def mean_ci(jct: np.ndarray) -> str:
    """``mean [lo, hi]`` with the 95% bootstrap interval of the mean."""
    ci = bootstrap_ci(jct)
    return f"{jct.mean():.2f} " + ("n/a" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]")


def fmt_ci(ci: tuple[float, float] | None) -> str:
    return "n/a" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def paired(jct: np.ndarray, other: np.ndarray) -> str:
    diff = jct - other
    rel = 100 * diff.mean() / other.mean()
    return f"{diff.mean():+.2f} {fmt_ci(bootstrap_ci(diff))} ({rel:+.1f}%)"


def row(label: str, jct: np.ndarray, best: np.ndarray, same_mode: np.ndarray) -> str:
    return f"| {label} | {mean_ci(jct)} | {paired(jct, best)} | {paired(jct, same_mode)} |"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    main_dir, seed_dirs = Path(argv[0]), [Path(a) for a in argv[1:]]
    results, best_name, seeds, best = main_table(main_dir)
    fixed_name = best_fair_baseline(results["policies"], elastic=False)
    fixed_map = episode_jcts(main_dir, fixed_name)
    fixed = np.array([fixed_map[s] for s in seeds])
    per_seed = [aligned_jcts(d, seeds, main_dir) for d in seed_dirs]
    shipped = episode_jcts(main_dir, "tapfinger")
    print(
        f"{results['scenario']}: best fair baseline {best_name} {best.mean():.2f}, best "
        f"non-elastic {fixed_name} {fixed.mean():.2f} ({len(seeds)} paired episodes, seeds "
        f"{seeds[0]}..{seeds[-1]})\n"
    )
    print(f"| tapfinger | mean JCT [95% CI] | Δ vs {best_name} [CI] | Δ vs {fixed_name} [CI] |")
    print("|---|---|---|---|")
    for d, jct in zip(seed_dirs, per_seed):
        print(row(f"seed run `{'/'.join(d.parts[-3:-1])}`", jct, best, fixed))
    print(row(f"**mean of {len(per_seed)} seeds**", np.mean(per_seed, axis=0), best, fixed))
    print(row("shipped", np.array([shipped[s] for s in seeds]), best, fixed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
