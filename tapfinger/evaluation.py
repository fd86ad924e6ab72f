"""Evaluation: every policy plays the same episodes; ``evaluate`` gathers them into results.

DESIGN §5.4. Every policy plays the same episodes (episode ``i`` uses seed ``seed + i``, so the
same arrivals, or the same replayed trace), which makes the comparison paired. The statistics
over episodes are in :mod:`tapfinger.statistics`, the files written from them in
:mod:`tapfinger.reports` and :mod:`tapfinger.plots`.

Episodes are independent and deterministic given their seed (a fresh env and a fresh policy per
episode, both reset with the episode's seed), so a run over several worker processes gives the
same numbers as a serial run. Each policy's scenario (its elastic variant, an oracle's infos)
and warm state (what a learning baseline knows from training-range episodes) come from
:mod:`tapfinger.playing`.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envs.errors import ConfigError
from envs.trace import load_trace
from tapfinger.config import ExperimentConfig, config_to_dict, load_config
from tapfinger.eval_types import (
    OUTPUT_FILES,
    SCHEMA_VERSION,
    EpisodeFailed,
    EpisodeResult,
    EpisodeSpec,
    EvalRequest,
    Evaluation,
)
from tapfinger.playing import make_env, play_episode, policy_options, policy_scenario, warm_state
from tapfinger.policies import make_policy, policy_entry, policy_names
from tapfinger.policies.registry import ELASTIC_SUFFIX
from tapfinger.ray_evaluation import run_episodes_on_ray
from tapfinger.ray_support import require_ray
from tapfinger.statistics import summarize

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- the request
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
    elastic_checkpoint: str | Path | None = None,
    ray_address: str | None = None,
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
        elastic_checkpoint: Checkpoint of ``tapfinger@elastic`` (an elastic-mode training).
        ray_address: Play the episodes as Ray tasks: ``"local"`` for a local Ray, else the
            address of a Ray cluster (``workers`` is then ignored).
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
    if ray_address is not None:
        require_ray()
    checkpoint, elastic_checkpoint = (
        _existing_file(path, flag)
        for path, flag in (
            (checkpoint, "--checkpoint"),
            (elastic_checkpoint, "--elastic-checkpoint"),
        )
    )
    if elastic_checkpoint is not None and cfg.scenario.elastic:
        raise ConfigError(
            "--elastic-checkpoint: the scenario is elastic already; pass it as --checkpoint"
        )
    names = _resolve_policies(cfg, policies, checkpoint, elastic_checkpoint)
    scenario = cfg.scenario
    if trace is not None:
        path = Path(trace)
        # Recording the trace in the scenario sizes the env from it and saves it in the config.
        scenario = dataclasses.replace(scenario, trace=str(path.resolve()))
    loaded = None
    if scenario.trace is not None:
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
        elastic_checkpoint=elastic_checkpoint,
        ray_address=ray_address,
    )
    # Build every policy's env and the policy once now, so bad input fails before any episode.
    for name in names:
        env = make_env(policy_scenario(name, request.config.scenario), request.trace)
        make_policy(name, env, **policy_options(name, request.checkpoint_for(name)))
    return request


def _existing_file(path: str | Path | None, flag: str) -> str | None:
    """The absolute path of a checkpoint given on the command line (None stays None)."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"{flag}: checkpoint file not found: {path}")
    return str(Path(path).resolve())


