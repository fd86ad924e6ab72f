"""Sweeps: ``python -m tapfinger.sweep --config CONFIG --seeds 1,2,3 --set key=x,y ...``.

The grid is every combination of the ``--set`` values (comma-separated per key) times every
seed (``train.seed``). Each run is a ``train.py`` run in its own folder,
``<out>/<key=value,...>__s<seed>`` (``<out>`` defaults to ``runs/sweeps/<experiment>``), run as
one Ray task each (a local Ray, or ``--ray ADDRESS``; ``--cpus-per-run`` cores each) or, with
``--serial``, one after the other in this process. Resumable: a finished run (its
``summary.json``) is kept, a cut-off one resumes from its checkpoint, so the same command
completes a sweep that was interrupted.

The summary (``<out>/summary.md`` and ``summary.json``, also printed) has one row per setting:
the mean over seeds of each run's best held-out mean JCT (the training's own evaluation seeds,
never the test seeds), its 95% Student-t interval over the seeds, and the mean wall time: the
way the tables across training seeds are made. Test-seed tables come from ``evaluate.py`` on
the runs' ``best.pt`` (``benchmarks/seed_table.py``).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

from envs.errors import ConfigError, InputError
from tapfinger.cli import OneLineParser, error_line
from tapfinger.config import load_config
from tapfinger.ray_support import connect
from tapfinger.runs import train_main


class RunFailed(RuntimeError):
    """A run of the sweep failed; the message names its setting and seed."""


def parse_grid(settings: list[str]) -> list[list[str]]:
    """``["a=x,y", "b=1"]`` -> ``[["a=x", "b=1"], ["a=y", "b=1"]]`` (in the order given)."""
    axes = []
    for item in settings:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--set {item!r}: expected key=value[,value...]")
        axes.append([f"{key.strip()}={v.strip()}" for v in values.split(",") if v.strip()])
    return [list(p) for p in itertools.product(*axes)] if axes else [[]]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected integers like 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: expected distinct integers like 1,2,3")
    return seeds


def label(setting: list[str]) -> str:
    """A setting's folder-name label (``base`` when nothing is set)."""
    return ",".join(s.replace("/", "_") for s in setting) or "base"


def run_one(config: str, overrides: list[str], run_dir: str) -> dict[str, Any]:
    """One run of the grid: reuse a finished one, resume a cut-off one, else start it."""
    folder = Path(run_dir)
    if (folder / "summary.json").exists():
        return json.loads((folder / "summary.json").read_text())
    if (folder / "checkpoints" / "latest.pt").exists():
        return train_main(None, [], device="cpu", resume=run_dir, progress=False)
    return train_main(config, overrides, device="cpu", run_dir=run_dir, progress=False)


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds (None for fewer than two)."""
    if len(values) < 2:
        return None
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def summarize(grid: list[list[str]], seeds: list[int], results: dict[tuple, dict]) -> dict:
    rows = []
    for setting in grid:
        runs = [results[(label(setting), s)] for s in seeds]
        jct = [float(r["best_eval_mean_jct"]) for r in runs]
        rows.append(
            {
                "setting": label(setting),
                "seeds": seeds,
                "best_eval_mean_jct": jct,
                "mean": sum(jct) / len(jct),
                "ci95": t_interval(jct),
                "wall_s": sum(float(r["wall_s"]) for r in runs) / len(runs),
            }
        )
    return {"rows": rows}


def markdown(summary: dict) -> str:
    lines = [
        "| setting | held-out mean JCT, mean over seeds | 95% CI (t, over seeds) | per seed | "
        "wall s (mean) |",
        "|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        ci = "n/a" if r["ci95"] is None else f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        per = ", ".join(f"{v:.3f}" for v in r["best_eval_mean_jct"])
        lines.append(f"| {r['setting']} | {r['mean']:.3f} | {ci} | {per} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def run_sweep(
    config: str,
    seeds: list[int],
    settings: list[str],
    out: str | None = None,
    ray_address: str | None = "local",
    cpus_per_run: float = 1.0,
) -> dict:
    """Run the grid (on Ray unless ``ray_address`` is None) and write the summary."""
    cfg = load_config(config)
    grid = parse_grid(settings)
    for setting in grid:  # bad keys or values fail now, before any run
        load_config(config, [*setting, f"train.seed={seeds[0]}"])
    name = cfg.train.experiment or cfg.scenario.name
    root = Path(out or Path("runs") / "sweeps" / name).resolve()
    if Path(config).exists():  # Ray tasks may start in another folder
        config = str(Path(config).resolve())
    jobs = [
        ((label(s), seed), [*s, f"train.seed={seed}"], str(root / f"{label(s)}__s{seed}"))
        for s in grid
        for seed in seeds
    ]
    root.mkdir(parents=True, exist_ok=True)
    results: dict[tuple, dict] = {}
    if ray_address is None:
        for key, overrides, folder in jobs:
            results[key] = run_one(config, overrides, folder)
    else:
        ray, started = connect(None if ray_address == "local" else ray_address)
        try:
            remote = ray.remote(num_cpus=cpus_per_run, max_retries=0)(run_one)
            refs = {key: remote.remote(config, o, f) for key, o, f in jobs}
            for key, ref in refs.items():
                try:
                    results[key] = ray.get(ref)
                except Exception as exc:
                    cause = getattr(exc, "cause", None) or exc
                    raise RunFailed(
                        f"run {key[0]} with seed {key[1]} failed: {type(cause).__name__}: {cause}"
                    ) from None
        finally:
            if started:
                ray.shutdown()
    summary = {"config": config, "grid": grid, **summarize(grid, seeds, results)}
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    (root / "summary.md").write_text(markdown(summary) + "\n")
    summary["out"] = str(root)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tapfinger.sweep", description="Sweep seeds and settings.")
    p.add_argument("--config", required=True, help="experiment YAML or preset name")
    p.add_argument("--seeds", default="1,2,3", help="training seeds, comma-separated")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=V1,V2")
    p.add_argument("--out", help="sweep folder (default runs/sweeps/<experiment>)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--ray", default="local", metavar="ADDRESS", help="Ray cluster address")
    where.add_argument("--serial", action="store_true", help="no Ray: runs one after another")
    p.add_argument("--cpus-per-run", type=float, default=1.0)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        summary = run_sweep(
            args.config,
            parse_seeds(args.seeds),
            args.settings,
            args.out,
            None if args.serial else args.ray,
            args.cpus_per_run,
        )
    except InputError as exc:
        return error_line(exc)
    except RunFailed as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(markdown(summary))
    print(f"wrote {summary['out']}/summary.md and summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
