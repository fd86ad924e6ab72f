"""What an agent sees (DESIGN §4.4): the feature layout, the fixed shapes and spaces, and the
mask helpers policies use on observations (the builder is :mod:`envs.observation_builder`).

Action index ``0`` is the no-op, ``1..window`` address the pending window, and in elastic mode
``window+1..window+max_running`` address the agent's running tasks. Masks are data: the task mask
(``task_mask`` [A]) and the task-conditional allocation masks (``cpu_mask`` [A, cpu_levels],
``gpu_mask`` [A, gpu_levels]). The per-dimension tuple that ``MultiDiscrete.sample(mask=...)``
accepts is :func:`multidiscrete_mask` (not an observation key: PettingZoo's checker expects
``action_mask`` to be one array, which the flat variant of :mod:`envs.flat` provides, exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from envs.scenario import ScenarioConfig
from envs.trace import Trace

CLUSTER_FEATURES = (
    "free_cpu",
    "free_gpu",
    "free_mem",
    "cap_cpu",
    "cap_gpu",
    "running",
    "waiting",
    "is_me",
)
TASK_FEATURES = (
    "min_cpu",
    "min_gpu",
    "max_cpu",
    "max_gpu",
    "visible_clusters",
    "rate_at_min",
    "waited",
    "progress",
    "fits_here",
    "rate_at_best",
    "attained",
    "remaining",
)
RUNNING_FEATURES = ("progress", "cpu", "gpu", "run_slots", "rate", "done", "remaining")

#: Features that only some information regimes fill (zero otherwise; see :class:`Exposure`).
PROFILED_FEATURES = ("rate_at_min", "rate_at_best")
WORK_FEATURES = ("progress", "remaining")


@dataclass(frozen=True)
class Exposure:
    """What the scenario's information regime tells every policy (README "Who knows what").

    Always shown: a task's type, demand, cap, visibility, time waited and attained service; free
    resources; a running task's allocation, slots run, work done and its observed rate (the
    work it gained in the last slot it ran). Work is in units of ``work_unit``: the workload's
    mean task size as configured (1 for replayed traces), a property of the workload, not of
    any task.
    """

    speeds: bool
    """``profiled``: the true per-type speed tables (``rate_at_min`` / ``rate_at_best`` and
    ``infos["speed_model"]``)."""
    work: bool
    """Work clairvoyance: each task's work (``progress``, ``remaining`` and the infos'
    ``*_progress`` / ``*_remaining_work``)."""
    oracle: bool
    """The oracle infos keys (``oracle_remaining_work``, ``oracle_speed_model``)."""
    work_unit: float


def exposure_for(scenario: ScenarioConfig) -> Exposure:
    """The scenario's regime as flags, with its work unit."""
    types = scenario.task_types if scenario.trace is None else []
    total = sum(t.weight for t in types)
    unit = sum(t.weight * t.work_mean for t in types) / total if types else 1.0
    return Exposure(
        speeds=scenario.information == "profiled",
        work=scenario.work_known,
        oracle=scenario.oracle_infos,
        work_unit=float(unit),
    )


def columns(names: tuple[str, ...], offset: int = 0) -> dict[str, int]:
    """Column of each feature by name; ``offset`` skips the one-hot task type in front."""
    return {name: offset + i for i, name in enumerate(names)}


def squash(x: np.ndarray, scale: float) -> np.ndarray:
    """Map [0, inf) onto [0, 1): x / (x + scale)."""
    return x / (x + scale)


@dataclass(frozen=True)
class Dims:
    """Fixed shapes of one scenario's observations and actions."""

    clusters: int
    types: int
    window: int
    running: int
    cpu_levels: int
    gpu_levels: int
    elastic: bool
    max_starts: int

    @property
    def actions(self) -> int:
        """Size of the task dimension: no-op + window (+ running tasks in elastic mode)."""
        return 1 + self.window + (self.running if self.elastic else 0)


