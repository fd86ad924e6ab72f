"""Baseline machinery: one snapshot of every agent's view, a plan of starts and resizes, actions.

Every rule-based baseline sees all agents' observations in one ``act`` call, so it schedules the
whole network at once: it reads the pending windows and running sets of all clusters into a
:class:`Snapshot`, decides a :class:`Plan` (which pending task starts where and with how much,
which running task is resized), and :meth:`Plan.actions` turns the plan into one masked-valid
action vector per agent. A task planned on one cluster is claimed, so no other agent picks it
in the same round, and the env never has to settle a conflict.

An agent changes at most ``max_starts`` things per round (one in single-task mode); rounds go on
inside a slot while any agent changes something, so a plan with more changes than that is
carried out over the following rounds of the same slot. Non-preemptive baselines simply plan
again every round (their plan only ever starts tasks). Elastic baselines keep the slot's plan of
target allocations and emit its remaining differences each round, so a slot's decision is taken
once and cannot oscillate.

Baselines read only the observations and the documented ``infos`` keys; the oracle keys
(``oracle_remaining_work``, ``oracle_speed_model``) are read by :attr:`TaskView.remaining_work`
and :meth:`BaselinePolicy.oracle_speed`, which only oracle policies call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from envs.errors import ConfigError

CPU, GPU, MEM = 0, 1, 2


# ---------------------------------------------------------------------------------- snapshot
@dataclass
class TaskView:
    """A waiting task in one or more pending windows."""

    task: int
    """Simulator task row (``infos["task_index"]``)."""
    type: int
    arrival: int
    attained_gpu: float
    """GPU x slots of service received so far (non-zero only for paused tasks)."""
    progress: float
    """Fraction of the work done (non-zero only for paused tasks)."""
    min_demand: np.ndarray
    """int [3]: minimum CPU, GPU and memory (0 where memory is not modelled)."""
    cap: np.ndarray
    """int [2]: per-task cap on CPU and GPU."""
    oracle_work: float
    """Oracle: the true remaining work (``infos["oracle_remaining_work"]``, NaN when the infos
    do not carry it); only oracle policies read it."""
    where: dict[int, int] = field(default_factory=dict)
    """Cluster index -> action index of this task in that cluster's window."""


@dataclass
class RunningView:
    """A task running on a cluster."""

    task: int
    type: int
    cluster: int
    alloc: np.ndarray
    """int [2]: current CPU and GPU."""
    progress: float
    run_slots: int
    attained_gpu: float
    action: int
    """Action index that addresses it in elastic mode; -1 when it cannot be addressed."""
    min_demand: np.ndarray
    """int [3] in elastic mode (from ``obs["demand"]``); the remembered value otherwise."""
    cap: np.ndarray


@dataclass
class Snapshot:
    """Everything the baselines see in one round, for all clusters at once."""

    agents: list[str]
    slot: int
    pending: dict[int, TaskView]
    """Task row -> view, in arrival order (ties by row)."""
    running: list[list[RunningView]]
    free: np.ndarray
    """int [N, 3]."""
    capacity: np.ndarray
    """int [N, 3]."""
    elastic: bool

    @property
    def n(self) -> int:
        return len(self.agents)


