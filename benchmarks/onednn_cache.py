"""Decision latency under each size of oneDNN's primitive cache, side by side.

``import tapfinger`` sets ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` (unless the user did): each value
needs its own process, since oneDNN reads it once. This script runs part 2 of
``benchmarks/train_throughput.py`` (decision latency on ``--scenario``, default paper_hetero6)
in a fresh process per capacity, the capacities interleaved ``--repeats`` times so that a
machine whose speed drifts treats them alike, and prints the median over the repeats of each
one's p50 per round: wall time and the thread's CPU time (which other processes cannot inflate).

Usage: ``python benchmarks/onednn_cache.py [--capacities 0,32,1024] [--repeats 3]``.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tapfinger.cli import OneLineParser

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


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", default="0,32,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenario", default="paper_hetero6")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
