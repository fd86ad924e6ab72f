"""Lower bounds on JCT: per task (alone, no waiting) and on the episode's mean (pooled capacity).

Slot semantics (envs/simulator.py): a task arriving in slot ``a`` and running slots ``a .. f``
finishes at slot boundary ``F = f + 1`` and has JCT ``F - a`` (at least 1). A running task gains
``base[type, cpu, gpu] * factor`` per slot, ``factor = sqrt(max(1.2 - progress / work, 0))`` for
``sqrt_decay`` types (1 otherwise), times ``1 - switch_penalty`` in a slot after a resize or
resumption (elastic mode only); it is done once progress >= ``work - DONE_TOLERANCE``. A task
holds its allocation (cpu, gpu, and its memory on clusters that model memory) in every slot it
runs. Without elastic mode a task starts once and keeps its allocation and cluster to the end.

**Per task** (:func:`lower_bound`): ``d_j`` = the fewest slots the task needs at any fixed
allocation that fits a cluster that sees it (the largest rate is the best at every progress: for
a decaying type a slot's progress ``p + b sqrt(1.2 - p / work)`` grows with ``p`` unless that slot
finishes the task anyway; the switch penalty only slows a task; so no schedule of allocations
finishes sooner), so ``JCT_j >= d_j``.

**Pooled capacity** (:func:`mean_jct_bounds`). Merge all clusters into one pool of capacity
``C_k`` per kind (memory: the clusters that model it), and pick weights ``w >= 0`` over the kinds
with ``sum w = 1``. In any slot the tasks' shares ``y_j = sum_k w_k x_jk / C_k`` of the pool add
up to at most 1. ``q_j(w)`` is the least total share task ``j`` can consume to finish:

- fixed allocation (not elastic): ``min_x n(x) * sum_k w_k x_k / C_k`` over the allocations ``x``
  that fit a cluster that sees it, ``n(x)`` its exact slot count (the simulator's arithmetic);
- elastic: in a slot starting at progress ``p`` a task gains at most
  ``b(x) * sqrt(1.2 - p / work)`` and pays ``c(x) = sum_k w_k x_k / C_k``, so its cost per unit
  of progress is at least ``kappa / sqrt(1.2 - p / work)``, ``kappa = min_x c(x) / b(x)``. A
  slot gains at most ``D = sqrt(1.2) * max_x b(x)``, so every progress level ``u`` it covers has
  ``p >= u - D``, and ``q_j >= kappa * integral_0^{work - tol} du / sqrt(1.2 -
  max(u - D, 0) / work)`` (closed form in :func:`_decay_integral`); stationary types:
  ``kappa * (work - tol)``.

Any schedule of the real system is then a schedule of one machine of unit speed in which job
``j`` (released at ``a_j``, processing ``q_j``) gets ``y_j(s)`` in slot ``[s, s + 1)``; doing
each slot's shares one after another inside the slot finishes every job by its real finish
``F_j``. Preemptive SRPT minimises the number of unfinished jobs at every instant among all
schedules of ``1 | r_j, pmtn |`` (Schrage 1968; Smith 1978), so for every integer ``t`` at most
as many SRPT completions ``C_j`` exceed ``t`` as real finishes do. Summing over ``t``:
``sum_j ceil(C_j) <= sum_j F_j`` (``ceil(C) = #{integer t >= 0 : t < C}``), hence
``sum_j JCT_j >= sum_j (ceil(C_j) - a_j)``. Individual ``C_j`` bound nothing; only the sum does.
Every weight and the per-task bounds bound the same total, so over ``T`` tasks the mean JCT is
at least ``max(sum_j d_j, max_w sum_j (ceil(C_j) - a_j)) / T``. A truncated episode at slot
``H`` counts ``min(F_j, H) - a_j`` for a task that arrived before ``H`` (0 for later ones);
summing the same pointwise counts over ``t < H`` gives ``min(ceil(C_j), H)`` and ``min(a_j +
d_j, H)`` in place of ``ceil(C_j)`` and ``a_j + d_j``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from envs.simulator import DONE_TOLERANCE
from envs.speed_models import SpeedModel
from envs.trace import Trace

#: Steps per unit of the weight grid by the number of kinds in the pool (two kinds: ``w_k`` in
#: multiples of 1/10, three: 1/5; 11 and 21 weights, one SRPT run each).
WEIGHT_STEPS = {1: 1, 2: 10, 3: 5}
#: Relative slack before rounding an SRPT completion up to a slot boundary (float round-off).
_ROUND_SLACK = 1e-9
#: Slot counts beyond this are taken as never (a decaying rate that cannot finish).
_MAX_SLOTS = 1_000_000
#: Largest rate factor of a ``sqrt_decay`` type (at progress 0).
_DECAY_MAX = math.sqrt(1.2)


@dataclass
class MeanJctBounds:
    """Lower bounds on an episode's mean JCT (slots); ``bound`` is the larger, the one to use."""

    per_task: float
    """Mean of the per-task bounds ``d_j``."""
    pooled: float
    """The pooled-capacity SRPT bound at its best weights."""
    weights: tuple[float, ...]
    """The weights (cpu, gpu, mem) at which ``pooled`` was found."""

    @property
    def bound(self) -> float:
        return max(self.per_task, self.pooled)