def _resolve_policies(
    cfg: ExperimentConfig,
    policies: str | Sequence[str] | None,
    checkpoint: str | None,
    elastic_checkpoint: str | None = None,
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
        if not cfg.scenario.elastic:
            requested += [
                p + ELASTIC_SUFFIX
                for p in known
                if policy_entry(p).elastic
                and (elastic_checkpoint is not None or not policy_entry(p).needs_checkpoint)
            ]
    elif elastic_checkpoint is not None:
        requested += [
            p + ELASTIC_SUFFIX
            for p in requested
            if not p.endswith(ELASTIC_SUFFIX)
            and policy_entry(p).needs_checkpoint
            and policy_entry(p).elastic
        ]
    if not requested:
        raise ConfigError("no policies to evaluate")
    for name in requested:
        entry = policy_entry(name)  # one clear error for an unknown name or variant
        if entry.needs_checkpoint and name.endswith(ELASTIC_SUFFIX) and elastic_checkpoint is None:
            raise ConfigError(f"policy '{name}' needs --elastic-checkpoint PATH")
    # Keep the first mention of each name, in the order given.
    return list(dict.fromkeys(requested))


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
def run_episode(spec: EpisodeSpec) -> EpisodeResult:
    """Play one episode with a fresh env and a fresh policy, both reset with the spec's seed."""
    start = time.perf_counter()
    env = make_env(spec.scenario, spec.trace)
    policy = make_policy(spec.policy, env, **policy_options(spec.policy, spec.checkpoint))
    if spec.warm_state is not None:
        policy.set_warm_state(spec.warm_state)
    result = play_episode(
        env,
        policy,
        spec.seed,
        name=spec.policy,
        trace=spec.trace,
        record_utilization=spec.record_utilization,
    )
    # Building the env and the policy counts in the policy's wall time too.
    result.seconds = time.perf_counter() - start
    return result


def episode_specs(request: EvalRequest) -> list[EpisodeSpec]:
    """Every (policy, seed) episode, each policy on its scenario and from its warm state; the
    first seed of each policy records utilisation."""
    specs = []
    scenario, trace = request.config.scenario, request.trace
    for name in request.policies:
        warm = warm_state(name, scenario, trace, request.checkpoint_for(name))
        specs += [
            EpisodeSpec(
                policy=name,
                seed=seed,
                scenario=policy_scenario(name, scenario),
                trace=trace,
                checkpoint=request.checkpoint_for(name),
                record_utilization=i == 0,
                warm_state=warm,
            )
            for i, seed in enumerate(request.seeds)
        ]
    return specs


def _init_worker() -> None:
    """One thread per worker process: the processes already share the cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _checked(spec: EpisodeSpec) -> EpisodeResult:
    """:func:`run_episode`, with a failure named by its policy and seed."""
    try:
        return run_episode(spec)
    except Exception as exc:
        raise EpisodeFailed(
            f"episode of {spec.policy} with seed {spec.seed} failed: {type(exc).__name__}: {exc}"
        ) from exc


def run_episodes(
    specs: Sequence[EpisodeSpec],
    workers: int = 1,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    ray_address: str | None = None,
) -> list[EpisodeResult]:
    """Play ``specs`` serially, over ``workers`` processes or as Ray tasks (``ray_address``);
    results in ``specs`` order. A failed episode raises :class:`EpisodeFailed`.

    Worker processes are spawned (not forked), which is safe with threads and with CUDA.
    """
    if ray_address is not None:
        address = None if ray_address == "local" else ray_address
        return run_episodes_on_ray(specs, run_episode, address, on_episode)
    workers = min(workers, len(specs))
    if workers <= 1:
        # One torch thread, as in the workers: the learned policy's graphs are tiny, and a
        # second intra-op thread only spins against whatever else shares the cores (measured on
        # 2 cores beside a training run: 5 paper_synthetic episodes of the shipped policy took
        # 45.0 s with torch's default two threads, 4.3 s with one).
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            results = []
            for spec in specs:
                results.append(_checked(spec))
                if on_episode is not None:
                    on_episode(results[-1])
        finally:
            torch.set_num_threads(threads)
        return results
    done: dict[int, EpisodeResult] = {}
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    try:
        futures = {pool.submit(_checked, spec): i for i, spec in enumerate(specs)}
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
    return [done[i] for i in range(len(specs))]


# ---------------------------------------------------------------------------- one evaluation
def evaluate(
    request: EvalRequest, on_episode: Callable[[EpisodeResult], None] | None = None
) -> Evaluation:
    """Play every policy on every seed and compute the statistics."""
    start = time.perf_counter()
    specs = episode_specs(request)
    log.info(
        "evaluating %d policies x %d episodes on %s with %d worker(s)",
        len(request.policies),
        len(request.seeds),
        request.config.scenario.name,
        request.workers,
    )
    episodes = run_episodes(specs, request.workers, on_episode, request.ray_address)
    summary = summarize(request, episodes)
    cfg = request.config
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "scenario": cfg.scenario.name,
        "episodes": len(request.seeds),
        "seeds": list(request.seeds),
        "trace": request.trace_path,
        "checkpoint": request.checkpoint,
        "elastic_checkpoint": request.elastic_checkpoint,
        "confidence": cfg.eval.confidence,
        "bootstrap_resamples": cfg.eval.bootstrap,
        "jct_unit": "slots",
        "slot_seconds": cfg.scenario.slot_seconds,
        **summary,
        "config": config_to_dict(cfg),
        "run": {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "workers": request.workers,
            "ray": request.ray_address,
            "wall_seconds": time.perf_counter() - start,
            "policy_seconds": {
                name: sum(e.seconds for e in episodes if e.policy == name)
                for name in request.policies
            },
        },
    }
    return Evaluation(results, episodes)


__all__ = [
    "check_output_dir",
    "episode_specs",
    "evaluate",
    "resolve_request",
    "run_episode",
    "run_episodes",
]
