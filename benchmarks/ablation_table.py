"""The ablations over their training seeds, paired on the test seeds.

``python benchmarks/ablation_table.py results/<preset> runs/ablations/<preset>_s1
runs/ablations/<preset>_s2 ...`` reads the main evaluation (``results/<preset>``: every baseline
on the test seeds) and, in each seed's ablations folder (``benchmarks/ablations.sh``), the test
evaluation of every setting's warm start (``<arch>/warm/eval``) and PPO run (``<setting>/ppo/eval``:
its ``best.pt``, chosen by the held-out seeds). Prints one Markdown row per setting found in every
seed folder: per test episode the mean over the seeds, as mean JCT with its 95% bootstrap CI, and
the paired differences (negative: faster) to the ``full`` setting, to the best fair baseline of
the main table (over both modes) and to the setting's own warm start (the RL phase's gain), with
the number of seeds whose own paired RL-gain interval lies below 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_table import aligned_jcts, main_table, mean_ci, paired

from tapfinger.statistics import bootstrap_ci

ORDER = ("full", "mlp", "nopointer", "nobayes", "multi", "mappo_gae", "ippo_gae")
WARM = {"nobayes": "full", "mappo_gae": "full", "ippo_gae": "full"}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    main_dir, seed_dirs = Path(argv[0]), [Path(a) for a in argv[1:]]
    results, best_name, seeds, best = main_table(main_dir)

    def complete(setting: str) -> bool:
        warm = WARM.get(setting, setting)
        return all(
            (d / setting / "ppo/eval/episodes.csv").is_file()
            and (d / warm / "warm/eval/episodes.csv").is_file()
            for d in seed_dirs
        )

    settings = [s for s in ORDER if complete(s)]
    if "full" not in settings:
        raise SystemExit("error: the full setting is not evaluated in every seed folder")

    def stacked(part: str, setting: str) -> np.ndarray:  # [seeds, episodes]
        return np.stack([aligned_jcts(d / setting / part, seeds, main_dir) for d in seed_dirs])

    ppo = {s: stacked("ppo/eval", s) for s in settings}
    warm = {s: stacked("warm/eval", WARM.get(s, s)) for s in settings}
    full = ppo["full"].mean(0)
    print(
        f"{results['scenario']}: best fair baseline {best_name} {best.mean():.2f}; "
        f"{len(seed_dirs)} training seeds, {len(seeds)} paired test episodes (seeds "
        f"{seeds[0]}..{seeds[-1]}); per episode the mean over the training seeds\n"
    )
    print(
        "| setting | warm start | after PPO [95% CI] | Δ vs full [CI] | Δ vs "
        f"{best_name} [CI] | RL gain over warm start [CI] | seeds with a significant RL gain |"
    )
    print("|---|---|---|---|---|---|---|")
    for s in settings:
        after, before = ppo[s].mean(0), warm[s].mean(0)
        vs_full = "—" if s == "full" else paired(after, full)
        gains = 0
        for k in range(len(seed_dirs)):
            gci = bootstrap_ci(ppo[s][k] - warm[s][k])
            gains += int(gci is not None and gci[1] < 0)
        print(
            f"| {s} | {before.mean():.2f} | {mean_ci(after)} | {vs_full} | "
            f"{paired(after, best)} | {paired(after, before)} | {gains} of {len(seed_dirs)} |"
        )
    missing = [s for s in ORDER if s not in settings]
    if missing:
        print(f"\nnot (yet) evaluated in every seed folder: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
