"""Speed models: progress per slot of a task as a function of its type, allocation and progress.

Every model is a table ``base[type, cpu, gpu]`` of progress per slot, times a per-type factor
of the task's progress fraction (1 for stationary types, whose rate does not change as they run).
The simulator, the lower bound and the baselines that are allowed to know the speeds all use the
same two arrays, so they can never disagree.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import ConfigError
from envs.scenario import ScenarioConfig

TESTBED_TABLE = Path(__file__).parent / "data" / "testbed_completion_times.csv"
POLLUX_TABLE = Path(__file__).parent / "data" / "pollux_throughput.csv"

#: Container start-up time the paper's simulator adds to every measured run (seconds).
TESTBED_STARTUP_S = 14.0

#: Default parameters of the parametric model (see :func:`parametric_time`).
PARAMETRIC_DEFAULTS = {"serial": 1.0, "cpu_work": 4.0, "gpu_work": 8.0, "comm": 0.2, "pin": 0.5}

#: Default parameters of the pollux model (see :func:`_pollux`): ``cpu_work`` is the core-slots
#: of input processing one unit of work needs (0: the CPU never limits the speed).
POLLUX_DEFAULTS = {"cpu_work": 1.0}


@dataclass(eq=False)
class SpeedModel:
    """Progress per slot: ``base[type, cpu, gpu] * factor(type, progress_fraction)``."""

    name: str
    type_names: list[str]
    base: np.ndarray
    """float64 [K, cpu_levels, gpu_levels]: progress per slot at progress fraction 0."""
    sqrt_decay: np.ndarray
    """bool [K]: the type's rate is multiplied by sqrt(1.2 - progress fraction) (paper's LM)."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SpeedModel)
            and self.name == other.name
            and self.type_names == other.type_names
            and np.array_equal(self.base, other.base)
            and np.array_equal(self.sqrt_decay, other.sqrt_decay)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def stationary(self) -> np.ndarray:
        """bool [K]: the rate does not depend on progress."""
        return ~self.sqrt_decay

    def rate(
        self, types: np.ndarray, cpu: np.ndarray, gpu: np.ndarray, fraction: np.ndarray
    ) -> np.ndarray:
        """Vectorised progress per slot for tasks of ``types`` at the given allocations."""
        r = self.base[types, cpu, gpu]
        decay = self.sqrt_decay[types]
        if decay.any():
            r = r.copy()
            r[decay] *= np.sqrt(np.maximum(1.2 - fraction[decay], 0.0))
        return r

    def slots_to_finish(self, type_idx: int, cpu: int, gpu: int, work: float, done: float) -> int:
        """Slots a task needs from progress ``done`` to ``work`` at a fixed allocation."""
        base = self.base[type_idx, cpu, gpu]
        if base <= 0:
            return math.inf
        if not self.sqrt_decay[type_idx]:
            # A tiny tolerance keeps float round-off from adding a slot (e.g. 4 x 0.25).
            return max(1, math.ceil((work - done) / base - 1e-9))
        slots = 0
        while done < work - 1e-12:
            done += base * math.sqrt(max(1.2 - done / work, 0.0))
            slots += 1
            if slots > 1_000_000:
                return math.inf
        return slots


def _paper_synthetic(scenario: ScenarioConfig, lc: int, lg: int) -> SpeedModel:
    names = [t.name for t in scenario.task_types]
    base = np.zeros((len(names), lc, lg))
    decay = np.zeros(len(names), dtype=bool)
    g = np.arange(lg)
    for k, name in enumerate(names):
        if name == "image":
            base[k, 1:, 1:] = 0.25
        elif name == "lm":
            base[k, 1:, :] = np.tanh(g / 16.0)[None, :]
            decay[k] = True
        else:
            raise ConfigError(
                f"scenario.task_types: type '{name}' has no paper_synthetic speed "
                "(known: image, lm)"
            )
    return SpeedModel("paper_synthetic", names, base, decay)