def lower_bound(trace: Trace, capacity: np.ndarray, speed: SpeedModel) -> np.ndarray:
    """Per task: slots to finish alone at its best allocation on the best visible cluster."""
    return _TaskCosts(trace, np.asarray(capacity), speed, elastic=False, weights=None).slots


def mean_jct_bounds(
    trace: Trace,
    capacity: np.ndarray,
    speed: SpeedModel,
    *,
    elastic: bool = True,
    horizon: int | None = None,
    per_task: np.ndarray | None = None,
) -> MeanJctBounds:
    """Both lower bounds on the mean JCT (module docstring).

    ``elastic``: whether tasks may change allocation as they run (True is valid in both modes,
    False is tighter where allocations are fixed). ``horizon``: the slot at which a truncated
    episode stopped (JCTs censored there), None for a finished one. ``per_task``: the
    :func:`lower_bound` of this trace, when the caller has it already.
    """
    n = len(trace)
    if n == 0:
        return MeanJctBounds(math.nan, math.nan, ())
    capacity = np.asarray(capacity)
    pool = capacity.sum(axis=0).astype(float)
    weights = weight_grid(pool > 0)
    costs = _TaskCosts(trace, capacity, speed, elastic=elastic, weights=weights / _safe(pool))
    d = costs.slots if per_task is None else np.asarray(per_task, dtype=float)
    arrival = trace.arrival.astype(float)
    cut = math.inf if horizon is None else float(horizon)
    per_task_sum = float(np.maximum(np.minimum(arrival + d, cut) - arrival, 0.0).sum())
    best, best_w = 0.0, ()
    order = np.argsort(arrival, kind="stable")
    for i, w in enumerate(weights):
        share = costs.shares[:, i]
        # FIFO is a schedule too, so its total is at least SRPT's: skip weights it rules out.
        if i > 0 and _total(fifo_completions(arrival, share, order), arrival, cut) <= best:
            continue
        total = _total(srpt_completions(arrival, share), arrival, cut)
        if total > best:
            best, best_w = total, tuple(float(v) for v in w)
    return MeanJctBounds(per_task_sum / n, best / n, best_w)


def _total(completion: np.ndarray, arrival: np.ndarray, cut: float) -> float:
    """``sum_j (min(ceil(C_j), cut) - a_j)^+`` (completions rounded up to slot boundaries)."""
    done = np.maximum(np.ceil(completion * (1 - _ROUND_SLACK)), arrival)
    return float(np.maximum(np.minimum(done, cut) - arrival, 0.0).sum())


def mean_jct_bound(
    trace: Trace,
    capacity: np.ndarray,
    speed: SpeedModel,
    *,
    elastic: bool = True,
    horizon: int | None = None,
) -> float:
    """Lower bound on the mean JCT: the larger of the per-task and pooled bounds."""
    return mean_jct_bounds(trace, capacity, speed, elastic=elastic, horizon=horizon).bound