def build_snapshot(
    env: Any, observations: dict[str, dict], infos: dict[str, dict] | None, memory: dict
) -> Snapshot:
    """Read every agent's observation and infos into one :class:`Snapshot`.

    ``memory`` maps task rows to ``(min_demand, cap)`` seen while they waited, so running tasks
    keep their minimum demand in non-elastic mode (where the observation no longer shows it).
    """
    if infos is None:
        raise ValueError("rule-based baselines need the env's infos (task_index and friends)")
    d = env.dims
    agents = list(env.possible_agents)
    n = len(agents)
    free = np.zeros((n, 3), dtype=np.int64)
    capacity = np.asarray(env.capacity, dtype=np.int64).copy()
    pending: dict[int, TaskView] = {}
    running: list[list[RunningView]] = [[] for _ in range(n)]
    slot = 0
    for c, agent in enumerate(agents):
        if agent not in observations:
            continue
        obs, info = observations[agent], infos[agent]
        slot = int(info["slot"])
        free[c] = np.asarray(obs["free"], dtype=np.int64)
        index = np.asarray(info["task_index"])
        demand = np.asarray(obs["demand"])
        oracle = info.get("oracle_remaining_work")
        for i in range(1, d.window + 1):
            t = int(index[i])
            if t < 0:
                continue
            tv = pending.get(t)
            if tv is None:
                mn = demand[i].astype(np.int64).copy()
                cap = np.asarray(info["task_cap"][i], dtype=np.int64).copy()
                memory[t] = (mn, cap)
                tv = TaskView(
                    task=t,
                    type=int(info["task_type"][i]),
                    arrival=int(info["task_arrival"][i]),
                    attained_gpu=float(info["task_attained_gpu"][i]),
                    progress=float(info["task_progress"][i]),
                    min_demand=mn,
                    cap=cap,
                    oracle_work=float(oracle[i]) if oracle is not None else float("nan"),
                )
                pending[t] = tv
            tv.where[c] = i
        run_ids = np.asarray(info["running_index"])
        lo = 1 + d.window
        for j, t in enumerate(run_ids.tolist()):
            action = lo + j if d.elastic and lo + j < d.actions else -1
            if action >= 0:
                mn = demand[action].astype(np.int64).copy()
                cap = np.asarray(info["task_cap"][action], dtype=np.int64).copy()
                attained = float(info["task_attained_gpu"][action])
                memory[t] = (mn, cap)
            else:
                mn, cap = memory.get(t, (np.zeros(3, np.int64), capacity[c, :2].copy()))
                attained = 0.0
            running[c].append(
                RunningView(
                    task=int(t),
                    type=int(info["running_type"][j]),
                    cluster=c,
                    alloc=np.asarray(info["running_alloc"][j], dtype=np.int64).copy(),
                    progress=float(info["running_progress"][j]),
                    run_slots=int(info["running_run_slots"][j]),
                    attained_gpu=attained,
                    action=action,
                    min_demand=mn,
                    cap=cap,
                )
            )
    order = sorted(pending.values(), key=lambda v: (v.arrival, v.task))
    return Snapshot(
        agents=agents,
        slot=slot,
        pending={v.task: v for v in order},
        running=running,
        free=free,
        capacity=capacity,
        elastic=bool(d.elastic),
    )


# ---------------------------------------------------------------------------------- plan
@dataclass
class Op:
    """One change on one cluster: start a pending task or resize a running one."""

    action: int
    task: int
    cpu: int
    gpu: int
    mem: int
    """Memory the op takes (start) or gives back (pause); 0 for resizes."""
    old: tuple[int, int]
    """Allocation before the op ((0, 0) for a start)."""
    start: bool

    @property
    def releases(self) -> bool:
        """The op gives resources back and takes none (a pause or a pure shrink)."""
        return not self.start and self.cpu <= self.old[0] and self.gpu <= self.old[1]


