"""Decision latency under each size of oneDNN's primitive cache, side by side.

``import tapfinger`` sets ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` (unless the user did): each value
needs its own process, since oneDNN reads it once. This script runs part 2 of
``benchmarks/train_throughput.py`` (decision latency on ``--scenario``, default paper_hetero6)
in a fresh process per capacity, the capacities interleaved ``--repeats`` times so that a
machine whose speed drifts treats them alike, and prints the median over the repeats of each
one's p50 per round: wall time and the thread's CPU time (which other processes cannot inflate).
Then, per capacity and again in a fresh process, the memory side: the resident set size of a
process whose network decides (with gradients, as an update does) for every batch size from 1
to ``--max-batch`` observations, ``--passes`` times over, each time on a random window of
observations: batch sizes and node counts are ever new shapes for oneDNN, as in training.

Usage: ``python benchmarks/onednn_cache.py [--capacities 0,32,1024] [--repeats 3]
[--max-batch 256] [--passes 3]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
from graph_build import collect
from train_memory import rss_mb

from envs import edge_cluster_v0
from tapfinger.checkpoint import build_network
from tapfinger.cli import OneLineParser
from tapfinger.config import load_config
from tapfinger.graph import to_tensors
from tapfinger.policies.learned import model_inputs

HERE = Path(__file__).resolve().parent
ROUND = re.compile(r"whole round, \d+ agents \+ Bayes: p50\s+([\d.]+) ms")
ROUND_CPU = re.compile(r"whole round, CPU time:\s+p50\s+([\d.]+) ms")


def one_run(capacity: str, scenario: str, rounds: int) -> tuple[float, float]:
    """(wall p50, CPU p50) per round, in ms, of one fresh process with ``capacity``."""
    env = {**os.environ, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": capacity}
    out = subprocess.run(
        [sys.executable, str(HERE / "train_throughput.py"), "--skip", "sps,graph",
         "--latency-scenario", scenario, "--rounds", str(rounds)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    wall, cpu = ROUND.search(out), ROUND_CPU.search(out)
    if wall is None or cpu is None:
        raise SystemExit(f"error: no latency line in the output of train_throughput.py:\n{out}")
    return float(wall.group(1)), float(cpu.group(1))


def memory_child(scenario: str, max_batch: int, passes: int) -> None:
    """In this process: RSS (MiB) after the first pass over batch sizes and after the last."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = edge_cluster_v0.parallel_env(scenario, infos="full")
    net = build_network(env, load_config(scenario))
    pool = 4 * max_batch
    stacked = model_inputs(collect(scenario, pool))
    rng = np.random.default_rng(0)
    after = []
    for _ in range(passes):
        for b in range(1, max_batch + 1):
            # A random window: its node counts (the message-passing shapes) are new ones too.
            i = int(rng.integers(0, pool - b + 1))
            decision, _ = net.decide(to_tensors({k: v[i : i + b] for k, v in stacked.items()}))
            decision.logp_task.sum().backward()
        after.append(rss_mb(os.getpid()))
    print(f"RSS {after[0]:.1f} {after[-1]:.1f}")


def memory_run(capacity: str, scenario: str, max_batch: int, passes: int) -> tuple[float, float]:
    """(RSS after the first pass, after the last) of a fresh process with ``capacity``."""
    env = {**os.environ, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": capacity}
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", "--scenario", scenario,
         "--max-batch", str(max_batch), "--passes", str(passes)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    first, last = re.search(r"RSS ([\d.]+) ([\d.]+)", out).groups()
    return float(first), float(last)


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", default="0,32,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenario", default="paper_hetero6")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.scenario, args.max_batch, args.passes)
        return
    caps = [c.strip() for c in args.capacities.split(",") if c.strip()]
    runs: dict[str, list[tuple[float, float]]] = {c: [] for c in caps}
    for _ in range(args.repeats):
        for c in caps:
            runs[c].append(one_run(c, args.scenario, args.rounds))
    print(f"decision latency per round, {args.scenario}, median of {args.repeats} processes each")
    for c in caps:
        wall = statistics.median(w for w, _ in runs[c])
        cpu = statistics.median(u for _, u in runs[c])
        detail = ", ".join(f"{w:.2f}/{u:.2f}" for w, u in runs[c])
        print(f"  capacity {c:>5}: p50 wall {wall:5.2f} ms, CPU {cpu:5.2f} ms  (runs: {detail})")
    print(
        f"resident set size, {args.scenario}: decide + backward on batch sizes 1..{args.max_batch}"
        f", {args.passes} passes"
    )
    for c in caps:
        first, last = memory_run(c, args.scenario, args.max_batch, args.passes)
        print(
            f"  capacity {c:>5}: {first:7.1f} MiB after pass 1, {last:7.1f} MiB after pass "
            f"{args.passes} ({100 * (last / first - 1):+.1f}%)"
        )


if __name__ == "__main__":
    main()