def dims_for(scenario: ScenarioConfig, trace: Trace, type_names: list[str]) -> Dims:
    """Derive the fixed shapes from the scenario (and the trace's caps, for replayed traces)."""
    cap = np.array([[c.cpu, c.gpu] for c in scenario.clusters])
    if len(trace):
        max_cpu = int(min(trace.cap[:, 0].max(), cap[:, 0].max()))
        max_gpu = int(min(trace.cap[:, 1].max(), cap[:, 1].max()))
        mins = trace.min_demand[:, :2]
    else:
        max_cpu, max_gpu, mins = 1, 1, np.ones((1, 2), dtype=int)
    if scenario.trace is None:
        max_cpu = int(min(max(t.max_cpu for t in scenario.task_types), cap[:, 0].max()))
        max_gpu = int(min(max(t.max_gpu for t in scenario.task_types), cap[:, 1].max()))
        mins = np.array([[t.min_cpu, t.min_gpu] for t in scenario.task_types])
    running = scenario.max_running
    if running == 0:
        # The most tasks one cluster can run at once, given the smallest minimum demand.
        smallest = np.maximum(mins.min(axis=0), 0)
        per = []
        for c in cap:
            lim = [c[k] // smallest[k] for k in range(2) if smallest[k] > 0]
            per.append(min(lim) if lim else 64)
        running = int(min(max(max(per), 1), 64))
    return Dims(
        clusters=scenario.num_clusters,
        types=len(type_names),
        window=scenario.window,
        running=running,
        cpu_levels=max_cpu + 1,
        gpu_levels=max_gpu + 1,
        elastic=scenario.elastic,
        max_starts=scenario.max_starts if scenario.mode == "multi" else 1,
    )


def observation_space(d: Dims, capacity: np.ndarray) -> spaces.Dict:
    """Every agent's observation space (one object shared by all agents)."""
    unit = dict(low=0.0, high=1.0, dtype=np.float32)
    flag = dict(low=0, high=1, dtype=np.int8)
    n_task = d.types + len(TASK_FEATURES)
    n_run = d.types + len(RUNNING_FEATURES)
    return spaces.Dict(
        {
            "clusters": spaces.Box(shape=(d.clusters, len(CLUSTER_FEATURES)), **unit),
            "pending": spaces.Box(shape=(d.window, n_task), **unit),
            "pending_mask": spaces.Box(shape=(d.window,), **flag),
            "pending_visible": spaces.Box(shape=(d.window, d.clusters), **flag),
            "running": spaces.Box(shape=(d.running, n_run), **unit),
            "running_mask": spaces.Box(shape=(d.running,), **flag),
            "agent": spaces.Box(shape=(d.clusters,), **flag),
            "task_mask": spaces.Box(shape=(d.actions,), **flag),
            "cpu_mask": spaces.Box(shape=(d.actions, d.cpu_levels), **flag),
            "gpu_mask": spaces.Box(shape=(d.actions, d.gpu_levels), **flag),
            "free": spaces.Box(low=0, high=int(capacity.max()), shape=(3,), dtype=np.int64),
            "demand": spaces.Box(
                low=0, high=np.iinfo(np.int32).max, shape=(d.actions, 3), dtype=np.int64
            ),
            "alloc": spaces.Box(
                low=0, high=int(capacity.max()), shape=(d.actions, 2), dtype=np.int64
            ),
            "changed": spaces.Box(shape=(d.actions,), **flag),
        }
    )


def action_space(d: Dims) -> spaces.MultiDiscrete:
    """(task index, cpu, gpu) per start of the sequence."""
    return spaces.MultiDiscrete([d.actions, d.cpu_levels, d.gpu_levels] * d.max_starts)


def state_size(d: Dims) -> int:
    """Length of the global state: every cluster's features but ``is_me``, every window and
    running set, and the number of waiting tasks (squashed)."""
    n_task = d.types + len(TASK_FEATURES)
    n_run = d.types + len(RUNNING_FEATURES)
    per_cluster = len(CLUSTER_FEATURES) - 1 + d.window * n_task + d.running * n_run
    return d.clusters * per_cluster + 1


def multidiscrete_mask(obs: dict, starts: int = 1) -> tuple[np.ndarray, ...]:
    """Per-dimension masks of a structured observation, in the form
    ``MultiDiscrete.sample(mask=...)`` accepts (``starts``: the multi-task sequence length).

    The allocation masks are the union over the valid tasks, so a sampled triple can still be
    infeasible for the sampled task (the env then treats it as a reported no-op; 15-40% of
    uniform samples on the presets): :func:`conditional_sample`, or the flat variant's exact
    joint mask (:mod:`envs.flat`), never is.
    """
    task_mask = obs["task_mask"]
    valid = task_mask.astype(bool)
    one = (task_mask, obs["cpu_mask"][valid].max(axis=0), obs["gpu_mask"][valid].max(axis=0))
    return one * starts


def conditional_sample(obs: dict, rng: np.random.Generator) -> tuple[int, int, int]:
    """A uniformly random valid (task, cpu, gpu): task first, then its feasible amounts."""
    task = int(rng.choice(np.flatnonzero(obs["task_mask"])))
    cpu = int(rng.choice(np.flatnonzero(obs["cpu_mask"][task])))
    gpu = int(rng.choice(np.flatnonzero(obs["gpu_mask"][task])))
    return task, cpu, gpu


def random_actions(env, observations: dict, rng: np.random.Generator) -> dict:
    """One uniformly random valid single start per live agent of ``env`` (MultiDiscrete vectors,
    the unused starts of a multi-task sequence left as no-ops)."""
    actions = {}
    for agent in env.agents:
        a = np.zeros(3 * env.dims.max_starts, dtype=np.int64)
        a[:3] = conditional_sample(observations[agent], rng)
        actions[agent] = a
    return actions


def after_start(obs: dict, index: int, cpu: int, gpu: int) -> dict:
    """Masks after starting pending task ``index`` with (cpu, gpu), for multi-task sequences.

    Returns a new observation dict whose ``task_mask``, ``cpu_mask``, ``gpu_mask`` and ``free``
    reflect the start: the task can no longer be chosen and the free resources shrank.
    """
    out = dict(obs)
    free = obs["free"].copy()
    demand = obs["demand"]
    free[0] -= cpu
    free[1] -= gpu
    mem_modelled = demand[:, 2].any()
    free[2] -= demand[index, 2] if mem_modelled else 0
    levels_c = np.arange(obs["cpu_mask"].shape[1])
    levels_g = np.arange(obs["gpu_mask"].shape[1])
    cm = obs["cpu_mask"].astype(bool) & (levels_c[None, :] <= free[0])
    gm = obs["gpu_mask"].astype(bool) & (levels_g[None, :] <= free[1])
    am = obs["task_mask"].astype(bool) & cm.any(axis=1) & gm.any(axis=1)
    if mem_modelled:
        am &= demand[:, 2] <= free[2]
    am[index] = False
    am[0] = True
    cm[0, 0] = gm[0, 0] = True
    cm &= am[:, None]
    gm &= am[:, None]
    cm[0, 0] = gm[0, 0] = True
    out["task_mask"] = am.astype(np.int8)
    out["cpu_mask"] = cm.astype(np.int8)
    out["gpu_mask"] = gm.astype(np.int8)
    out["free"] = free
    return out