class Plan:
    """Starts and resizes decided for one round, with the free resources they leave.

    ``free`` is what remains once every planned op has happened; ops are checked against it as
    they are added, and :meth:`actions` orders them so that each emitted one fits the resources
    actually free when the env executes it.
    """

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.free = snap.free.copy()
        self.ops: list[list[Op]] = [[] for _ in range(snap.n)]
        self.started: dict[int, tuple[int, int, int]] = {}
        """Task row -> (cluster, cpu, gpu) of the planned starts."""

    # ---------------------------------------------------------------- checks
    def fits(self, c: int, tv: TaskView, cpu: int, gpu: int) -> bool:
        """Would pending task ``tv`` fit cluster ``c`` with (cpu, gpu) after the planned ops?"""
        if tv.task in self.started or c not in tv.where:
            return False
        mn, cap, free = tv.min_demand, tv.cap, self.free[c]
        return bool(
            mn[CPU] <= cpu <= min(cap[CPU], free[CPU])
            and mn[GPU] <= gpu <= min(cap[GPU], free[GPU])
            and mn[MEM] <= free[MEM]
        )

    def max_alloc(self, c: int, tv: TaskView) -> tuple[int, int] | None:
        """The largest (cpu, gpu) ``tv`` can get on ``c`` now; None if its minimum does not fit."""
        if not self.fits(c, tv, int(tv.min_demand[CPU]), int(tv.min_demand[GPU])):
            return None
        free = self.free[c]
        return int(min(tv.cap[CPU], free[CPU])), int(min(tv.cap[GPU], free[GPU]))

    # ---------------------------------------------------------------- changes
    def start(self, c: int, tv: TaskView, cpu: int, gpu: int) -> None:
        """Plan to start pending task ``tv`` on cluster ``c`` with (cpu, gpu)."""
        if not self.fits(c, tv, cpu, gpu):
            raise ValueError(f"task {tv.task} does not fit cluster {c} with ({cpu}, {gpu})")
        mem = int(tv.min_demand[MEM])
        self.free[c] -= (cpu, gpu, mem)
        self.started[tv.task] = (c, cpu, gpu)
        self.ops[c].append(Op(tv.where[c], tv.task, cpu, gpu, mem, (0, 0), True))

    def resize(self, rv: RunningView, cpu: int, gpu: int) -> None:
        """Plan to resize running task ``rv`` to (cpu, gpu), or pause it with (0, 0)."""
        if rv.action < 0:
            raise ValueError(f"running task {rv.task} cannot be addressed")
        c = rv.cluster
        old = (int(rv.alloc[CPU]), int(rv.alloc[GPU]))
        if (cpu, gpu) == old:
            return
        mem = 0
        if cpu == 0 and gpu == 0:
            mem = int(rv.min_demand[MEM])
            self.free[c, MEM] += mem
        elif not (
            rv.min_demand[CPU] <= cpu <= min(rv.cap[CPU], self.free[c, CPU] + old[0])
            and rv.min_demand[GPU] <= gpu <= min(rv.cap[GPU], self.free[c, GPU] + old[1])
        ):
            raise ValueError(f"resize of task {rv.task} to ({cpu}, {gpu}) does not fit")
        self.free[c, CPU] += old[0] - cpu
        self.free[c, GPU] += old[1] - gpu
        self.ops[c].append(Op(rv.action, rv.task, cpu, gpu, mem, old, False))

    # ---------------------------------------------------------------- actions
    def actions(self, env: Any, observations: dict[str, dict]) -> dict[str, np.ndarray]:
        """One action vector per agent: its first ops that fit, releases first.

        The first emitted triple of each agent is checked against its observation's masks; the
        following ones (multi-task mode) against the free resources the earlier ones leave.
        """
        starts = env.dims.max_starts
        out: dict[str, np.ndarray] = {}
        for c, agent in enumerate(self.snap.agents):
            if agent not in observations:
                continue
            a = np.zeros(3 * starts, dtype=np.int64)
            free = self.snap.free[c].copy()
            ordered = [op for op in self.ops[c] if op.releases] + [
                op for op in self.ops[c] if not op.releases
            ]
            k = 0
            for op in ordered:
                if k == starts:
                    break
                if op.start:
                    ok = op.cpu <= free[CPU] and op.gpu <= free[GPU] and op.mem <= free[MEM]
                else:
                    ok = op.cpu - op.old[0] <= free[CPU] and op.gpu - op.old[1] <= free[GPU]
                if not ok:
                    continue
                if k == 0 and not masked_valid(observations[agent], op.action, op.cpu, op.gpu):
                    raise AssertionError(
                        f"{agent}: planned ({op.action}, {op.cpu}, {op.gpu}) is not mask-valid"
                    )
                if op.start:
                    free -= (op.cpu, op.gpu, op.mem)
                else:
                    free[CPU] += op.old[0] - op.cpu
                    free[GPU] += op.old[1] - op.gpu
                    free[MEM] += op.mem
                a[3 * k : 3 * k + 3] = (op.action, op.cpu, op.gpu)
                k += 1
            out[agent] = a
        return out


def masked_valid(obs: dict, action: int, cpu: int, gpu: int) -> bool:
    """Is (action, cpu, gpu) allowed by the observation's task and allocation masks?"""
    return bool(
        obs["task_mask"][action] and obs["cpu_mask"][action][cpu] and obs["gpu_mask"][action][gpu]
    )


