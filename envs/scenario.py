"""Scenario: the clusters, task types, workload and rules that define one simulated world.

The defaults live here, in typed dataclasses (one source of truth); presets are the ``scenario``
sections of ``configs/<name>.yaml`` so that ``train.py`` and the env read the same settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.errors import ConfigError
from envs.typed_config import from_dict, read_yaml

RESOURCE_KINDS = ("cpu", "gpu", "mem")

#: Work distributions whose shape is set by ``TaskTypeSpec.work_shape``.
HEAVY_TAILED = ("lognormal", "pareto", "bounded_pareto")

#: Folder of the YAML presets, shipped inside the package (``configs/`` links here).
CONFIG_DIR = Path(__file__).resolve().parent / "presets"


@dataclass
class ClusterSpec:
    """One edge cluster's integer capacity per resource kind."""

    cpu: int
    """CPU cores."""
    gpu: int
    """GPUs (or GPU units, see the scenario's notes)."""
    mem: int = 0
    """Memory units; 0 means memory is not modelled on this cluster."""

    def validate(self, prefix: str) -> None:
        for kind in RESOURCE_KINDS:
            if getattr(self, kind) < 0:
                raise ConfigError(f"{prefix}.{kind}: capacity must be >= 0")


@dataclass
class TaskTypeSpec:
    """A task type: its minimum demand, per-task cap, share of arrivals and work size."""

    name: str
    """Type name, e.g. ``image``, ``lm``, ``mnist``."""
    min_cpu: int = 1
    """Minimum CPU cores a task of this type needs to run."""
    min_gpu: int = 1
    """Minimum GPUs a task of this type needs to run."""
    mem: int = 0
    """Memory a task holds while running (a hard demand, allocated automatically)."""
    max_cpu: int = 16
    """Per-task cap on CPU cores."""
    max_gpu: int = 16
    """Per-task cap on GPUs."""
    weight: float = 1.0
    """Relative share of arrivals of this type."""
    work_mean: float = 1.0
    """Mean work of a task (progress units; the speed model's rate is per slot)."""
    work_dist: Literal[
        "fixed", "exponential", "uniform", "lognormal", "pareto", "bounded_pareto"
    ] = "fixed"
    """Work size distribution, every one with mean ``work_mean``: fixed at the mean, exponential,
    uniform on [0.5, 1.5] x mean, or heavy-tailed: ``lognormal`` (log-sd ``work_shape``),
    ``pareto`` (Pareto I, tail index ``work_shape`` > 1), ``bounded_pareto`` (tail index
    ``work_shape`` > 0 between a lower bound L and ``work_spread`` x L)."""
    work_shape: float | None = None
    """Shape of a heavy-tailed ``work_dist`` (required there, unused otherwise): the lognormal's
    sigma (> 0; the coefficient of variation is sqrt(exp(sigma^2) - 1)) or the Pareto tail index
    alpha (smaller is heavier)."""
    work_spread: float = 100.0
    """``bounded_pareto``: ratio of the largest to the smallest possible work (> 1)."""
    speed: dict[str, float] = field(default_factory=dict)
    """Parameters of the ``parametric`` or ``pollux`` speed model for this type (ignored by the
    others; envs/speed_models.py lists them)."""

    def validate(self, prefix: str) -> None:
        for key in ("min_cpu", "min_gpu", "mem", "max_cpu", "max_gpu"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{prefix}.{key}: must be >= 0")
        if self.max_cpu < self.min_cpu or self.max_gpu < self.min_gpu:
            raise ConfigError(f"{prefix}: max_cpu/max_gpu must be >= min_cpu/min_gpu")
        if self.min_cpu + self.min_gpu == 0:
            raise ConfigError(f"{prefix}: a task type needs a positive minimum demand")
        if not self.weight > 0:
            raise ConfigError(f"{prefix}.weight: must be > 0")
        if not (self.work_mean > 0 and math.isfinite(self.work_mean)):
            raise ConfigError(f"{prefix}.work_mean: must be a positive number")
        self._validate_work_shape(prefix)

    def _validate_work_shape(self, prefix: str) -> None:
        shape = self.work_shape
        if self.work_dist not in HEAVY_TAILED:
            return
        if shape is None:
            raise ConfigError(f"{prefix}.work_shape: required for work_dist {self.work_dist}")
        lowest = {"lognormal": 0.0, "pareto": 1.0, "bounded_pareto": 0.0}[self.work_dist]
        if not (math.isfinite(shape) and shape > lowest):
            raise ConfigError(
                f"{prefix}.work_shape: must be a number > {lowest:g} for work_dist "
                f"{self.work_dist}, got {shape!r}"
            )
        if self.work_dist == "bounded_pareto" and not (
            math.isfinite(self.work_spread) and self.work_spread > 1
        ):
            raise ConfigError(
                f"{prefix}.work_spread: must be a number > 1, got {self.work_spread!r}"
            )


@dataclass
class ScenarioConfig:
    """Everything that defines the world: clusters, workload, speed model and the rules."""

    name: str = "custom"
    """Scenario name, used in logs and outputs."""
    clusters: list[ClusterSpec] = field(
        default_factory=lambda: [ClusterSpec(16, 16), ClusterSpec(16, 16), ClusterSpec(16, 16)]
    )
    """The edge clusters, one agent each."""
    task_types: list[TaskTypeSpec] = field(
        default_factory=lambda: [
            TaskTypeSpec("image", 2, 1, 0, 16, 16),
            TaskTypeSpec("lm", 2, 1, 0, 16, 16),
        ]
    )
    """The task types of the synthetic workload."""
    speed_model: Literal["paper_synthetic", "testbed", "parametric", "pollux", "trace"] = (
        "paper_synthetic"
    )
    """Progress per slot as a function of type, allocation and progress (envs/speed_models.py)."""
    arrival_rate: float = 2.0
    """Mean arrivals per slot (lambda) of the synthetic workload."""
    arrivals: Literal["poisson", "bursty"] = "poisson"
    """Arrival process: ``poisson`` (rate ``arrival_rate`` every slot) or ``bursty``, a two-state
    Markov-modulated Poisson process (calm and burst states, the burst's rate ``burst_factor``
    times the calm one, the long-run mean still ``arrival_rate``)."""
    burst_factor: float = 10.0
    """``bursty``: arrival rate in a burst over the rate in calm (>= 1)."""
    burst_fraction: float = 0.1
    """``bursty``: long-run share of slots spent in bursts (in (0, 1))."""
    burst_slots: float = 5.0
    """``bursty``: mean length of a burst in slots (geometric; >= 1)."""
    num_tasks: int = 192
    """Tasks per episode of the synthetic workload."""
    visibility: Literal["uniform_subset", "all", "one"] = "uniform_subset"
    """Which clusters see a task: the paper's random subset of size U{1..N}, all, or one."""
    trace: str | None = None
    """A trace file to replay instead of generating tasks (path, or a vendored trace name)."""
    trace_window: int = 0
    """Tasks per episode cut from a replayed trace: each seed picks a contiguous run of that
    many tasks (arrival order), arrivals re-based to slot 0; 0 replays the whole trace."""
    window: int = 10
    """Pending window: how many waiting tasks an agent sees and may start."""
    max_running: int = 0
    """Running tasks shown per cluster in observations; 0 derives it from the capacities."""
    max_rounds_per_slot: int = 32
    """Round limit inside one slot."""
    mode: Literal["single", "multi"] = "single"
    """Single-task mode (one start per agent per round) or multi-task mode (a sequence)."""
    max_starts: int = 4
    """Multi-task mode: the longest sequence of starts in one round."""
    elastic: bool = False
    """Elastic mode: running tasks may be resized or paused (paying the switch penalty)."""
    switch_penalty: float = 0.5
    """Elastic mode: fraction of a slot's progress lost by a task whose allocation changed
    (the official code's ``1 - switch_weight``: 0 means no penalty)."""
    information: Literal["measured", "profiled"] = "measured"
    """Information regime (README "Who knows what"): ``measured``, the default and the paper's
    premise, tells no policy any speed table (each learns speeds from what it measures);
    ``profiled`` tells every policy, learned or rule-based, the true per-type speed tables."""
    work_known: bool = False
    """Work clairvoyance: every policy is told each task's work (so its remaining work and
    progress fraction); off by default."""
    oracle_infos: bool = False
    """Add the oracle keys (``oracle_remaining_work``, ``oracle_speed_model``) to ``infos`` for
    oracle baselines and imitation teachers; no policy that is compared as fair reads them."""
    reward: Literal["agent", "team"] = "agent"
    """Per-agent reward (minus tasks attributed to the agent per slot) or shared team reward."""
    conflict_rule: Literal["random", "spare_capacity"] = "spare_capacity"
    """Who wins when agents pick the same task: seeded uniform, or most spare capacity (seeded
    tie-break)."""
    max_slots: int = 100_000
    """Episodes are truncated after this many slots."""
    slot_seconds: float = 5.0
    """Wall time of one slot in a real deployment (for reporting only)."""

    def validate(self, prefix: str = "") -> None:
        p = f"{prefix}." if prefix else ""
        if not self.clusters:
            raise ConfigError(f"{p}clusters: at least one cluster is needed")
        if not self.task_types and self.trace is None:
            raise ConfigError(f"{p}task_types: at least one task type is needed")
        names = [t.name for t in self.task_types]
        if len(set(names)) != len(names):
            raise ConfigError(f"{p}task_types: duplicate type names")
        if self.arrival_rate < 0 or not math.isfinite(self.arrival_rate):
            raise ConfigError(f"{p}arrival_rate: must be a non-negative number")
        if self.trace is None and self.arrival_rate == 0:
            raise ConfigError(f"{p}arrival_rate: must be > 0 for a synthetic workload")
        self._validate_bursts(p)
        checks = {
            "num_tasks": self.num_tasks >= 1,
            "window": self.window >= 1,
            "max_running": self.max_running >= 0,
            "max_rounds_per_slot": self.max_rounds_per_slot >= 1,
            "max_starts": self.max_starts >= 1,
            "max_slots": self.max_slots >= 1,
            "trace_window": self.trace_window >= 0,
            "switch_penalty": 0.0 <= self.switch_penalty <= 1.0,
            "slot_seconds": self.slot_seconds > 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"{p}{key}: out of range ({getattr(self, key)!r})")
        if self.trace is None:
            for i, t in enumerate(self.task_types):
                if not any(
                    c.cpu >= t.min_cpu and c.gpu >= t.min_gpu and (c.mem == 0 or c.mem >= t.mem)
                    for c in self.clusters
                ):
                    raise ConfigError(
                        f"{p}task_types[{i}] ({t.name}): minimum demand fits no cluster"
                    )

    def _validate_bursts(self, p: str) -> None:
        checks = {
            "burst_factor": self.burst_factor >= 1,
            "burst_fraction": 0 < self.burst_fraction < 1,
            "burst_slots": self.burst_slots >= 1,
        }
        for key, ok in checks.items():
            value = getattr(self, key)
            if not (ok and math.isfinite(value)):
                raise ConfigError(f"{p}{key}: out of range ({value!r})")
        calm_slots = self.burst_slots * (1 - self.burst_fraction) / self.burst_fraction
        if calm_slots < 1:
            raise ConfigError(
                f"{p}burst_fraction: too large for burst_slots {self.burst_slots!r} "
                f"(calm spells would average {calm_slots:.3g} < 1 slot)"
            )

    @property
    def num_clusters(self) -> int:
        return len(self.clusters)


def preset_names() -> list[str]:
    """Names of the presets in ``configs/`` (files with a ``scenario`` section)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def scenario_from_dict(data: dict, prefix: str = "scenario") -> ScenarioConfig:
    """Build a validated ScenarioConfig from a mapping."""
    return from_dict(ScenarioConfig, data, prefix)


def load_scenario(scenario: str | Path | ScenarioConfig | dict | None) -> ScenarioConfig:
    """Resolve a preset name, a YAML path, a mapping or a config object to a ScenarioConfig.

    A YAML file may be a whole experiment (its ``scenario`` section is used) or a bare scenario.
    """
    if scenario is None:
        return ScenarioConfig()
    if isinstance(scenario, ScenarioConfig):
        scenario.validate("scenario")
        return scenario
    if isinstance(scenario, dict):
        return scenario_from_dict(scenario.get("scenario", scenario))
    text = str(scenario)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.exists()):
        path = CONFIG_DIR / f"{text}.yaml"
        if not path.exists():
            raise ConfigError(f"unknown scenario '{text}' (presets: {', '.join(preset_names())})")
    data = read_yaml(str(path))
    section = data.get("scenario", data)
    cfg = scenario_from_dict(section)
    if cfg.trace is not None:
        cfg.trace = resolve_trace_path(cfg.trace, path.parent)
    return cfg


def resolve_trace_path(trace: str, base: Path) -> str:
    """A trace path relative to the YAML file, or a vendored trace name under ``envs/data``."""
    candidates = [Path(trace), base / trace, Path(__file__).parent / "data" / trace]
    for c in candidates:
        if c.exists():
            return str(c)
    return trace
