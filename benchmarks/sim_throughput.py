"""Simulator throughput: rounds per second with uniformly random masked actions, and the wall
time to replay the whole Alibaba trace with a simple policy (first valid task, minimum amounts).

Run on one core: ``taskset -c 0 .venv/bin/python benchmarks/sim_throughput.py``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from envs import edge_cluster_v0


def random_valid(obs: dict, rng: np.random.Generator, starts: int) -> np.ndarray:
    """Uniform over valid tasks, then uniform over that task's feasible amounts."""
    a = np.zeros(3 * starts, dtype=np.int64)
    tasks = np.flatnonzero(obs["task_mask"])
    t = tasks[rng.integers(len(tasks))]
    cpus = np.flatnonzero(obs["cpu_mask"][t])
    gpus = np.flatnonzero(obs["gpu_mask"][t])
    a[:3] = (t, cpus[rng.integers(len(cpus))], gpus[rng.integers(len(gpus))])
    return a


def first_valid_minimum(obs: dict, starts: int) -> np.ndarray:
    """The first valid pending task with its minimum allocation (FIFO-like)."""
    a = np.zeros(3 * starts, dtype=np.int64)
    tasks = np.flatnonzero(obs["task_mask"][1:])
    if len(tasks):
        t = tasks[0] + 1
        a[:3] = (t, np.argmax(obs["cpu_mask"][t]), np.argmax(obs["gpu_mask"][t]))
    return a


def rounds_per_second(preset: str, seconds: float) -> tuple[float, int]:
    env = edge_cluster_v0.parallel_env(preset, infos="full")
    rng = np.random.default_rng(0)
    starts = env.dims.max_starts
    rounds, episodes, seed = 0, 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        obs, _ = env.reset(seed=seed)
        seed += 1
        while env.agents:
            actions = {a: random_valid(obs[a], rng, starts) for a in env.agents}
            obs, *_ = env.step(actions)
            rounds += 1
        episodes += 1
    return rounds / (time.perf_counter() - t0), episodes


def alibaba_replay() -> tuple[float, dict]:
    t0 = time.perf_counter()
    env = edge_cluster_v0.parallel_env("alibaba_openb", infos="full")
    obs, _ = env.reset(seed=0)
    starts = env.dims.max_starts
    rounds = 0
    while env.agents:
        obs, _, _, _, infos = env.step({a: first_valid_minimum(obs[a], starts) for a in env.agents})
        rounds += 1
    wall = time.perf_counter() - t0
    ep = next(iter(infos.values()))["episode"]
    return wall, {"rounds": rounds, **ep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time per preset")
    parser.add_argument("--skip-alibaba", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_getaffinity"):
        print(f"cores available to this process: {len(os.sched_getaffinity(0))}")
    for preset in ("paper_synthetic", "paper_hetero6"):
        rps, eps = rounds_per_second(preset, args.seconds)
        print(f"{preset:16s} {rps:8.0f} rounds/s  ({eps} episodes, random masked actions)")
    if not args.skip_alibaba:
        wall, ep = alibaba_replay()
        print(
            f"alibaba_openb    replay {wall:6.1f} s  ({ep['rounds']} rounds, "
            f"{int(ep['tasks_finished'])} tasks, {int(ep['slots'])} slots, "
            f"mean JCT {ep['mean_jct']:.1f} slots)"
        )


if __name__ == "__main__":
    main()
