"""Lower bounds on JCT (envs/jct_bounds.py): SRPT by hand, the pooled and per-task bounds on
hand-computed traces, and the bound below the mean JCT that real episodes reach."""

from __future__ import annotations

import math

import numpy as np
import pytest

import envs.jct_bounds as jct_bounds
from envs.edge_cluster_v0 import EdgeClusterEnv, parallel_env
from envs.jct_bounds import (
    fifo_completions,
    lower_bound,
    mean_jct_bound,
    mean_jct_bounds,
    srpt_completions,
    weight_grid,
)
from envs.observation import random_actions
from envs.trace import Trace
from tests.conftest import tiny_scenario, tiny_trace

# paper_synthetic speeds: an image gains 0.25 a slot at any allocation with >= 1 CPU and GPU,
# so work 1 takes 4 slots and its least use is its minimum demand for those 4 slots.
IMAGE = [("image", 1, 1, 4, 2)]
LM = [("image", 1, 1, 4, 4), ("lm", 1, 1, 4, 4)]


def world(clusters: list[tuple[int, int]], types, rows, **settings) -> tuple[EdgeClusterEnv, Trace]:
    """An env over ``clusters`` replaying the hand-written ``rows``."""
    scenario = tiny_scenario(clusters, types, len(rows), reward="team", **settings)
    trace = tiny_trace(types, rows, len(clusters))
    return EdgeClusterEnv(scenario, trace), trace


def play_random(env: EdgeClusterEnv, seed: int, trace: Trace | None = None) -> dict:
    """One episode of uniformly random valid starts; its episode metrics."""
    rng = np.random.default_rng(seed)
    obs, infos = env.reset(seed=seed, options={"trace": trace} if trace is not None else None)
    while env.agents:
        obs, _, _, _, infos = env.step(random_actions(env, obs, rng))
    return infos[env.possible_agents[0]]["episode"]


# ---------------------------------------------------------------------- SRPT on one machine
def test_srpt_two_jobs_released_together_run_shortest_first():
    assert srpt_completions(np.array([0.0, 0.0]), np.array([3.0, 1.0])).tolist() == [4.0, 1.0]


def test_srpt_a_shorter_release_preempts_and_an_equal_one_waits():
    # A (4) runs from 0; B (1) arrives at 1 and preempts A (3 left): B done at 2, A at 5.
    done = srpt_completions(np.array([0.0, 1.0]), np.array([4.0, 1.0]))
    assert done.tolist() == [5.0, 2.0]
    # C (3) arrives when A has 3 left: no preemption, A done at 4, C at 7.
    assert srpt_completions(np.array([0.0, 1.0]), np.array([4.0, 3.0])).tolist() == [4.0, 7.0]


def test_srpt_idles_until_the_next_release_and_handles_zero_and_never():
    done = srpt_completions(np.array([5.0, 0.0, 2.0, 1.0]), np.array([2.0, 1.0, 0.0, math.inf]))
    # Job 1 done at 1; job 3 (never done) runs 1..2; job 2 is done at release; job 0 runs 5..7.
    assert done.tolist() == [7.0, 1.0, 2.0, math.inf]


def test_srpt_beats_fifo_and_both_are_work_conserving():
    rng = np.random.default_rng(0)
    for _ in range(20):
        release = rng.integers(0, 30, 60).astype(float)
        work = rng.exponential(1.0, 60)
        srpt = srpt_completions(release, work)
        fifo = fifo_completions(release, work, np.argsort(release, kind="stable"))
        assert srpt.sum() <= fifo.sum() + 1e-9
        assert srpt.max() == pytest.approx(fifo.max())
        assert (srpt >= release + work - 1e-9).all() and (fifo >= release + work - 1e-9).all()


def test_fifo_by_hand():
    done = fifo_completions(np.array([0.0, 0.0, 9.0]), np.array([3.0, 1.0, 2.0]), np.arange(3))
    assert done.tolist() == [3.0, 4.0, 11.0]


def test_weight_grid():
    assert weight_grid(np.array([False, True, False])).tolist() == [[0.0, 1.0, 0.0]]
    two = weight_grid(np.array([True, True, False]))
    assert two[:2].tolist() == [[1, 0, 0], [0, 1, 0]] and len(two) == 11
    assert np.allclose(two.sum(axis=1), 1.0) and (two[:, 2] == 0).all()
    assert len(weight_grid(np.array([True, True, True]))) == 21