def weight_grid(kinds: np.ndarray, steps: int | None = None) -> np.ndarray:
    """float [M, len(kinds)]: the weights in multiples of ``1 / steps`` (default by the number
    of kinds, :data:`WEIGHT_STEPS`) that sum to 1 and are 0 on the kinds not set in ``kinds``
    (the pure kinds come first)."""
    on = np.flatnonzero(kinds)
    k = len(kinds)
    if len(on) == 0:
        return np.zeros((0, k))
    steps = WEIGHT_STEPS.get(len(on), 4) if steps is None else steps
    rows = [np.eye(k)[i] for i in on]
    if len(on) > 1:
        for combo in _compositions(steps, len(on)):
            if max(combo) < steps:
                row = np.zeros(k)
                row[on] = np.array(combo) / steps
                rows.append(row)
    return np.array(rows)


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    if parts == 1:
        return [(total,)]
    return [(i, *rest) for i in range(total + 1) for rest in _compositions(total - i, parts - 1)]


def srpt_completions(release: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Completion times of preemptive shortest-remaining-first on one machine of unit speed
    (exact, event-driven: O(T log T)); ``work`` may hold 0 (done at release) or inf (never)."""
    release = np.asarray(release, dtype=float)
    order = np.argsort(release, kind="stable").tolist()
    rel, rem = release.tolist(), np.asarray(work, dtype=float).tolist()
    out = [math.inf] * len(order)
    heap: list[tuple[float, int]] = []
    push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace
    t, i, n = -math.inf, 0, len(order)
    while i < n or heap:
        if not heap:
            t = max(t, rel[order[i]])
        while i < n and rel[order[i]] <= t:
            push(heap, (rem[order[i]], order[i]))
            i += 1
        nxt = rel[order[i]] if i < n else math.inf
        left, j = heap[0]
        if t + left <= nxt:
            pop(heap)
            t += left
            out[j] = t
        else:
            replace(heap, (left - (nxt - t), j))
            t = nxt
    return np.array(out)


def fifo_completions(release: np.ndarray, work: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Completion times of first-come-first-served on one machine of unit speed, in ``order``
    (the jobs sorted by release): ``C = S_j + max_{i <= j} (r_i - S_{i-1})`` with ``S`` the
    running sum of work."""
    r, q = release[order], work[order]
    out = np.empty(len(order))
    if not np.isfinite(q).all():
        out[order] = math.inf
        return out
    s = np.cumsum(q)
    out[order] = s + np.maximum.accumulate(r - (s - q))
    return out


def _safe(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 1.0)


def _decay_integral(work: float, reach: float) -> float:
    """``integral_0^{work - tol} du / sqrt(1.2 - max(u - reach, 0) / work)``: the least
    progress-weighted cost of a decaying task whose slot gains are at most ``reach``."""
    end = work - DONE_TOLERANCE
    flat = min(reach, end) / _DECAY_MAX
    if end <= reach:
        return flat
    return flat + 2.0 * work * (_DECAY_MAX - math.sqrt(1.2 - (end - reach) / work))


class _TaskCosts:
    """Per task: ``slots`` (float [T], the fewest slots ``d_j``) and, given weights (already
    divided by the pool capacities, [M, 3]), ``shares`` (float [T, M], the least pool share
    ``q_j(w)``). Tasks of one type, demand and set of fitting clusters share one allocation
    grid; their works are handled together on it."""

    def __init__(
        self,
        trace: Trace,
        capacity: np.ndarray,
        speed: SpeedModel,
        *,
        elastic: bool,
        weights: np.ndarray | None,
    ) -> None:
        self.speed, self.elastic = speed, elastic
        self.weights = np.zeros((0, 3)) if weights is None else weights
        t, m = len(trace), len(self.weights)
        self.slots = np.full(t, math.inf)
        self.shares = np.full((t, m), math.inf)
        mem_on = capacity[:, 2] > 0
        need = trace.min_demand
        fits = (
            trace.visible
            & (need[:, None, 0] <= capacity[None, :, 0])
            & (need[:, None, 1] <= capacity[None, :, 1])
            & (~mem_on[None, :] | (need[:, None, 2] <= capacity[None, :, 2]))
        )
        levels = np.array(speed.base.shape[1:]) - 1
        hi = np.minimum(np.minimum(trace.cap[:, None, :], capacity[None, :, :2]), levels)
        hi = np.where(fits[..., None], hi, -1)  # [T, N, 2]; -1: the cluster cannot run it
        hi = hi.reshape(t, 2 * len(capacity))
        rows = np.concatenate([trace.type_idx[:, None], need, hi], axis=1)
        keys, inverse = np.unique(rows, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        cuts = np.flatnonzero(np.diff(inverse[order])) + 1
        on = mem_on.tolist()
        groups: dict[tuple, list[np.ndarray]] = {}
        for key, ids in zip(keys.tolist(), np.split(order, cuts)):
            hc, hg = key[4::2], key[5::2]
            regions = {(a, b, on[c]) for c, (a, b) in enumerate(zip(hc, hg)) if a >= 0}
            groups.setdefault((*key[:4], tuple(sorted(regions))), []).append(ids)
        for key, parts in groups.items():
            ids = np.concatenate(parts)
            works, inverse = np.unique(trace.work[ids], return_inverse=True)
            slots, shares = self._group(*key, works)
            self.slots[ids], self.shares[ids] = slots[inverse], shares[inverse]

    def _group(
        self, k: int, mc: int, mg: int, mm: int, regions: tuple, works: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(slots [G], shares [G, M]) for the works ``works`` of one group."""
        g, m = len(works), len(self.weights)
        none = (np.full(g, math.inf), np.full((g, m), math.inf))
        if not regions:
            return none
        hc, hg = max(r[0] for r in regions), max(r[1] for r in regions)
        x, y = np.meshgrid(np.arange(mc, hc + 1), np.arange(mg, hg + 1), indexing="ij")
        inside = [(x <= r[0]) & (y <= r[1]) for r in regions]
        # Memory is held only on clusters that model it: free if another fitting cluster can.
        free_mem = np.logical_or.reduce([f & (not r[2]) for f, r in zip(inside, regions)])
        base = self.speed.base[k, mc : hc + 1, mg : hg + 1]
        ok = np.logical_or.reduce(inside) & (base > 0)
        if not ok.any():
            return none
        b = base[ok]
        n = self._slots(k, works, b)  # [G, P]
        use = np.stack([x[ok], y[ok], np.where(free_mem[ok], 0, mm)], axis=1).astype(float)
        per_slot = use @ self.weights.T  # [P, M]: pool share per running slot
        if not self.elastic:
            shares = np.array([(n * per_slot[:, i]).min(axis=1) for i in range(m)]).T
        else:
            kappa = (per_slot / b[:, None]).min(axis=0)  # [M]
            if self.speed.sqrt_decay[k]:
                reach = _DECAY_MAX * float(b.max())
                need = np.array([_decay_integral(float(w), reach) for w in works])
            else:
                need = works - DONE_TOLERANCE
            shares = np.maximum(need, 0.0)[:, None] * kappa[None, :]
        return n.min(axis=1), shares.reshape(g, m)

    def _slots(self, k: int, works: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float [G, P]: slots to finish each work at each fixed rate ``b``, as the simulator
        counts them (a stationary count may come out one low on round-off, never high)."""
        work = works[:, None]
        goal = work - DONE_TOLERANCE
        if not self.speed.sqrt_decay[k]:
            return np.maximum(1.0, np.ceil(goal / b[None, :] - 1e-9))
        rate = np.broadcast_to(b[None, :], (len(works), len(b)))
        p = np.zeros(rate.shape)
        n = np.zeros(rate.shape)
        running = np.ones(rate.shape, dtype=bool)
        while running.any():
            if n.max() >= _MAX_SLOTS:
                n[running] = math.inf
                break
            w = np.broadcast_to(work, rate.shape)[running]
            p[running] = p[running] + rate[running] * np.sqrt(np.maximum(1.2 - p[running] / w, 0.0))
            n[running] += 1
            running &= p < goal
        return n