def can_pause(obs: dict, action: int) -> bool:
    """Do the masks allow pausing the running task at ``action`` with the (0, 0) allocation?"""
    return bool(obs["cpu_mask"][action][0] and obs["gpu_mask"][action][0])


# ---------------------------------------------------------------------------------- placement
def free_score(plan: Plan, c: int, cpu: int, gpu: int) -> float:
    """How much room cluster ``c`` keeps after a start: free CPU and GPU shares of the largest
    cluster, summed (the placement rule of the baselines: the roomiest cluster first)."""
    top = np.maximum(plan.snap.capacity[:, :2].max(axis=0), 1)
    left = plan.free[c, :2] - (cpu, gpu)
    return float((left / top).sum())


def place_in_order(
    plan: Plan,
    order: list[TaskView],
    alloc: Any,
    better: Any = None,
) -> None:
    """Start the tasks of ``order`` one after the other, each on its best cluster.

    ``alloc(plan, c, tv) -> (cpu, gpu) | None`` is the policy's allocation rule on cluster ``c``;
    ``better(plan, c, tv, cpu, gpu)`` scores a placement (higher is better; default: the
    roomiest cluster, ties to the lower index). A task that fits nowhere is skipped (backfill).
    """
    for tv in order:
        best: tuple[float, int, int, int] | None = None
        for c in sorted(tv.where):
            a = alloc(plan, c, tv)
            if a is None:
                continue
            cpu, gpu = a
            if not plan.fits(c, tv, cpu, gpu):
                continue
            score = better(plan, c, tv, cpu, gpu) if better else free_score(plan, c, cpu, gpu)
            if best is None or score > best[0] + 1e-12:
                best = (score, c, cpu, gpu)
        if best is not None:
            plan.start(best[1], tv, best[2], best[3])


def min_alloc(plan: Plan, c: int, tv: TaskView) -> tuple[int, int]:
    """The type's minimum demand (the allocation rule of ``min`` and of ``fifo`` by default)."""
    return int(tv.min_demand[CPU]), int(tv.min_demand[GPU])