# ---------------------------------------------------------------------- bounds by hand
def test_pooled_bound_is_larger_when_the_gpus_are_the_bottleneck():
    """Four images at slot 0 on one (4 CPU, 2 GPU) cluster: each needs 4 GPU-slots = 2 slots of
    the whole pool, so SRPT finishes them at 2, 4, 6, 8 (mean 5) while alone each takes 4. The
    best real schedule runs two at a time: JCTs 4, 4, 8, 8."""
    env, trace = world([(4, 2)], IMAGE, [(0, "image", 1.0, [0])] * 4)
    b = mean_jct_bounds(trace, env.capacity, env.speed, elastic=False)
    assert (b.per_task, b.pooled, b.bound, b.weights) == (4.0, 5.0, 5.0, (0.0, 1.0, 0.0))
    assert lower_bound(trace, env.capacity, env.speed).tolist() == [4, 4, 4, 4]
    # The elastic relaxation (work x least use per unit of progress) agrees here.
    assert mean_jct_bound(trace, env.capacity, env.speed) == 5.0
    for seed in range(3):
        ep = play_random(env, seed)
        assert ep["lower_bound_mean_jct"] == 5.0 and ep["lower_bound_pooled_mean_jct"] == 5.0
        assert ep["lower_bound_per_task_mean_jct"] == 4.0
        assert ep["mean_jct"] >= 6.0 and ep["lower_bound_ratio"] == ep["mean_jct"] / 5.0


def test_per_task_bound_is_larger_for_a_lone_task():
    env, trace = world([(4, 2)], IMAGE, [(0, "image", 1.0, [0])])
    b = mean_jct_bounds(trace, env.capacity, env.speed, elastic=False)
    assert (b.per_task, b.pooled, b.bound) == (4.0, 2.0, 4.0)
    ep = play_random(env, 0)
    assert ep["lower_bound_mean_jct"] == 4.0 and ep["lower_bound_ratio"] == ep["mean_jct"] / 4.0


def test_a_release_in_the_middle_preempts_in_the_relaxation():
    """One GPU: A (work 1, 4 GPU-slots) at 0, B (work 0.25, 1 GPU-slot) at 1. SRPT: B done at
    2, A at 5, total 5 + 1 = 6 (mean 3); alone: 4 and 1 (mean 2.5). Without preemption the best
    is A 0..4, B 4..5: mean 4."""
    rows = [(0, "image", 1.0, [0]), (1, "image", 0.25, [0])]
    env, trace = world([(4, 1)], [("image", 1, 1, 4, 1)], rows)
    b = mean_jct_bounds(trace, env.capacity, env.speed, elastic=False)
    assert (b.per_task, b.pooled, b.bound) == (2.5, 3.0, 3.0)
    for seed in range(3):
        ep = play_random(env, seed)
        assert ep["mean_jct"] >= 4.0 and ep["lower_bound_ratio"] == ep["mean_jct"] / 3.0


def test_mixed_cpu_and_gpu_weights_beat_each_kind_alone(monkeypatch: pytest.MonkeyPatch):
    """On one (4, 4) cluster two CPU-heavy (3, 1) and two GPU-heavy (1, 3) images at slot 0.
    CPU alone: shares 3, 3, 1, 1 of the pool, SRPT at 1, 2, 5, 8 (mean 4); GPU alone the same.
    Half and half: every task uses 2 (half its 4 slots), done at 2, 4, 6, 8 (mean 5). Real
    schedules pair a heavy CPU with a heavy GPU task: JCTs 4, 4, 8, 8."""
    types = [("cpu_heavy", 3, 1, 4, 4), ("gpu_heavy", 1, 3, 4, 4)]
    rows = [(0, "cpu_heavy", 1.0, [0])] * 2 + [(0, "gpu_heavy", 1.0, [0])] * 2
    scenario = tiny_scenario([(4, 4)], [("image", 1, 1, 4, 4)], 4, reward="team")
    env = EdgeClusterEnv(scenario)
    trace = tiny_trace(types, rows, 1)
    trace.type_names, trace.type_idx = ["image"], np.zeros(4, dtype=np.int64)
    b = mean_jct_bounds(trace, env.capacity, env.speed, elastic=False)
    assert (b.per_task, b.pooled) == (4.0, 5.0)
    assert 0.0 < b.weights[0] < 1.0
    monkeypatch.setattr(jct_bounds, "WEIGHT_STEPS", {2: 1})  # the pure kinds only
    assert mean_jct_bounds(trace, env.capacity, env.speed, elastic=False).pooled == 4.0
    monkeypatch.undo()
    for seed in range(3):
        ep = play_random(env, seed, trace)
        assert ep["lower_bound_mean_jct"] == 5.0 and ep["mean_jct"] >= 6.0


def test_memory_is_a_pooled_kind_only_where_modelled():
    """Four images holding 2 memory each on an (8, 8, mem 4) cluster: two at a time fit, so the
    memory pool gives SRPT 2, 4, 6, 8 (mean 5). A second, memory-free cluster that can run
    them all makes memory free: then each uses a quarter of the (16 CPU, 16 GPU) pool, all done
    by slot 1 (pooled mean 1, below the 4 alone)."""
    env, trace = world([(8, 8)], [("image", 1, 1, 8, 8)], [(0, "image", 1.0, [0])] * 4)
    trace.min_demand[:, 2] = 2
    b = mean_jct_bounds(trace, np.array([[8, 8, 4]]), env.speed, elastic=False)
    assert (b.per_task, b.pooled, b.weights) == (4.0, 5.0, (0.0, 0.0, 1.0))
    both = trace.visible.repeat(2, axis=1)
    trace = Trace(**{**trace.__dict__, "visible": both})
    b = mean_jct_bounds(trace, np.array([[8, 8, 4], [8, 8, 0]]), env.speed, elastic=False)
    assert (b.per_task, b.pooled) == (4.0, 1.0)


