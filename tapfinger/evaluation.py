"""Evaluation: policies x seeds on the same traces, with bootstrap statistics, reports and plots.

DESIGN §5.4. Every policy plays the same episodes (episode ``i`` uses seed ``seed + i``, so the
same arrivals, or the same replayed trace), which makes the comparison paired. Per policy the
per-episode metrics of the env (``env.episode_summary()``) are averaged over episodes; the 95%
confidence intervals are percentile bootstraps over episodes (``scipy.stats.bootstrap``, seeded),
on the mean and on the paired difference to the best non-oracle baseline.

Episodes are independent and deterministic given their seed (a fresh env and a fresh policy per
episode, both reset with the episode's seed), so a run over several worker processes gives the
same numbers as a serial run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.errors import ConfigError, TraceError
from envs.scenario import RESOURCE_KINDS, ScenarioConfig
from envs.trace import Trace, load_trace
from tapfinger.config import ExperimentConfig, config_to_dict, load_config
from tapfinger.policies import make_policy, policy_entry, policy_names

log = logging.getLogger(__name__)

#: Version of the ``results.json`` layout (bump on incompatible changes).
SCHEMA_VERSION = 1

#: Learned policies: never the "best baseline", and left out of ``--policies all`` unless a
#: checkpoint is given.

#: Every file an evaluation writes into its output folder.
OUTPUT_FILES = (
    "results.json",
    "results.csv",
    "episodes.csv",
    "report.md",
    "mean_jct.png",
    "jct_cdf.png",
    "utilization.png",
)

#: Per-episode metrics (keys of ``env.episode_summary()``) averaged over episodes per policy.
EPISODE_METRICS = (
    "mean_jct",
    "p50_jct",
    "p95_jct",
    "p99_jct",
    "mean_waiting",
    "makespan",
    "lower_bound_mean_jct",
    "lower_bound_ratio",
    "utilization_cpu",
    "utilization_gpu",
    "utilization_mem",
    "conflicts",
    "tasks",
    "tasks_finished",
    "slots",
)

#: Metrics that also get a bootstrap confidence interval (``<metric>_ci``).
CI_METRICS = ("mean_jct", "p95_jct", "makespan", "lower_bound_ratio")


# ---------------------------------------------------------------------------- the request
@dataclass
class EvalRequest:
    """A validated evaluation: what to run and with which settings."""

    config: ExperimentConfig
    """The resolved experiment config (its ``eval`` section holds the values actually used)."""
    policies: list[str]
    """Policy names, in report order."""
    seeds: list[int]
    """One seed per episode; every policy plays every seed."""
    trace: Trace | None = None
    """The replayed trace (from ``--trace`` or the scenario's ``trace`` key), else None."""
    trace_path: str | None = None
    """Where the replayed trace came from."""
    checkpoint: str | None = None
    """Checkpoint handed to the policies that take one (the learned policy)."""
    workers: int = 1
    """Worker processes; 1 runs the episodes in this process."""


def resolve_request(
    config: str | Path,
    *,
    overrides: Sequence[str] = (),
    policies: str | Sequence[str] | None = None,
    episodes: int | None = None,
    seed: int | None = None,
    trace: str | Path | None = None,
    checkpoint: str | Path | None = None,
    workers: int = 1,
) -> EvalRequest:
    """Check every input and build the request; bad input raises an InputError (one line).

    Args:
        config: Experiment YAML path or preset name.
        overrides: ``key=value`` overrides (``--set``).
        policies: Comma-separated names, a list, ``"all"``, or None for ``eval.policies``.
        episodes: Episodes per policy; None uses ``eval.episodes``.
        seed: First seed; None uses ``eval.seed``.
        trace: A trace file replayed in every episode instead of generating tasks.
        checkpoint: Checkpoint for the policies that take one.
        workers: Worker processes.
    """
    cfg = load_config(config, list(overrides))
    where = {"episodes": "--episodes", "seed": "--seed"}
    if episodes is None:
        episodes, where["episodes"] = cfg.eval.episodes, "eval.episodes"
    if seed is None:
        seed, where["seed"] = cfg.eval.seed, "eval.seed"
    if episodes < 1:
        raise ConfigError(f"{where['episodes']} must be at least 1, got {episodes}")
    if seed < 0:
        raise ConfigError(f"{where['seed']} must be non-negative, got {seed}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise ConfigError(f"checkpoint file not found: {checkpoint}")
        checkpoint = str(Path(checkpoint).resolve())
    names = _resolve_policies(cfg, policies, checkpoint)
    scenario = cfg.scenario
    if trace is not None:
        path = Path(trace)
        if not path.is_file():
            raise TraceError(f"trace file not found: {trace}")
        # Recording the trace in the scenario sizes the env from it and saves it in the config.
        scenario = dataclasses.replace(scenario, trace=str(path.resolve()))
    loaded = None
    if scenario.trace is not None:
        if not Path(scenario.trace).is_file():
            raise TraceError(f"trace file not found: {scenario.trace}")
        loaded = load_trace(
            scenario.trace,
            num_clusters=scenario.num_clusters,
            type_names=None
            if scenario.speed_model == "trace"
            else [t.name for t in scenario.task_types],
        )
    cfg = dataclasses.replace(
        cfg,
        scenario=scenario,
        eval=dataclasses.replace(cfg.eval, policies=list(names), episodes=episodes, seed=seed),
    )
    request = EvalRequest(
        config=cfg,
        policies=names,
        seeds=[seed + i for i in range(episodes)],
        trace=loaded,
        trace_path=scenario.trace,
        checkpoint=checkpoint,
        workers=workers,
    )
    # Build the env and every policy once now, so bad input fails before any episode runs.
    env = _make_env(request.config.scenario, request.trace)
    for name in names:
        make_policy(name, env, **_policy_options(name, checkpoint))
    return request


def _resolve_policies(
    cfg: ExperimentConfig, policies: str | Sequence[str] | None, checkpoint: str | None
) -> list[str]:
    known = policy_names()
    if policies is None:
        requested = list(cfg.eval.policies)
    elif isinstance(policies, str):
        requested = [p.strip() for p in policies.split(",") if p.strip()]
    else:
        requested = list(policies)
    if requested == ["all"]:
        requested = [
            p for p in known if checkpoint is not None or not policy_entry(p).needs_checkpoint
        ]
    if not requested:
        raise ConfigError("no policies to evaluate")
    for name in requested:
        if name not in known:
            raise ConfigError(f"unknown policy '{name}' (known: {', '.join(known)})")
    # Keep the first mention of each name, in the order given.
    return list(dict.fromkeys(requested))


def _policy_options(name: str, checkpoint: str | None) -> dict[str, Any]:
    """``checkpoint=...`` for the policies that are built from one, else nothing."""
    if checkpoint is None or not policy_entry(name).needs_checkpoint:
        return {}
    return {"checkpoint": checkpoint}


def check_output_dir(out: str | Path, overwrite: bool) -> Path:
    """The output folder, refused when it already holds results and ``overwrite`` is off."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output path is not a folder: {out}")
    existing = [name for name in OUTPUT_FILES if (path / name).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"output folder {out} already holds results ({', '.join(existing)}); "
            "pass --overwrite to replace them"
        )
    return path


# ---------------------------------------------------------------------------- episodes
@dataclass(frozen=True)
class EpisodeJob:
    """One episode to play: a policy on a seed (picklable, for worker processes)."""

    policy: str
    seed: int
    scenario: ScenarioConfig
    trace: Trace | None = None
    checkpoint: str | None = None
    record_utilization: bool = False


@dataclass
class EpisodeResult:
    """What one episode produced."""

    policy: str
    seed: int
    summary: dict[str, float]
    """The env's per-episode metrics (``env.episode_summary()``)."""
    jct: np.ndarray
    """JCT of every finished task, in slots."""
    truncated: bool
    seconds: float
    """Wall time of the episode (for the run section only, never compared)."""
    util_slots: np.ndarray | None = None
    """Utilisation trace (recorded episodes only): slot where each allocation starts, plus the
    final slot at the end."""
    util_alloc: np.ndarray | None = None
    """Allocated resources summed over clusters [entries, 3], holding until the next slot."""


def _make_env(scenario: ScenarioConfig, trace: Trace | None) -> EdgeClusterEnv:
    return EdgeClusterEnv(scenario, trace=trace)


def run_episode(job: EpisodeJob) -> EpisodeResult:
    """Play one episode with a fresh env and a fresh policy, both reset with the job's seed."""
    start = time.perf_counter()
    env = _make_env(job.scenario, job.trace)
    policy = make_policy(job.policy, env, **_policy_options(job.policy, job.checkpoint))
    options = {"trace": job.trace} if job.trace is not None else None
    observations, infos = env.reset(seed=job.seed, options=options)
    policy.reset(seed=job.seed)
    while env.agents:
        actions = policy.act(observations, infos)
        observations, _, _, _, infos = env.step(actions)
    summary = dict(env.episode_summary())
    truncated = summary["tasks_finished"] < summary["tasks"]
    records = env.task_records()
    jct = records.jct[records.jct >= 0].astype(float)
    result = EpisodeResult(
        job.policy, job.seed, summary, jct, truncated, time.perf_counter() - start
    )
    if job.record_utilization:
        result.util_slots, result.util_alloc = env.utilization_trace()
    return result


def episode_jobs(request: EvalRequest) -> list[EpisodeJob]:
    """Every (policy, seed) episode; the first seed of each policy records utilisation."""
    return [
        EpisodeJob(
            policy=name,
            seed=seed,
            scenario=request.config.scenario,
            trace=request.trace,
            checkpoint=request.checkpoint,
            record_utilization=i == 0,
        )
        for name in request.policies
        for i, seed in enumerate(request.seeds)
    ]


def _init_worker() -> None:
    """One thread per worker process: the processes already share the cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def run_episodes(
    jobs: Sequence[EpisodeJob],
    workers: int = 1,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Play ``jobs`` serially or over ``workers`` processes; results in ``jobs`` order.

    Worker processes are spawned (not forked), which is safe with threads and with CUDA.
    """
    workers = min(workers, len(jobs))
    if workers <= 1:
        # One torch thread, as in the workers: the learned policy's graphs are tiny, and a
        # second intra-op thread only spins against whatever else shares the cores (measured on
        # 2 cores beside a training job: 5 paper_synthetic episodes of the shipped policy took
        # 45.0 s with torch's default two threads, 4.3 s with one).
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            results = []
            for job in jobs:
                results.append(run_episode(job))
                if on_episode is not None:
                    on_episode(results[-1])
        finally:
            torch.set_num_threads(threads)
        return results
    done: dict[int, EpisodeResult] = {}
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    try:
        futures = {pool.submit(run_episode, job): i for i, job in enumerate(jobs)}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in finished:
                done[futures[fut]] = fut.result()
                if on_episode is not None:
                    on_episode(done[futures[fut]])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [done[i] for i in range(len(jobs))]


# ---------------------------------------------------------------------------- statistics
def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    Returns None when it is undefined (fewer than two values, or a missing value), and the
    degenerate interval ``(v, v)`` when all values are equal.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2 or not np.isfinite(x).all():
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=resamples,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if np.isfinite(values).all() else float("nan")


def is_baseline(name: str) -> bool:
    """A rule-based baseline without privileged facts: a candidate for the best baseline."""
    return policy_entry(name).baseline


def summarize(request: EvalRequest, results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """The ``policies`` and ``best_baseline`` sections of results.json from episode results."""
    ev = request.config.eval
    by_policy: dict[str, list[EpisodeResult]] = {name: [] for name in request.policies}
    for r in results:
        by_policy[r.policy].append(r)
    per_episode: dict[str, dict[str, np.ndarray]] = {}
    policies: dict[str, dict[str, Any]] = {}
    for name, runs in by_policy.items():
        runs.sort(key=lambda r: request.seeds.index(r.seed))
        values = {m: np.array([r.summary[m] for r in runs], dtype=float) for m in EPISODE_METRICS}
        # A truncated episode has no makespan (the env reports -1).
        values["makespan"] = np.where(values["makespan"] < 0, np.nan, values["makespan"])
        per_episode[name] = values
        truncated = sum(r.truncated for r in runs)
        if truncated:
            log.warning(
                "%s: %d of %d episodes hit max_slots; their JCTs cover finished tasks only",
                name,
                truncated,
                len(runs),
            )
        entry: dict[str, Any] = {
            "episodes": len(runs),
            "oracle": policy_entry(name).oracle,
            "learned": policy_entry(name).learned,
            "truncated_episodes": truncated,
        }
        for m in EPISODE_METRICS:
            entry[m] = _mean(values[m])
            if m in CI_METRICS:
                entry[f"{m}_ci"] = bootstrap_ci(
                    values[m], confidence=ev.confidence, resamples=ev.bootstrap, seed=ev.seed
                )
        policies[name] = entry
    candidates = [
        n for n in request.policies if is_baseline(n) and math.isfinite(policies[n]["mean_jct"])
    ]
    best = min(candidates, key=lambda n: policies[n]["mean_jct"]) if candidates else None
    for name, entry in policies.items():
        if best is None:
            entry["diff_to_best"] = None
            entry["diff_to_best_ci"] = None
            continue
        diff = per_episode[name]["mean_jct"] - per_episode[best]["mean_jct"]
        entry["diff_to_best"] = _mean(diff)
        entry["diff_to_best_ci"] = bootstrap_ci(
            diff, confidence=ev.confidence, resamples=ev.bootstrap, seed=ev.seed
        )
    for name, entry in policies.items():
        entry["per_episode"] = {
            "seed": list(request.seeds),
            **{m: per_episode[name][m].tolist() for m in EPISODE_METRICS},
        }
    return {"best_baseline": best, "policies": policies}


# ---------------------------------------------------------------------------- one evaluation
@dataclass
class Evaluation:
    """Everything an evaluation produced: the results.json content and the raw episodes."""

    results: dict[str, Any]
    episodes: list[EpisodeResult] = field(default_factory=list)


def evaluate(
    request: EvalRequest, on_episode: Callable[[EpisodeResult], None] | None = None
) -> Evaluation:
    """Play every policy on every seed and compute the statistics."""
    start = time.perf_counter()
    jobs = episode_jobs(request)
    log.info(
        "evaluating %d policies x %d episodes on %s with %d worker(s)",
        len(request.policies),
        len(request.seeds),
        request.config.scenario.name,
        request.workers,
    )
    episodes = run_episodes(jobs, request.workers, on_episode)
    summary = summarize(request, episodes)
    cfg = request.config
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "scenario": cfg.scenario.name,
        "episodes": len(request.seeds),
        "seeds": list(request.seeds),
        "trace": request.trace_path,
        "checkpoint": request.checkpoint,
        "confidence": cfg.eval.confidence,
        "bootstrap_resamples": cfg.eval.bootstrap,
        "jct_unit": "slots",
        "slot_seconds": cfg.scenario.slot_seconds,
        **summary,
        "config": config_to_dict(cfg),
        "run": {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "workers": request.workers,
            "wall_seconds": time.perf_counter() - start,
            "policy_seconds": {
                name: sum(e.seconds for e in episodes if e.policy == name)
                for name in request.policies
            },
        },
    }
    return Evaluation(results, episodes)


# ---------------------------------------------------------------------------- writers
def _json_safe(obj: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_ci(ci: Sequence[float] | None, digits: int = 2) -> str:
    if ci is None:
        return "n/a"
    return f"[{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"


def _kinds(results: dict[str, Any]) -> list[str]:
    """Resource kinds worth reporting: those some cluster has (memory is often not modelled)."""
    clusters = results["config"]["scenario"]["clusters"]
    return [k for k in RESOURCE_KINDS if any(c[k] > 0 for c in clusters)]


def markdown_table(results: dict[str, Any]) -> str:
    """The per-policy table of the report (also printed by the CLI)."""
    kinds = _kinds(results)
    level = round(100 * results["confidence"])
    header = [
        "policy",
        "mean JCT",
        f"{level}% CI",
        "p50",
        "p95",
        "p99",
        "makespan",
        *[f"util {k}" for k in kinds],
        "JCT / bound",
        "Δ vs best",
        f"Δ {level}% CI",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    best = results["best_baseline"]
    for name, p in results["policies"].items():
        label = name
        if name == best:
            label += " (best)"
        elif p["oracle"]:
            label += " (oracle)"
        row = [
            label,
            _fmt(p["mean_jct"]),
            _fmt_ci(p["mean_jct_ci"]),
            _fmt(p["p50_jct"]),
            _fmt(p["p95_jct"]),
            _fmt(p["p99_jct"]),
            _fmt(p["makespan"], 1),
            *[_fmt(p[f"utilization_{k}"], 3) for k in kinds],
            _fmt(p["lower_bound_ratio"]),
            _fmt(p["diff_to_best"]),
            _fmt_ci(p["diff_to_best_ci"]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def report_markdown(results: dict[str, Any]) -> str:
    """The whole report.md: settings, the table, how to read it, and the plots."""
    sc = results["config"]["scenario"]
    level = round(100 * results["confidence"])
    seeds = results["seeds"]
    workload = (
        f"replayed trace `{results['trace']}`"
        if results["trace"]
        else f"{sc['num_tasks']} synthetic tasks per episode (arrival rate {sc['arrival_rate']})"
    )
    clusters = ", ".join(f"{c['cpu']} CPU / {c['gpu']} GPU" for c in sc["clusters"])
    best = results["best_baseline"]
    parts = [
        f"# Evaluation: {results['scenario']}",
        "",
        f"- clusters: {clusters}",
        f"- workload: {workload}; speed model `{sc['speed_model']}`",
        f"- {results['episodes']} paired episodes per policy (seeds {seeds[0]}..{seeds[-1]})",
        f"- best baseline (lowest mean JCT, oracles and learned policies excluded): "
        f"{best if best else 'n/a'}",
        "",
        markdown_table(results),
        "",
        f"JCTs are in slots ({results['slot_seconds']} s each). Every column is the mean over "
        f"episodes of the per-episode metric; the {level}% confidence intervals are percentile "
        f"bootstraps ({results['bootstrap_resamples']} resamples) over episodes. Δ vs best is "
        "the paired difference of mean JCT to the best baseline (positive: slower than it). "
        "JCT / bound is, per episode, the mean JCT over the mean per-task lower bound (each task "
        "alone at its best allocation on the best cluster that can see it, no waiting).",
        "",
        "![mean JCT per policy](mean_jct.png)",
        "",
        "![JCT distribution](jct_cdf.png)",
        "",
        f"![utilisation over time, seed {seeds[0]}](utilization.png)",
        "",
    ]
    return "\n".join(parts)


def results_csv(results: dict[str, Any]) -> str:
    """One row per policy: the headline numbers of results.json."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = [
        "policy",
        "episodes",
        "mean_jct",
        "mean_jct_ci_low",
        "mean_jct_ci_high",
        "p50_jct",
        "p95_jct",
        "p99_jct",
        "mean_waiting",
        "makespan",
        "utilization_cpu",
        "utilization_gpu",
        "utilization_mem",
        "lower_bound_ratio",
        "diff_to_best",
        "diff_to_best_ci_low",
        "diff_to_best_ci_high",
        "oracle",
        "best_baseline",
    ]
    w.writerow(header)
    for name, p in results["policies"].items():
        ci = p["mean_jct_ci"] or (None, None)
        dci = p["diff_to_best_ci"] or (None, None)
        row = {
            **p,
            "policy": name,
            "mean_jct_ci_low": ci[0],
            "mean_jct_ci_high": ci[1],
            "diff_to_best_ci_low": dci[0],
            "diff_to_best_ci_high": dci[1],
            "best_baseline": name == results["best_baseline"],
        }
        w.writerow(["" if row[k] is None else row[k] for k in header])
    return buf.getvalue()


def episodes_csv(results: dict[str, Any]) -> str:
    """One row per policy and episode: the env's per-episode metrics."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["policy", "seed", *EPISODE_METRICS])
    for name, p in results["policies"].items():
        ep = p["per_episode"]
        for i, seed in enumerate(ep["seed"]):
            w.writerow(
                [name, seed, *("" if ep[m][i] is None else ep[m][i] for m in EPISODE_METRICS)]
            )
    return buf.getvalue()


def write_outputs(out: str | Path, evaluation: Evaluation) -> list[Path]:
    """Write results.json, results.csv, episodes.csv, report.md and the PNG plots."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = _json_safe(evaluation.results)
    evaluation.results = results
    texts = {
        "results.json": json.dumps(results, indent=2, allow_nan=False) + "\n",
        "results.csv": results_csv(results),
        "episodes.csv": episodes_csv(results),
        "report.md": report_markdown(results),
    }
    written = []
    for name, text in texts.items():
        _write_atomic(out / name, text.encode("utf-8"))
        written.append(out / name)
    written += write_plots(out, evaluation)
    return written


# ---------------------------------------------------------------------------- plots
def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _write_atomic(path, buf.getvalue())
    return path


def write_plots(out: Path, evaluation: Evaluation) -> list[Path]:
    """mean_jct.png (error bars = CI), jct_cdf.png (pooled per-task JCTs), utilization.png."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    results = evaluation.results
    names = list(results["policies"])
    pols = results["policies"]
    best = results["best_baseline"]
    level = round(100 * results["confidence"])
    written = []

    fig = Figure(figsize=(max(4.0, 0.8 * len(names) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    means = np.array(
        [np.nan if pols[n]["mean_jct"] is None else pols[n]["mean_jct"] for n in names]
    )
    lo = np.array([(pols[n]["mean_jct_ci"] or [m, m])[0] for n, m in zip(names, means)])
    hi = np.array([(pols[n]["mean_jct_ci"] or [m, m])[1] for n, m in zip(names, means)])
    colors = ["tab:orange" if n == best else "tab:blue" for n in names]
    # A degenerate interval [v, v] can sit a rounding error away from the mean: clip at 0.
    yerr = [np.maximum(means - lo, 0.0), np.maximum(hi - means, 0.0)]
    ax.bar(names, means, color=colors, yerr=yerr, capsize=4)
    ax.set_ylabel("mean JCT (slots)")
    ax.set_title(
        f"{results['scenario']}: mean JCT\n{level}% CI over {results['episodes']} episodes",
        fontsize="medium",
    )
    ax.tick_params(axis="x", labelrotation=30)
    written.append(_save(fig, out / "mean_jct.png"))

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for name in names:
        jct = np.sort(np.concatenate([e.jct for e in evaluation.episodes if e.policy == name]))
        if len(jct):
            ax.step(jct, np.arange(1, len(jct) + 1) / len(jct), where="post", label=name)
    ax.set_xlabel("JCT (slots)")
    ax.set_ylabel("fraction of tasks")
    ax.set_title(f"{results['scenario']}: JCT distribution, all episodes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    written.append(_save(fig, out / "jct_cdf.png"))

    kinds = _kinds(results)
    capacity = np.array(
        [[c[k] for k in RESOURCE_KINDS] for c in results["config"]["scenario"]["clusters"]]
    ).sum(axis=0)
    seed = results["seeds"][0]
    fig = Figure(figsize=(6.0, 1.2 + 1.8 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    for e in evaluation.episodes:
        if e.util_slots is None or e.seed != seed or len(e.util_alloc) == 0:
            continue
        for ax, kind in zip(axes, kinds):
            k = RESOURCE_KINDS.index(kind)
            frac = e.util_alloc[:, k] / capacity[k]
            ax.step(e.util_slots, [*frac, frac[-1]], where="post", label=e.policy)
    for ax, kind in zip(axes, kinds):
        ax.set_ylabel(f"{kind} allocated")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{results['scenario']}: utilisation over time, seed {seed}")
    axes[0].legend(fontsize="small", ncol=2)
    axes[-1].set_xlabel("slot")
    written.append(_save(fig, out / "utilization.png"))
    return written


__all__ = [
    "OUTPUT_FILES",
    "SCHEMA_VERSION",
    "EpisodeJob",
    "EpisodeResult",
    "EvalRequest",
    "Evaluation",
    "bootstrap_ci",
    "check_output_dir",
    "evaluate",
    "markdown_table",
    "resolve_request",
    "run_episode",
    "run_episodes",
    "summarize",
    "write_outputs",
]