# ---------------------------------------------------------------------------------- policy base
class BaselinePolicy:
    """Common life cycle of the rule-based baselines: snapshot, plan, actions.

    Subclasses implement :meth:`plan` (and may learn in :meth:`observe`). Elastic variants
    decide target allocations once per slot, keep them in a :class:`SlotTargets` and plan with
    :func:`plan_towards`.
    """

    name = "baseline"

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self.dims = env.dims
        self.elastic = bool(env.scenario.elastic)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.memory: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def reset(self, seed: int | None = None) -> None:
        """Forget the episode and reseed (``seed=None`` keeps the constructor's seed)."""
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
        self.memory = {}

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        """One masked-valid action per agent in ``observations``."""
        if not observations:
            return {}
        snap = build_snapshot(self.env, observations, infos, self.memory)
        self.observe(snap)
        plan = self.plan(snap, observations)
        return plan.actions(self.env, observations)

    def observe(self, snap: Snapshot) -> None:
        """Hook: learn from the snapshot before planning (speed models, attained service)."""

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        raise NotImplementedError

    def oracle_speed(self, infos: dict[str, dict]) -> Any:
        """Oracle: the env's speed model (``infos[agent]["oracle_speed_model"]``)."""
        return next(iter(infos.values()))["oracle_speed_model"]


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Validate a string option of a policy, naming it in the error."""
    if value not in allowed:
        raise ConfigError(f"policy option {name}={value!r}: expected one of {', '.join(allowed)}")
    return value


# ---------------------------------------------------------------------------------- elastic
class SlotTargets:
    """The target allocations of one slot, kept while its rounds carry them out.

    ``targets`` maps task rows to (cluster, cpu, gpu); (0, 0) pauses a running task, a missing
    running task keeps its allocation, a missing pending task keeps waiting.
    """

    def __init__(self) -> None:
        self.slot = -1
        self.targets: dict[int, tuple[int, int, int]] = {}

    def get(self, snap: Snapshot) -> dict[int, tuple[int, int, int]] | None:
        if snap.slot != self.slot:
            return None
        for t, (c, _, _) in self.targets.items():
            tv = snap.pending.get(t)
            if tv is not None and c not in tv.where:
                return None  # the task left the cluster's window: decide again
        return self.targets

    def set(self, snap: Snapshot, targets: dict[int, tuple[int, int, int]]) -> None:
        self.slot = snap.slot
        self.targets = dict(targets)


def plan_towards(
    snap: Snapshot, observations: dict[str, dict], targets: dict[int, tuple[int, int, int]]
) -> Plan:
    """A plan of the differences between the current state and ``targets``.

    Pauses and shrinks come first (they free resources), then grows and starts in the order of
    ``targets``. An op that does not fit yet waits for a later round of the slot.
    """
    plan = Plan(snap)
    rows = {rv.task: rv for runs in snap.running for rv in runs}
    for c, agent in enumerate(snap.agents):
        obs = observations.get(agent)
        if obs is None:
            continue
        for rv in snap.running[c]:
            tgt = targets.get(rv.task)
            if tgt is None or rv.action < 0:
                continue
            _, cpu, gpu = tgt
            if cpu == 0 and gpu == 0 and not can_pause(obs, rv.action):
                cpu, gpu = int(rv.min_demand[CPU]), int(rv.min_demand[GPU])
            if cpu <= rv.alloc[CPU] and gpu <= rv.alloc[GPU] and (cpu, gpu) != tuple(rv.alloc):
                plan.resize(rv, cpu, gpu)
    for t, (c, cpu, gpu) in targets.items():
        rv = rows.get(t)
        if rv is not None:
            if rv.action < 0 or (cpu <= rv.alloc[CPU] and gpu <= rv.alloc[GPU]):
                continue
            cpu = max(cpu, int(rv.min_demand[CPU]))
            gpu = max(gpu, int(rv.min_demand[GPU]))
            room_c = plan.free[c, CPU] + rv.alloc[CPU]
            room_g = plan.free[c, GPU] + rv.alloc[GPU]
            cpu, gpu = int(min(cpu, room_c)), int(min(gpu, room_g))
            if (cpu, gpu) != tuple(rv.alloc) and cpu >= rv.min_demand[CPU]:
                plan.resize(rv, cpu, gpu)
            continue
        tv = snap.pending.get(t)
        if tv is not None and cpu > 0 and plan.fits(c, tv, cpu, gpu):
            plan.start(c, tv, cpu, gpu)
    return plan


# ---------------------------------------------------------------------------------- speeds
class RateTracker:
    """Observed progress rates per task type and allocation, from the running tasks' infos.

    Between two slots a running task whose allocation did not change gains
    ``running_progress`` at ``running_alloc``; the tracker adds that (fraction of the work per
    slot) to its type's samples. Intervals that include a change (a resize, or a resume after
    a pause, which pay the switch penalty) are left out.
    """

    def __init__(self) -> None:
        self.last: dict[int, tuple[int, float, tuple[int, int], bool]] = {}
        self.samples: dict[int, dict[tuple[int, int], list[float]]] = {}
        """type -> (cpu, gpu) -> [progress gained, slots]."""
        self.version = 0

    def update(self, snap: Snapshot) -> None:
        seen: dict[int, tuple[int, float, tuple[int, int], bool]] = {}
        for runs in snap.running:
            for rv in runs:
                alloc = (int(rv.alloc[CPU]), int(rv.alloc[GPU]))
                rec = self.last.get(rv.task)
                if rec is None:
                    seen[rv.task] = (snap.slot, rv.progress, alloc, rv.progress > 0)
                    continue
                slot, progress, old, dirty = rec
                if old != alloc:
                    seen[rv.task] = (snap.slot, rv.progress, alloc, True)
                elif snap.slot > slot:
                    if not dirty:
                        self.add(rv.type, alloc, rv.progress - progress, snap.slot - slot)
                    seen[rv.task] = (snap.slot, rv.progress, alloc, False)
                else:
                    seen[rv.task] = rec
        self.last = seen

    def add(self, type_: int, alloc: tuple[int, int], gained: float, slots: int) -> None:
        s = self.samples.setdefault(type_, {}).setdefault(alloc, [0.0, 0.0])
        s[0] += gained
        s[1] += slots
        self.version += 1

    def rate(self, type_: int, alloc: tuple[int, int]) -> float | None:
        """Mean observed rate of the type at exactly this allocation, if seen."""
        s = self.samples.get(type_, {}).get(alloc)
        if s is None or s[1] <= 0:
            return None
        return s[0] / s[1]

    def mean_rate(self, type_: int) -> float | None:
        """Mean observed rate of the type over all allocations, if any."""
        s = self.samples.get(type_)
        if not s:
            return None
        gained = sum(v[0] for v in s.values())
        slots = sum(v[1] for v in s.values())
        return gained / slots if slots > 0 else None


#: Features of the fitted time-per-work model: Optimus's sync model 1/f = a/w + b + c*w/p +
#: d*w + e*p (p CPUs, w GPUs), plus an Amdahl CPU term 1/p.
def speed_features(cpu: np.ndarray, gpu: np.ndarray) -> np.ndarray:
    """Features of the fitted model at (cpu, gpu); zero amounts count as half a unit."""
    c = np.maximum(np.asarray(cpu, dtype=float), 0.5)
    g = np.maximum(np.asarray(gpu, dtype=float), 0.5)
    return np.stack([np.ones_like(c), 1.0 / g, 1.0 / c, g / c, g, c], axis=-1)


class FittedSpeed:
    """Per-type model of slots per unit of work, fitted by non-negative least squares.

    Optimus (Peng et al., EuroSys 2018, §4.1) fits each job's speed function to the speeds it
    observes; we fit one model per task type to :class:`RateTracker` samples (time per work =
    1 / rate, linear in the features of :func:`speed_features`, so NNLS fits it exactly as
    Optimus does). Pseudo-samples of an optimistic prior (linear speed-up from the minimum
    demand, scaled to the type's observed mean speed) fill in where samples are missing, so the
    greedy allocation tries larger allocations and the samples they produce correct the model.
    The whole prior weighs as much as ``prior_slots`` slots of samples, so a type's own samples
    soon outweigh it.
    """

    def __init__(self, prior_slots: float = 1.0) -> None:
        self.prior_slots = prior_slots
        self.theta: dict[int, np.ndarray] = {}
        self.version = -1

    def refit(self, tracker: RateTracker, types: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Refit every type in ``types`` (type -> (min_demand, cap)) if new samples came in."""
        key = tracker.version * 1000 + len(types)
        if key == self.version:
            return
        self.version = key
        for k, (mn, cap) in types.items():
            self.theta[k] = self._fit(tracker, k, mn, cap)

    def _fit(self, tracker: RateTracker, k: int, mn: np.ndarray, cap: np.ndarray) -> np.ndarray:
        samples = tracker.samples.get(k, {})
        obs = [(a, s[0], s[1]) for a, s in samples.items() if s[1] > 0]
        mc, mg = max(int(mn[CPU]), 1), max(int(mn[GPU]), 1)
        # Scale of the prior: the type's observed time per work, else one slot per work.
        rate = tracker.mean_rate(k)
        base = 1.0 / rate if rate and rate > 0 else 1.0
        rows, ys, ws = [], [], []
        for (c, g), gained, slots in obs:
            t = slots / gained if gained > 1e-12 else 1e3 * base
            rows.append((c, g))
            ys.append(t)
            ws.append(math.sqrt(slots))
        grid_c = sorted({mc, max(mc, int(cap[CPU]) // 2), max(mc, int(cap[CPU]))})
        grid_g = sorted({mg, max(mg, int(cap[GPU]) // 2), max(mg, int(cap[GPU]))})
        each = math.sqrt(self.prior_slots / (len(grid_c) * len(grid_g)))
        for c in grid_c:
            for g in grid_g:
                rows.append((c, g))
                ys.append(base * 0.5 * (mc / c + mg / g))
                ws.append(each)
        cpu = np.array([r[0] for r in rows], dtype=float)
        gpu = np.array([r[1] for r in rows], dtype=float)
        x = speed_features(cpu, gpu)
        w = np.array(ws)[:, None]
        y = np.array(ys)
        theta, _ = nnls(x * w, y * w[:, 0], maxiter=200)
        if not np.isfinite(theta).all() or theta.sum() <= 0:
            theta = np.zeros(x.shape[1])
            theta[0] = base
        return theta

    def time(self, k: int, cpu: np.ndarray | int, gpu: np.ndarray | int) -> np.ndarray:
        """Predicted slots per unit of work (fraction of a task) at (cpu, gpu)."""
        theta = self.theta.get(k)
        f = speed_features(np.asarray(cpu), np.asarray(gpu))
        if theta is None:
            return np.ones(f.shape[:-1])
        return np.maximum(f @ theta, 1e-6)


# ---------------------------------------------------------------------------------- admission
@dataclass
class Member:
    """A task admitted to a cluster by an elastic plan, with its allocation so far."""

    task: int
    cluster: int
    type: int
    min_demand: np.ndarray
    cap: np.ndarray
    progress: float
    running: RunningView | None
    cpu: int = 0
    gpu: int = 0
    fixed: bool = False
    """The allocation cannot change (a running task the env does not let us address)."""


def admit(
    snap: Snapshot, observations: dict[str, dict], order: list[int]
) -> tuple[list[list[Member]], np.ndarray, list[RunningView]]:
    """Admit tasks in priority ``order`` at their minimum demand, preempting where allowed.

    Running tasks that cannot be paused (the masks do not allow it, or the task is beyond the
    observed running set) are admitted first, so their resources are reserved; then the tasks of
    ``order`` (running or waiting) are admitted while their minimum fits what is left of their
    cluster's capacity. A waiting task goes to the roomiest cluster (most capacity left) among
    those whose window holds it. Returns the members per cluster
    (allocations at the minimum), the capacity left per cluster, and the running tasks to pause.
    """
    room = snap.capacity.copy()
    members: list[list[Member]] = [[] for _ in range(snap.n)]
    running = {rv.task: rv for runs in snap.running for rv in runs}
    done: set[int] = set()
    top = np.maximum(snap.capacity[:, :2].max(axis=0), 1)

    def add(rv: RunningView | None, tv: TaskView | None, c: int, fixed: bool) -> None:
        src = rv if rv is not None else tv
        assert src is not None
        m = Member(
            task=src.task,
            cluster=c,
            type=src.type,
            min_demand=src.min_demand,
            cap=src.cap,
            progress=src.progress,
            running=rv,
        )
        if fixed:
            assert rv is not None
            m.cpu, m.gpu, m.fixed = int(rv.alloc[CPU]), int(rv.alloc[GPU]), True
        else:
            m.cpu, m.gpu = int(src.min_demand[CPU]), int(src.min_demand[GPU])
        room[c] -= (m.cpu, m.gpu, int(src.min_demand[MEM]))
        members[c].append(m)
        done.add(src.task)

    for c, runs in enumerate(snap.running):
        obs = observations.get(snap.agents[c])
        for rv in runs:
            if rv.action < 0 or obs is None:
                add(rv, None, c, fixed=True)
            elif not can_pause(obs, rv.action):
                add(rv, None, c, fixed=False)
    paused: list[RunningView] = []
    for t in order:
        if t in done:
            continue
        rv = running.get(t)
        if rv is not None:
            if (room[rv.cluster] >= rv.min_demand).all():
                add(rv, None, rv.cluster, fixed=False)
            else:
                paused.append(rv)
            continue
        tv = snap.pending.get(t)
        if tv is None:
            continue
        best: tuple[float, int] | None = None
        for c in sorted(tv.where):
            if not (room[c] >= tv.min_demand).all():
                continue
            score = float(((room[c, :2] - tv.min_demand[:2]) / top).sum())
            if best is None or score > best[0] + 1e-12:
                best = (score, c)
        if best is not None:
            add(None, tv, best[1], fixed=False)
    return members, room, paused


def member_targets(
    members: list[list[Member]], paused: list[RunningView]
) -> dict[int, tuple[int, int, int]]:
    """Targets for :func:`plan_towards`: the members' allocations, (0, 0) for the paused."""
    targets: dict[int, tuple[int, int, int]] = {}
    for rv in paused:
        targets[rv.task] = (rv.cluster, 0, 0)
    for ms in members:
        for m in ms:
            if not m.fixed:
                targets[m.task] = (m.cluster, m.cpu, m.gpu)
    return targets