def test_truncated_episodes_are_bounded_at_their_horizon():
    """The four images of the GPU case cut at slot 3: alone min(4, 3) = 3 each; SRPT min(2, 3)
    + 3 x 3 = 11 over 4. A task arriving after the cut counts 0 on both sides."""
    rows = [(0, "image", 1.0, [0])] * 4 + [(9, "image", 1.0, [0])]
    env, trace = world([(4, 2)], IMAGE, rows)
    b = mean_jct_bounds(trace, env.capacity, env.speed, elastic=False, horizon=3)
    assert (b.per_task, b.pooled) == (12 / 5, 11 / 5)
    b = mean_jct_bounds(trace, env.capacity, env.speed, elastic=False, horizon=5)
    assert (b.per_task, b.pooled) == (16 / 5, 16 / 5)


def lm_slots(gpus: int) -> int:
    """Slots an lm (work 1) needs at ``gpus`` GPUs, counted as the simulator does."""
    p, slots = 0.0, 0
    while p < 1 - 1e-9:
        p, slots = p + math.tanh(gpus / 16) * math.sqrt(max(1.2 - p, 0.0)), slots + 1
    return slots


def test_decaying_tasks_use_the_simulators_slot_count_and_a_valid_elastic_relaxation():
    """An lm's least GPU use at a fixed allocation is min over g of g x its slot count (2 GPUs:
    10 slots, or 4: 5 slots, 20 GPU-slots, beat 1 GPU: 21 slots). Elastic mode bounds its use by the
    closed-form integral at the best GPUs per progress (1 GPU), which lies below that and above
    the crude bound that takes the largest rate factor sqrt(1.2) throughout."""
    env, trace = world([(4, 4)], LM, [(0, "lm", 1.0, [0])] * 6)
    assert [g * lm_slots(g) for g in range(1, 5)] == [21, 20, 21, 20]
    share = np.array([[0, 0.25, 0]])  # GPU-slots over the pool's 4 GPUs
    fixed = jct_bounds._TaskCosts(trace, env.capacity, env.speed, elastic=False, weights=share)
    assert fixed.shares[:, 0].tolist() == [20 / 4] * 6
    assert fixed.slots.tolist() == [lm_slots(4)] * 6
    elastic = jct_bounds._TaskCosts(trace, env.capacity, env.speed, elastic=True, weights=share)
    crude = (1 - 1e-9) / math.sqrt(1.2) / math.tanh(1 / 16) / 4
    assert crude < elastic.shares[0, 0] < fixed.shares[0, 0]
    for seed in range(3):
        assert play_random(env, seed)["lower_bound_ratio"] >= 1.0 - 1e-9


def test_decay_integral_closed_form():
    tol = 1e-9
    assert jct_bounds._decay_integral(1.0, 5.0) == pytest.approx((1 - tol) / math.sqrt(1.2))
    exact = 2 * (math.sqrt(1.2) - math.sqrt(0.2 + tol))
    assert jct_bounds._decay_integral(1.0, 0.0) == pytest.approx(exact)
    # Numerically: the integrand 1 / sqrt(1.2 - max(u - D, 0)) on [0, 1].
    u = np.linspace(0, 1 - tol, 200_001)
    f = 1 / np.sqrt(1.2 - np.maximum(u - 0.3, 0))
    numeric = float(((f[1:] + f[:-1]) / 2 * np.diff(u)).sum())
    assert jct_bounds._decay_integral(1.0, 0.3) == pytest.approx(numeric, rel=1e-6)


# ---------------------------------------------------------------------- real episodes
SETTINGS = [
    {},
    {"elastic": True},
    {"mode": "multi", "max_starts": 2},
    {"max_slots": 6},  # truncated: censored JCTs
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_bound_is_below_random_episodes(settings: dict):
    """Overloaded tiny worlds (mixed types, partial visibility): every episode's mean JCT is at
    least the bound, and on these the pooled bound is the larger one at least once."""
    types = [("image", 2, 1, 4, 4), ("lm", 1, 2, 4, 4)]
    scenario = tiny_scenario(
        [(4, 2), (4, 4)], types, 14, arrival_rate=3.0, reward="team", **settings
    )
    env = parallel_env(scenario, infos="full")
    pooled_wins = 0
    for seed in range(4):
        ep = play_random(env, seed)
        assert ep["lower_bound_ratio"] >= 1.0 - 1e-9
        assert ep["mean_jct"] >= ep["lower_bound_mean_jct"] - 1e-9
        bounds = (ep["lower_bound_per_task_mean_jct"], ep["lower_bound_pooled_mean_jct"])
        assert ep["lower_bound_mean_jct"] == max(bounds)
        pooled_wins += bounds[1] > bounds[0]
        assert bool(ep["truncated"]) == ("max_slots" in settings)
    if "max_slots" not in settings:
        assert pooled_wins > 0
