"""Evaluation values: the request, an episode's spec and result, and the layout of the outputs.

These sit below :mod:`tapfinger.evaluation`, :mod:`tapfinger.statistics`,
:mod:`tapfinger.reports` and :mod:`tapfinger.plots`, which all pass them around, so that none of
those has to import another one back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.scenario import RESOURCE_KINDS, ScenarioConfig
from envs.trace import Trace
from tapfinger.config import ExperimentConfig

#: Version of the ``results.json`` layout (bump on incompatible changes).
SCHEMA_VERSION = 2

#: Training episodes draw their seeds from here upwards, far from the test seeds (0, 1, ...)
#: and the held-out evaluation seeds (10,000 up).
TRAIN_SEED_BASE = 1_000_000

#: Training-range episodes a baseline that learns from measurements (a ``history``) plays
#: before the test episodes, on seeds ``TRAIN_SEED_BASE + i``; every test episode starts from
#: the state they leave.
WARM_UP_EPISODES = 3

#: Every file an evaluation writes into its output folder.
OUTPUT_FILES = (
    "results.json",
    "results.csv",
    "episodes.csv",
    "report.md",
    "mean_jct.png",
    "jct_diff_to_best.png",
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
    "lower_bound_per_task_mean_jct",
    "lower_bound_pooled_mean_jct",
    "lower_bound_ratio",
    "utilization_cpu",
    "utilization_gpu",
    "utilization_mem",
    "conflicts",
    "tasks",
    "tasks_finished",
    "slots",
)


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
    ray_address: str | None = None
    """Run the episodes as Ray tasks (``"local"``: a local Ray; else a cluster's address)."""
    elastic_checkpoint: str | None = None
    """Checkpoint of the learned policy's elastic variant (``tapfinger@elastic``: trained with
    ``scenario.elastic: true``, played on the same arrivals in elastic mode)."""

    def checkpoint_for(self, policy: str) -> str | None:
        """The checkpoint that ``policy`` is built from: the elastic one for an ``@elastic``
        variant, else ``checkpoint``."""
        return self.elastic_checkpoint if policy.endswith("@elastic") else self.checkpoint


class EpisodeFailed(RuntimeError):
    """An episode raised; the message names its policy and seed, and the cause."""


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play: a policy on a seed (picklable, for worker processes)."""

    policy: str
    seed: int
    scenario: ScenarioConfig
    trace: Trace | None = None
    checkpoint: str | None = None
    record_utilization: bool = False
    warm_state: dict[str, Any] | None = None
    """The policy's history after the warm-up episodes (None: it starts fresh)."""


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


@dataclass
class Evaluation:
    """Everything an evaluation produced: the results.json content and the raw episodes."""

    results: dict[str, Any]
    episodes: list[EpisodeResult] = field(default_factory=list)


# ------------------------------------------------------------ shared by the reports and the plots
def reported_kinds(results: dict[str, Any]) -> list[str]:
    """Resource kinds worth reporting: those some cluster has (memory is often not modelled)."""
    clusters = results["config"]["scenario"]["clusters"]
    return [k for k in RESOURCE_KINDS if any(c[k] > 0 for c in clusters)]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


__all__ = [
    "EPISODE_METRICS",
    "OUTPUT_FILES",
    "SCHEMA_VERSION",
    "EpisodeResult",
    "EpisodeSpec",
    "EvalRequest",
    "Evaluation",
    "reported_kinds",
    "write_atomic",
]
