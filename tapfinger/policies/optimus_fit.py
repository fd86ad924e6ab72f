"""Optimus's speed model: slots per unit of work, fitted online per task type (NNLS).

Builds on :mod:`.rates`: :class:`FittedSpeed` fits the samples of a
:class:`~.rates.RateTracker`; :mod:`.optimus` allocates with its predictions.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import nnls

from tapfinger.policies.rates import RateTracker
from tapfinger.policies.snapshot import CPU, GPU


# Features of the fitted time-per-work model: Optimus's sync model 1/f = a/w + b + c*w/p +
# d*w + e*p (p CPUs, w GPUs), plus an Amdahl CPU term 1/p.
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
