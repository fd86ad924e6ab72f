"""Sizes of the flat variant (envs/flat.py) per preset: the Discrete action (task, cpu, gpu),
the Box of features, and how many joint actions the exact mask allows per agent and round, on
average over the first 200 rounds of a random (masked) episode: the rest would be infeasible.

    python benchmarks/flat_sizes.py [preset ...]
"""

from __future__ import annotations

import sys

import numpy as np

from envs import edge_cluster_v0, preset_names


def measure(preset: str, rounds: int = 200) -> dict:
    env = edge_cluster_v0.parallel_env(preset, action="flat", observation="flat")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    shares, counts = [], []
    for _ in range(rounds):
        if not env.agents:
            break
        masks = [o["action_mask"] for o in obs.values()]
        shares.extend(float(m.mean()) for m in masks)
        counts.extend(int(m.sum()) for m in masks)
        acts = {a: int(rng.choice(np.flatnonzero(m))) for a, m in zip(env.agents, masks)}
        obs, *_ = env.step(acts)
    d = env.dims
    return {
        "preset": preset,
        "A x C x G": f"{d.actions} x {d.cpu_levels} x {d.gpu_levels}",
        "actions": env.flat.num_actions,
        "features": env.flat.num_features,
        "allowed per round (mean)": f"{np.mean(counts):.1f} ({100 * np.mean(shares):.3g}%)",
    }


def main(argv: list[str]) -> None:
    presets = argv or [p for p in preset_names() if p != "smoke"]
    rows = [measure(p) for p in presets]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
