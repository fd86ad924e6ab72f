"""Observations, masks and the global state: what an agent sees of the simulator (DESIGN §4.4).

Action index ``0`` is the no-op, ``1..window`` address the pending window, and in elastic mode
``window+1..window+max_running`` address the agent's running tasks. Masks are data: the task mask
(``task_mask`` [A]) and the task-conditional allocation masks (``cpu_mask`` [A, cpu_levels],
``gpu_mask`` [A, gpu_levels]). ``action_mask`` is the per-dimension tuple that
``MultiDiscrete.sample(mask=...)`` accepts (PettingZoo's convention): the task mask and the union
of the allocation masks over the valid tasks, repeated for every start of a multi-task sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from envs.scenario import ScenarioConfig
from envs.simulator import Simulator
from envs.speed_models import SpeedModel
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
    "waited",
    "min_cpu",
    "min_gpu",
    "max_cpu",
    "max_gpu",
    "visible_clusters",
    "progress",
    "fits_here",
    "rate_at_min",
    "rate_at_best",
)
RUNNING_FEATURES = ("progress", "cpu", "gpu", "run_slots", "rate")


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


class ObservationBuilder:
    """Builds every agent's observation, masks and facts from the simulator in one pass."""

    def __init__(self, dims: Dims, capacity: np.ndarray, speed: SpeedModel) -> None:
        self.d = dims
        self.capacity = capacity
        self.speed = speed
        self.cmax = max(int(capacity[:, 0].max()), 1)
        self.gmax = max(int(capacity[:, 1].max()), 1)
        self.mmax = max(int(capacity[:, 2].max()), 1)
        self.type_rate_max = np.maximum(speed.base.reshape(len(speed.base), -1).max(axis=1), 1e-12)
        self.cpu_levels = np.arange(dims.cpu_levels)
        self.gpu_levels = np.arange(dims.gpu_levels)
        self.n_task_feat = dims.types + len(TASK_FEATURES)
        self.n_run_feat = dims.types + len(RUNNING_FEATURES)

    # ------------------------------------------------------------------ spaces
    def observation_space(self) -> spaces.Dict:
        d = self.d
        unit = dict(low=0.0, high=1.0, dtype=np.float32)
        flag = dict(low=0, high=1, dtype=np.int8)
        return spaces.Dict(
            {
                "clusters": spaces.Box(shape=(d.clusters, len(CLUSTER_FEATURES)), **unit),
                "pending": spaces.Box(shape=(d.window, self.n_task_feat), **unit),
                "pending_mask": spaces.Box(shape=(d.window,), **flag),
                "pending_visible": spaces.Box(shape=(d.window, d.clusters), **flag),
                "running": spaces.Box(shape=(d.running, self.n_run_feat), **unit),
                "running_mask": spaces.Box(shape=(d.running,), **flag),
                "agent": spaces.Box(shape=(d.clusters,), **flag),
                "task_mask": spaces.Box(shape=(d.actions,), **flag),
                "action_mask": spaces.Tuple(
                    [
                        spaces.Box(shape=(n,), **flag)
                        for n in (d.actions, d.cpu_levels, d.gpu_levels) * d.max_starts
                    ]
                ),
                "cpu_mask": spaces.Box(shape=(d.actions, d.cpu_levels), **flag),
                "gpu_mask": spaces.Box(shape=(d.actions, d.gpu_levels), **flag),
                "free": spaces.Box(
                    low=0, high=int(self.capacity.max()), shape=(3,), dtype=np.int64
                ),
                "demand": spaces.Box(
                    low=0, high=np.iinfo(np.int32).max, shape=(d.actions, 3), dtype=np.int64
                ),
            }
        )

    def action_space(self) -> spaces.MultiDiscrete:
        d = self.d
        return spaces.MultiDiscrete([d.actions, d.cpu_levels, d.gpu_levels] * d.max_starts)

    def state_size(self) -> int:
        d = self.d
        return (
            d.clusters
            * (
                len(CLUSTER_FEATURES)
                - 1
                + d.window * self.n_task_feat
                + d.running * self.n_run_feat
            )
            + 1
        )

    # ------------------------------------------------------------------ building
    def build(self, sim: Simulator) -> tuple[list[dict], list[dict], np.ndarray]:
        """Observations and facts for every cluster, plus the global state vector."""
        d = self.d
        tr = sim.trace
        windows = sim.windows()
        waiting_vis = sim.waiting_visible()
        n_running = np.array([len(r) for r in sim.running])
        cap = self.capacity
        free = sim.free
        base_clusters = np.empty((d.clusters, len(CLUSTER_FEATURES)), dtype=np.float32)
        base_clusters[:, 0] = free[:, 0] / self.cmax
        base_clusters[:, 1] = free[:, 1] / self.gmax
        base_clusters[:, 2] = free[:, 2] / self.mmax
        base_clusters[:, 3] = cap[:, 0] / self.cmax
        base_clusters[:, 4] = cap[:, 1] / self.gmax
        base_clusters[:, 5] = np.minimum(n_running / d.running, 1.0)
        base_clusters[:, 6] = squash(waiting_vis.astype(np.float32), d.window)
        base_clusters[:, 7] = 0.0
        obs_list, facts_list = [], []
        state_parts = [base_clusters[:, :7].ravel()]
        for c in range(d.clusters):
            ids = windows[c]
            run_ids = np.asarray(sim.running[c][: d.running], dtype=np.int64)
            obs, facts = self._agent(sim, c, ids, run_ids, base_clusters)
            obs_list.append(obs)
            facts_list.append(facts)
            state_parts.append(obs["pending"].ravel())
            state_parts.append(obs["running"].ravel())
        state_parts.append(np.array([len(sim.waiting) / (len(sim.waiting) + d.window)]))
        state = np.concatenate(state_parts).astype(np.float32)
        del tr
        return obs_list, facts_list, state

    def _agent(
        self,
        sim: Simulator,
        c: int,
        ids: np.ndarray,
        run_ids: np.ndarray,
        base_clusters: np.ndarray,
    ) -> tuple[dict, dict]:
        d = self.d
        tr = sim.trace
        k = len(ids)
        free_c = sim.free[c]
        clusters = base_clusters.copy()
        clusters[c, 7] = 1.0

        # Pending window.
        pending = np.zeros((d.window, self.n_task_feat), dtype=np.float32)
        pending_mask = np.zeros(d.window, dtype=np.int8)
        pending_visible = np.zeros((d.window, d.clusters), dtype=np.int8)
        action_mask = np.zeros(d.actions, dtype=np.int8)
        cpu_mask = np.zeros((d.actions, d.cpu_levels), dtype=np.int8)
        gpu_mask = np.zeros((d.actions, d.gpu_levels), dtype=np.int8)
        demand = np.zeros((d.actions, 3), dtype=np.int64)
        action_mask[0] = 1
        cpu_mask[0, 0] = 1
        gpu_mask[0, 0] = 1
        if k:
            types = tr.type_idx[ids]
            mn = tr.min_demand[ids]
            cp = tr.cap[ids]
            hi_c = np.minimum(cp[:, 0], free_c[0])
            hi_g = np.minimum(cp[:, 1], free_c[1])
            mem_ok = (self.capacity[c, 2] == 0) | (mn[:, 2] <= free_c[2])
            cm = (self.cpu_levels[None, :] >= mn[:, :1]) & (
                self.cpu_levels[None, :] <= hi_c[:, None]
            )
            gm = (self.gpu_levels[None, :] >= mn[:, 1:2]) & (
                self.gpu_levels[None, :] <= hi_g[:, None]
            )
            fits = cm.any(axis=1) & gm.any(axis=1) & mem_ok
            cm &= fits[:, None]
            gm &= fits[:, None]
            cpu_mask[1 : k + 1] = cm
            gpu_mask[1 : k + 1] = gm
            action_mask[1 : k + 1] = fits
            demand[1 : k + 1] = mn
            if self.capacity[c, 2] == 0:
                demand[:, 2] = 0  # memory is not modelled on this cluster
            pending_mask[:k] = 1
            pending_visible[:k] = tr.visible[ids]
            pending[np.arange(k), types] = 1.0
            f = pending[:k, d.types :]
            f[:, 0] = squash((sim.slot - tr.arrival[ids]).astype(np.float32), 8.0)
            f[:, 1] = mn[:, 0] / self.cmax
            f[:, 2] = mn[:, 1] / self.gmax
            f[:, 3] = np.minimum(cp[:, 0] / self.cmax, 1.0)
            f[:, 4] = np.minimum(cp[:, 1] / self.gmax, 1.0)
            f[:, 5] = tr.visible[ids].sum(axis=1) / d.clusters
            f[:, 6] = np.minimum(sim.progress[ids] / tr.work[ids], 1.0)
            f[:, 7] = fits
            lc = np.minimum(mn[:, 0], d.cpu_levels - 1)
            lg = np.minimum(mn[:, 1], d.gpu_levels - 1)
            rmax = self.type_rate_max[types]
            f[:, 8] = self.speed.base[types, lc, lg] / rmax
            bc = np.clip(hi_c, 0, d.cpu_levels - 1)
            bg = np.clip(hi_g, 0, d.gpu_levels - 1)
            f[:, 9] = np.where(fits, self.speed.base[types, bc, bg] / rmax, 0.0)

        # Running tasks.
        r = len(run_ids)
        running = np.zeros((d.running, self.n_run_feat), dtype=np.float32)
        running_mask = np.zeros(d.running, dtype=np.int8)
        if r:
            types = tr.type_idx[run_ids]
            alloc = sim.alloc[run_ids]
            running_mask[:r] = 1
            running[np.arange(r), types] = 1.0
            g = running[:r, d.types :]
            frac = np.minimum(sim.progress[run_ids] / tr.work[run_ids], 1.0)
            g[:, 0] = frac
            g[:, 1] = alloc[:, 0] / self.cmax
            g[:, 2] = alloc[:, 1] / self.gmax
            g[:, 3] = squash(sim.run_slots[run_ids].astype(np.float32), 8.0)
            g[:, 4] = np.minimum(
                self.speed.rate(types, alloc[:, 0], alloc[:, 1], frac) / self.type_rate_max[types],
                1.0,
            )
            if d.elastic:
                lo = 1 + d.window
                mn = tr.min_demand[run_ids]
                cp = tr.cap[run_ids]
                hi_c = np.minimum(cp[:, 0], free_c[0] + alloc[:, 0])
                hi_g = np.minimum(cp[:, 1], free_c[1] + alloc[:, 1])
                cm = (self.cpu_levels[None, :] >= mn[:, :1]) & (
                    self.cpu_levels[None, :] <= hi_c[:, None]
                )
                cm[:, 0] = True  # cpu level 0 pauses the task
                gm = (self.gpu_levels[None, :] >= mn[:, 1:2]) & (
                    self.gpu_levels[None, :] <= hi_g[:, None]
                )
                cpu_mask[lo : lo + r] = cm
                gpu_mask[lo : lo + r] = gm
                action_mask[lo : lo + r] = 1
                demand[lo : lo + r, :2] = mn[:, :2]

        obs = {
            "clusters": clusters,
            "pending": pending,
            "pending_mask": pending_mask,
            "pending_visible": pending_visible,
            "running": running,
            "running_mask": running_mask,
            "agent": np.eye(d.clusters, dtype=np.int8)[c],
            "task_mask": action_mask,
            "action_mask": per_dimension_mask(action_mask, cpu_mask, gpu_mask, d.max_starts),
            "cpu_mask": cpu_mask,
            "gpu_mask": gpu_mask,
            "free": free_c.copy(),
            "demand": demand,
        }
        index = np.full(d.actions, -1, dtype=np.int64)
        index[1 : k + 1] = ids
        if d.elastic and r:
            index[1 + d.window : 1 + d.window + r] = run_ids
        facts = {"task_index": index, "running_index": run_ids}
        return obs, facts