def load_testbed_times() -> dict[str, np.ndarray]:
    """Measured completion times (seconds) per type as arrays [17, 9] indexed by (cpu, gpu)."""
    times: dict[str, np.ndarray] = {}
    with open(TESTBED_TABLE, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            arr = times.setdefault(row["task_type"], np.full((17, 9), np.nan))
            arr[int(row["cpu"]), int(row["gpu"])] = float(row["seconds"])
    return times


def _testbed(scenario: ScenarioConfig, lc: int, lg: int) -> SpeedModel:
    names = [t.name for t in scenario.task_types]
    times = load_testbed_times()
    base = np.zeros((len(names), lc, lg))
    for k, name in enumerate(names):
        if name not in times:
            raise ConfigError(
                f"scenario.task_types: type '{name}' has no testbed measurements "
                f"(known: {', '.join(sorted(times))})"
            )
        t = times[name]
        for c in range(1, lc):
            for gg in range(1, lg):
                # Beyond the measured grid (16 CPU, 8 GPU) the last measured point holds.
                base[k, c, gg] = scenario.slot_seconds / (
                    t[min(c, 16), min(gg, 8)] + TESTBED_STARTUP_S
                )
    return SpeedModel("testbed", names, base, np.zeros(len(names), dtype=bool))


def parametric_time(params: dict[str, float], cpu: np.ndarray, gpu: np.ndarray) -> np.ndarray:
    """Time for one unit of work: Amdahl-style terms, a GPU communication cost and a pinning
    cost when GPUs exceed CPUs (one data-parallel worker per GPU pinned to the cores, as the
    testbed's mnist shows)."""
    p = {**PARAMETRIC_DEFAULTS, **params}
    c = np.maximum(cpu, 1e-9)
    with np.errstate(divide="ignore"):
        gpu_term = np.where(gpu > 0, p["gpu_work"] / np.maximum(gpu, 1e-9), 0.0)
        gpu_term = np.where((gpu == 0) & (p["gpu_work"] > 0), np.inf, gpu_term)
    return (
        p["serial"]
        + p["cpu_work"] / c
        + gpu_term
        + p["comm"] * np.maximum(gpu - 1, 0)
        + p["pin"] * np.maximum(gpu - cpu, 0)
    )


def _parametric(scenario: ScenarioConfig, lc: int, lg: int) -> SpeedModel:
    names = [t.name for t in scenario.task_types]
    base = np.zeros((len(names), lc, lg))
    c, g = np.meshgrid(np.arange(lc), np.arange(lg), indexing="ij")
    for k, t in enumerate(scenario.task_types):
        unknown = set(t.speed) - set(PARAMETRIC_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"scenario.task_types[{k}].speed: unknown parameter '{sorted(unknown)[0]}' "
                f"(known: {', '.join(PARAMETRIC_DEFAULTS)})"
            )
        if any(v < 0 for v in t.speed.values()):
            raise ConfigError(f"scenario.task_types[{k}].speed: parameters must be >= 0")
        with np.errstate(divide="ignore"):
            rate = 1.0 / parametric_time(t.speed, c.astype(float), g.astype(float))
        rate[0, :] = 0.0
        base[k] = np.nan_to_num(rate, posinf=0.0)
    return SpeedModel("parametric", names, base, np.zeros(len(names), dtype=bool))


def load_pollux_speedups() -> dict[str, np.ndarray]:
    """Pollux's measured speed-up per job over GPU counts: float [G + 1] per type (index g; 0 at
    g = 0), ``samples_per_second(g) / samples_per_second(1)`` (see envs/pollux.py)."""
    rows: dict[str, dict[int, float]] = {}
    with open(POLLUX_TABLE, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["task_type"], {})[int(row["gpu"])] = float(row["speedup"])
    out = {}
    for name, by_gpu in rows.items():
        curve = np.zeros(max(by_gpu) + 1)
        for g, v in by_gpu.items():
            curve[g] = v
        out[name] = curve
    return out


def _pollux(scenario: ScenarioConfig, lc: int, lg: int) -> SpeedModel:
    """Pollux's measured GPU curves with a data-loading CPU term: a task of type k on c cores and
    g GPUs gains ``min(S_k(g), c / cpu_work_k)`` per slot, where ``S_k`` is the job's measured
    speed-up over one GPU (past the largest measured GPU count the last value holds) and the
    cores feed the input pipeline at ``1 / cpu_work`` units of work per core and slot. A unit of
    work is therefore one slot of the job on one GPU with enough cores."""
    names = [t.name for t in scenario.task_types]
    curves = load_pollux_speedups()
    base = np.zeros((len(names), lc, lg))
    cores = np.arange(lc, dtype=float)
    for k, t in enumerate(scenario.task_types):
        if t.name not in curves:
            raise ConfigError(
                f"scenario.task_types[{k}]: type '{t.name}' has no pollux measurements "
                f"(known: {', '.join(sorted(curves))})"
            )
        unknown = set(t.speed) - set(POLLUX_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"scenario.task_types[{k}].speed: unknown parameter '{sorted(unknown)[0]}' "
                f"(known: {', '.join(POLLUX_DEFAULTS)})"
            )
        cpu_work = {**POLLUX_DEFAULTS, **t.speed}["cpu_work"]
        if not (cpu_work >= 0 and math.isfinite(cpu_work)):
            raise ConfigError(f"scenario.task_types[{k}].speed.cpu_work: must be >= 0")
        curve = curves[t.name]
        gpu_rate = curve[np.minimum(np.arange(lg), len(curve) - 1)]
        cpu_rate = cores / cpu_work if cpu_work > 0 else np.where(cores > 0, np.inf, 0.0)
        base[k] = np.minimum(cpu_rate[:, None], gpu_rate[None, :])
    return SpeedModel("pollux", names, base, np.zeros(len(names), dtype=bool))


def _trace(type_names: list[str], lc: int, lg: int) -> SpeedModel:
    # Work is a task's lifetime in slots at its requested allocation; more does not speed it up.
    base = np.ones((len(type_names), lc, lg))
    return SpeedModel("trace", list(type_names), base, np.zeros(len(type_names), dtype=bool))


def build_speed_model(
    scenario: ScenarioConfig, type_names: list[str], cpu_levels: int, gpu_levels: int
) -> SpeedModel:
    """The scenario's speed model over allocation grids of the given sizes."""
    name = scenario.speed_model
    if name == "trace":
        return _trace(type_names, cpu_levels, gpu_levels)
    if [t.name for t in scenario.task_types] != list(type_names):
        raise ConfigError(
            f"the trace's task types {type_names} differ from the scenario's task_types"
        )
    builders = {
        "paper_synthetic": _paper_synthetic,
        "testbed": _testbed,
        "parametric": _parametric,
        "pollux": _pollux,
    }
    return builders[name](scenario, cpu_levels, gpu_levels)
