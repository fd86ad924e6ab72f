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
)
STATIC_TASK_FEATURES = 6  # the first six task features never change while a task waits
#: Columns of the per-task integer table: raw facts gathered once per build.
INT_COLUMNS = ("task_id", "arrival", "type", "min_cpu", "min_gpu", "mem", "max_cpu", "max_gpu")
#: Minimum demand of a padding row: larger than any capacity, so its masks are all false.
PAD_DEMAND = 1 << 40
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
        self.mem_modelled = bool((capacity[:, 2] > 0).any())
        self.eye = np.eye(dims.clusters, dtype=np.int8)

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
    def prepare(self, trace: Trace) -> None:
        """Per-trace tables of the facts that never change, with a padding row at the end."""
        d = self.d
        t = len(trace)
        ints = np.empty((t + 1, len(INT_COLUMNS)), dtype=np.int64)
        ints[:t, 0] = trace.task_id
        ints[:t, 1] = trace.arrival
        ints[:t, 2] = trace.type_idx
        ints[:t, 3:6] = trace.min_demand
        ints[:t, 6:8] = trace.cap
        ints[t] = (-1, -1, -1, PAD_DEMAND, PAD_DEMAND, PAD_DEMAND, 0, 0)
        feat = np.zeros((t + 1, d.types + STATIC_TASK_FEATURES), dtype=np.float32)
        feat[np.arange(t), trace.type_idx] = 1.0
        f = feat[:t, d.types :]
        f[:, 0] = trace.min_demand[:, 0] / self.cmax
        f[:, 1] = trace.min_demand[:, 1] / self.gmax
        f[:, 2] = np.minimum(trace.cap[:, 0] / self.cmax, 1.0)
        f[:, 3] = np.minimum(trace.cap[:, 1] / self.gmax, 1.0)
        f[:, 4] = trace.visible.sum(axis=1) / d.clusters
        lc = np.minimum(trace.min_demand[:, 0], d.cpu_levels - 1)
        lg = np.minimum(trace.min_demand[:, 1], d.gpu_levels - 1)
        types = trace.type_idx
        f[:, 5] = self.speed.base[types, lc, lg] / self.type_rate_max[types]
        visible = np.zeros((t + 1, d.clusters), dtype=bool)
        visible[:t] = trace.visible
        self.ints = ints
        self.static = feat
        self.visible = visible
        self.pad = t

    def build(self, sim: Simulator) -> tuple[list[dict], list[dict], np.ndarray]:
        """Observations and facts for every cluster, plus the global state vector.

        Everything is computed for all clusters at once on padded [N, ...] arrays; each
        agent's observation holds row views of fresh arrays (nothing is reused across steps).
        """
        d = self.d
        tr = sim.trace
        n, w, nr = d.clusters, d.window, d.running
        cap = self.capacity
        free = sim.free
        pad = self.pad
        win = np.full((n, w), pad, dtype=np.int64)
        for c, ids in enumerate(sim.pending.windows()):
            win[c, : len(ids)] = ids
        run = np.full((n, nr), -1, dtype=np.int64)
        n_running = np.empty(n)
        for c, ids in enumerate(sim.running):
            k = min(len(ids), nr)
            run[c, :k] = ids[:k]
            n_running[c] = len(ids)

        clusters = np.empty((n, n, len(CLUSTER_FEATURES)), dtype=np.float32)
        base = clusters[0]
        base[:, 0] = free[:, 0] / self.cmax
        base[:, 1] = free[:, 1] / self.gmax
        base[:, 2] = free[:, 2] / self.mmax
        base[:, 3] = cap[:, 0] / self.cmax
        base[:, 4] = cap[:, 1] / self.gmax
        base[:, 5] = np.minimum(n_running / nr, 1.0)
        base[:, 6] = squash(sim.waiting_visible().astype(np.float32), w)
        base[:, 7] = 0.0
        clusters[1:] = base
        clusters[np.arange(n), np.arange(n), 7] = 1.0

        # Pending windows: padding rows have an impossible demand, so their masks are false.
        pm = win != pad
        ints = self.ints[win]
        types = ints[..., 2]
        mn = ints[..., 3:6]
        hi_c = np.minimum(ints[..., 6], free[:, None, 0])
        hi_g = np.minimum(ints[..., 7], free[:, None, 1])
        lc, lg = self.cpu_levels, self.gpu_levels
        cm = (lc >= mn[..., 0:1]) & (lc <= hi_c[..., None])
        gm = (lg >= mn[..., 1:2]) & (lg <= hi_g[..., None])
        fits = cm.any(axis=2)
        fits &= gm.any(axis=2)
        if self.mem_modelled:
            fits &= (cap[:, None, 2] == 0) | (mn[..., 2] <= free[:, None, 2])
        cm &= fits[..., None]
        gm &= fits[..., None]
        a = d.actions
        task_mask = np.zeros((n, a), dtype=np.int8)
        cpu_mask = np.zeros((n, a, d.cpu_levels), dtype=np.int8)
        gpu_mask = np.zeros((n, a, d.gpu_levels), dtype=np.int8)
        demand = np.zeros((n, a, 3), dtype=np.int64)
        task_mask[:, 0] = 1
        cpu_mask[:, 0, 0] = 1
        gpu_mask[:, 0, 0] = 1
        task_mask[:, 1 : w + 1] = fits
        cpu_mask[:, 1 : w + 1] = cm
        gpu_mask[:, 1 : w + 1] = gm
        demand[:, 1 : w + 1] = mn * pm[..., None]
        demand[cap[:, 2] == 0, :, 2] = 0  # memory is not modelled on those clusters

        ns = d.types + STATIC_TASK_FEATURES
        pending = np.empty((n, w, self.n_task_feat), dtype=np.float32)
        pending[..., :ns] = self.static[win]
        f = pending[..., ns:]
        f[..., 0] = squash((sim.slot - ints[..., 1]).astype(np.float32), 8.0) * pm
        if d.elastic:
            safe = np.where(pm, win, 0)
            f[..., 1] = np.minimum(sim.progress[safe] / tr.work[safe], 1.0) * pm
        else:
            f[..., 1] = 0.0  # a waiting task has made no progress without preemption
        f[..., 2] = fits
        tsafe = np.maximum(types, 0)
        f[..., 3] = np.where(
            fits,
            # 0 <= hi <= levels - 1: free never exceeds capacity, caps never exceed the grid.
            self.speed.base[tsafe, hi_c, hi_g] / self.type_rate_max[tsafe],
            0.0,
        )
        pending_visible = self.visible[win].astype(np.int8)

        # Running tasks.
        rm = run >= 0
        rsafe = np.where(rm, run, 0)
        rtypes = tr.type_idx[rsafe]
        alloc = sim.alloc[rsafe]
        frac = np.minimum(sim.progress[rsafe] / tr.work[rsafe], 1.0)
        running = np.zeros((n, nr, self.n_run_feat), dtype=np.float32)
        rows, cols = np.nonzero(rm)
        running[rows, cols, rtypes[rows, cols]] = 1.0
        g = running[..., d.types :]
        g[..., 0] = frac
        g[..., 1] = alloc[..., 0] / self.cmax
        g[..., 2] = alloc[..., 1] / self.gmax
        g[..., 3] = squash(sim.run_slots[rsafe].astype(np.float32), 8.0)
        rate = self.speed.rate(
            rtypes.ravel(), alloc[..., 0].ravel(), alloc[..., 1].ravel(), frac.ravel()
        ).reshape(n, nr)
        g[..., 4] = np.minimum(rate / self.type_rate_max[rtypes], 1.0)
        running *= rm[..., None]
        if d.elastic:
            lo = 1 + w
            rmn = tr.min_demand[rsafe]
            rcp = tr.cap[rsafe]
            rhi_c = np.minimum(rcp[..., 0], free[:, None, 0] + alloc[..., 0])
            rhi_g = np.minimum(rcp[..., 1], free[:, None, 1] + alloc[..., 1])
            rcm = (lc >= rmn[..., 0:1]) & (lc <= rhi_c[..., None])
            rcm[..., 0] = True  # cpu level 0 pauses the task
            rgm = (lg >= rmn[..., 1:2]) & (lg <= rhi_g[..., None])
            cpu_mask[:, lo:] = rcm & rm[..., None]
            gpu_mask[:, lo:] = rgm & rm[..., None]
            task_mask[:, lo:] = rm
            demand[:, lo:, :2] = np.where(rm[..., None], rmn[..., :2], 0)

        index = np.full((n, a), -1, dtype=np.int64)
        index[:, 1 : w + 1] = np.where(pm, win, -1)
        if d.elastic:
            index[:, 1 + w :] = run
        agent = self.eye.copy()
        free_copy = free.copy()
        pm8 = pm.astype(np.int8)
        rm8 = rm.astype(np.int8)
        # Per-dimension masks: the union of the allocation masks over each agent's valid tasks.
        cpu_union = cpu_mask.max(axis=1)
        gpu_union = gpu_mask.max(axis=1)
        # Raw (unnormalised) facts for the infos, aligned with the action index.
        valid = index >= 0
        isafe = np.where(valid, index, pad)
        facts_int = self.ints[isafe]
        task_id = facts_int[..., 0]
        task_arrival = facts_int[..., 1]
        task_type = facts_int[..., 2]
        task_cap = facts_int[..., 6:8]
        isafe = np.where(valid, index, 0)
        attained = np.where(valid, sim.attained_gpu[isafe], 0.0)
        task_alloc = np.where(valid[..., None], sim.alloc[isafe, :2], 0)
        progress = np.where(valid, sim.progress[isafe] / tr.work[isafe], 0.0)
        remaining = np.where(valid, tr.work[isafe] - sim.progress[isafe], 0.0)
        run_slots = sim.run_slots[rsafe]
        run_ints = self.ints[np.where(rm, run, pad)]
        capacity = cap.copy()
        obs_list, facts_list = [], []
        for c in range(n):
            obs_list.append(
                {
                    "clusters": clusters[c],
                    "pending": pending[c],
                    "pending_mask": pm8[c],
                    "pending_visible": pending_visible[c],
                    "running": running[c],
                    "running_mask": rm8[c],
                    "agent": agent[c],
                    "task_mask": task_mask[c],
                    "action_mask": (task_mask[c], cpu_union[c], gpu_union[c]) * d.max_starts,
                    "cpu_mask": cpu_mask[c],
                    "gpu_mask": gpu_mask[c],
                    "free": free_copy[c],
                    "demand": demand[c],
                }
            )
            live = rm[c]
            facts_list.append(
                {
                    "task_index": index[c],
                    "task_id": task_id[c],
                    "task_arrival": task_arrival[c],
                    "task_type": task_type[c],
                    "task_attained_gpu": attained[c],
                    "task_cap": task_cap[c],
                    "task_alloc": task_alloc[c],
                    "task_progress": progress[c],
                    "running_index": run[c][live],
                    "running_type": rtypes[c][live],
                    "running_alloc": alloc[c, :, :2][live],
                    "running_min_demand": run_ints[c][live][:, 3:6],
                    "running_cap": run_ints[c][live][:, 6:8],
                    "running_progress": frac[c][live],
                    "running_run_slots": run_slots[c][live],
                    "free": free_copy[c],
                    "capacity": capacity[c],
                    "oracle_remaining_work": remaining[c],
                }
            )
        state = np.concatenate(
            [
                base[:, :7].ravel(),
                pending.ravel(),
                running.ravel(),
                [len(sim.waiting) / (len(sim.waiting) + w)],
            ]
        ).astype(np.float32)
        return obs_list, facts_list, state


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
    starts = len(obs["action_mask"]) // 3
    out["action_mask"] = per_dimension_mask(
        out["task_mask"], out["cpu_mask"], out["gpu_mask"], starts
    )
    out["free"] = free
    return out
