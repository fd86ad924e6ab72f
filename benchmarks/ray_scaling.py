"""Scaling out on Ray, measured locally: evaluation and training with 1 and 2 workers, and what
crosses the wire per training iteration.

Prints three tables, each run once, side by side in this process (run it alone: the figures are
only as good as the cores they got; the machine load is printed before and after):

1. Evaluation of ``--policies`` x ``--episodes`` on ``--scenario`` (after a one-episode warm-up
   of each way, which the figures leave out): wall time serial
   (``--workers 1``), with worker processes (``--workers 2``) and as Ray tasks on a local Ray
   of 1 and 2 CPUs, and the ratio to serial.
2. Training: env steps per second over ``--iterations`` PPO iterations (after one warm-up),
   collection in the learner's process, with 1 and 2 worker processes, and with 1 and 2 Ray
   actors (``train.overlap`` off, so the ratio is the collection's own).
3. Bytes per iteration: the weights sent (once, as one object for every actor) and the pickled
   rollout each worker returns, for the same training config, and the learner's update time
   beside the collection time: the learner is the bottleneck once ``collection / N`` drops
   below the update time (README "Scale out on Ray").

Usage: ``python benchmarks/ray_scaling.py [--scenario paper_synthetic] [--iterations 3]``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tapfinger.collectors import weights_of
from tapfinger.config import load_config
from tapfinger.evaluation import evaluate, resolve_request
from tapfinger.training import Trainer


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def timed_evaluation(scenario: str, policies: str, episodes: int, **how) -> float:
    request = resolve_request(scenario, policies=policies, episodes=episodes, **how)
    start = time.perf_counter()
    evaluate(request)
    return time.perf_counter() - start


def training(scenario: str, overrides: list[str], iterations: int) -> dict:
    """Steps per second over ``iterations`` after one warm-up, and the sizes on the wire."""
    cfg = load_config(scenario, ["train.eval_every=100000000", *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), torch.device("cpu"), show_progress=False)
        collector = trainer._collector()
        collector.start()
        steps, collect_s, update_s, rollout_bytes = 0, 0.0, 0.0, 0
        try:
            for i in range(iterations + 1):
                t0 = time.perf_counter()
                col = trainer.collect(collector)
                t1 = time.perf_counter()
                given = (col.advantages, col.returns) if col.advantages is not None else None
                trainer.update(col.rollout, col.last_value, given=given)
                t2 = time.perf_counter()
                trainer.iteration += 1
                if i == 0:
                    continue
                steps += col.steps
                collect_s += t1 - t0
                update_s += t2 - t1
                rollout_bytes = len(pickle.dumps(col))
        finally:
            collector.close()
            trainer.writer.close()
        weight_bytes = len(pickle.dumps(weights_of(trainer.net)))
    return {
        "sps": steps / (collect_s + update_s),
        "collect_s": collect_s / iterations,
        "update_s": update_s / iterations,
        "weight_bytes": weight_bytes,
        "rollout_bytes": rollout_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="paper_synthetic")
    p.add_argument("--policies", default="optimus,fifo,random")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--iterations", type=int, default=3)
    args = p.parse_args(argv)
    import ray

    print(f"load before: {load()}")
    print(f"\n## Evaluation: {args.policies} x {args.episodes} episodes on {args.scenario}\n")
    print("| how | wall s | ratio to serial |\n|---|---|---|")
    timed_evaluation(args.scenario, args.policies, 1)  # warm: imports and caches
    serial = timed_evaluation(args.scenario, args.policies, args.episodes)
    print(f"| serial | {serial:.1f} | 1.00 |")
    two = timed_evaluation(args.scenario, args.policies, args.episodes, workers=2)
    print(f"| 2 worker processes | {two:.1f} | {serial / two:.2f} |")
    for cpus in (1, 2):
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        try:
            timed_evaluation(args.scenario, args.policies, 1, ray_address="local")  # warm
            wall = timed_evaluation(
                args.scenario, args.policies, args.episodes, ray_address="local"
            )
        finally:
            ray.shutdown()
        print(f"| Ray, {cpus} CPU{'s' if cpus > 1 else ''} | {wall:.1f} | {serial / wall:.2f} |")

    print(f"\n## Training on {args.scenario} ({args.iterations} iterations after a warm-up)\n")
    print(
        "| collection | env steps/s | ratio | collect s/it | update s/it | weights B | "
        "rollout B (all workers) |"
    )
    print("|---|---|---|---|---|---|---|")
    base = None
    settings = [
        ("in the learner", [], None),
        ("1 worker process", ["train.rollout_workers=1"], None),
        ("2 worker processes", ["train.rollout_workers=2"], None),
        ("1 Ray actor", ["train.rollout_workers=1", "train.ray_address=local"], 1),
        ("2 Ray actors", ["train.rollout_workers=2", "train.ray_address=local"], 2),
    ]
    for name, overrides, cpus in settings:
        if cpus:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        try:
            r = training(args.scenario, overrides, args.iterations)
        finally:
            if cpus:
                ray.shutdown()
        base = base or r["sps"]
        print(
            f"| {name} | {r['sps']:.0f} | {r['sps'] / base:.2f} | {r['collect_s']:.2f} | "
            f"{r['update_s']:.2f} | {r['weight_bytes']:,} | {r['rollout_bytes']:,} |"
        )
    print(f"\nload after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
