"""Memory over a long training run: resident set size of the learner and its rollout workers.

Trains ``--scenario`` (default ``paper_synthetic``, its config's model and training sections, no
warm start) for ``--steps`` environment steps (default 1,000,000) with periodic greedy
evaluations every ``--eval-every`` steps, and samples the resident set size (``VmRSS`` in
``/proc/<pid>/status``) of the learner and of every rollout worker process after each iteration.
Prints the RSS after the warm-up (the first ``--warmup-steps`` steps: allocator pools, lazily
built caches, the first evaluation), at the end and at its peak, and the growth after warm-up
(target < 10%), per process and in total, plus a trace every ``--report-every`` steps.

Usage: ``python benchmarks/train_memory.py [--steps 1000000] [--set train.rollout_workers=1
--set train.overlap=true]`` (Linux: reads ``/proc``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envs.errors import InputError
from tapfinger.cli import OneLineParser, add_set_argument, error_line
from tapfinger.config import load_config
from tapfinger.training import Trainer


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper_synthetic")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--eval-every", type=int, default=50_000)
    parser.add_argument("--warmup-steps", type=int, default=50_000)
    parser.add_argument("--report-every", type=int, default=100_000)
    add_set_argument(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        cfg = load_config(args.scenario, args.overrides)
    except InputError as exc:
        parser.exit(error_line(exc))
    tc = cfg.train
    tc.total_steps, tc.bc_steps, tc.eval_every = args.steps, 0, args.eval_every
    samples: list[tuple[int, float, list[float]]] = []  # (step, wall s, [learner, workers...])
    print(
        f"{args.scenario}: {args.steps:,} steps, rollout_workers={tc.rollout_workers} "
        f"overlap={tc.overlap}, evaluation every {args.eval_every:,} steps "
        f"({tc.eval_episodes} episodes)",
        flush=True,
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), torch.device("cpu"), show_progress=False)
        make_collector, log = trainer._collector, trainer._log
        workers: list[int] = []
        next_report = [args.report_every]

        def collector():
            c = make_collector()
            start = c.start

            def started() -> None:
                start()
                workers.extend(p.pid for p in getattr(c, "procs", []))

            c.start = started
            return c

        def sampled_log(*a, **k):
            out = log(*a, **k)
            sizes = [rss_mb(os.getpid())] + [rss_mb(p) for p in workers]
            samples.append((trainer.global_step, time.perf_counter() - t0, sizes))
            if trainer.global_step >= next_report[0]:
                next_report[0] += args.report_every
                print(
                    f"  step {trainer.global_step:>9,}  {samples[-1][1]:7.0f} s  RSS "
                    + " + ".join(f"{s:.0f}" for s in sizes)
                    + f" = {sum(sizes):.0f} MiB",
                    flush=True,
                )
            return out

        trainer._collector = collector  # type: ignore[method-assign]
        trainer._log = sampled_log  # type: ignore[method-assign]
        summary = trainer.train()
    wall = time.perf_counter() - t0
    warm = next(s for s in samples if s[0] >= min(args.warmup_steps, samples[-1][0]))
    end = samples[-1]
    names = ["learner"] + [f"worker {i}" for i in range(len(workers))]
    print(
        f"\n{end[0]:,} steps in {wall:.0f} s ({end[0] / wall:.0f} steps/s with evaluations); "
        f"best held-out mean JCT {summary['best_eval_mean_jct']:.3f}"
    )
    print(f"RSS in MiB after warm-up (step {warm[0]:,}, {warm[1]:.0f} s), at the end, peak:")
    for i, name in enumerate([*names, "total"]):
        pick = (lambda s, i=i: s[2][i]) if name != "total" else (lambda s: sum(s[2]))
        w, e, peak = pick(warm), pick(end), max(pick(s) for s in samples)
        growth = 100.0 * (e - w) / w if w else float("nan")
        print(
            f"  {name:>9}: {w:7.0f} -> {e:7.0f}  peak {peak:7.0f}  growth {growth:+.1f}% "
            "(target < 10%)"
        )


if __name__ == "__main__":
    main()