def per_dimension_mask(
    task_mask: np.ndarray, cpu_mask: np.ndarray, gpu_mask: np.ndarray, starts: int
) -> tuple[np.ndarray, ...]:
    """Per-dimension masks in the form ``MultiDiscrete.sample(mask=...)`` accepts.

    The allocation masks are the union over the valid tasks, so a sampled triple can still be
    infeasible for the sampled task (the env then treats it as a reported no-op);
    :func:`conditional_sample` never is.
    """
    valid = task_mask.astype(bool)
    one = (task_mask, cpu_mask[valid].max(axis=0), gpu_mask[valid].max(axis=0))
    return one * starts


def conditional_sample(obs: dict, rng: np.random.Generator) -> tuple[int, int, int]:
    """A uniformly random valid (task, cpu, gpu): task first, then its feasible amounts."""
    task = int(rng.choice(np.flatnonzero(obs["task_mask"])))
    cpu = int(rng.choice(np.flatnonzero(obs["cpu_mask"][task])))
    gpu = int(rng.choice(np.flatnonzero(obs["gpu_mask"][task])))
    return task, cpu, gpu


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
    starts = len(obs["action_mask"]) // 3
    out["action_mask"] = per_dimension_mask(
        out["task_mask"], out["cpu_mask"], out["gpu_mask"], starts
    )
    out["free"] = free
    return out
