"""Baselines at full strength: placement, allocation defaults, Tiresias vs FIFO, elastic SRPT.

Every world here is hand-built (paper_synthetic speeds: an ``image`` task gains 0.25 of work
per slot at any allocation; a task arriving in slot ``a`` and finishing at the end of slot ``f``
has JCT ``f + 1 - a``), and every expected number is computed by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs import edge_cluster_v0
from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.trace import Trace
from tapfinger.policies import make_policy, policy_entry
from tapfinger.policies.plan import PLACEMENTS, can_pause, pause_gpu
from tapfinger.policies.snapshot import build_snapshot
from tapfinger.policies.srpt import switched_slots
from tests.conftest import tiny_scenario

IMAGE = ("image", 1, 1, 16, 16)
LM = ("lm", 1, 1, 8, 8)


def world(clusters, types, rows, **settings) -> EdgeClusterEnv:
    """An env over hand-written rows of (arrival, type, work, visible clusters, (min cpu, min
    gpu), (cap cpu, cap gpu)): each task's own demand and cap, whatever its type's."""
    names = [t[0] for t in types]
    visible = np.zeros((len(rows), len(clusters)), dtype=bool)
    for i, row in enumerate(rows):
        visible[i, list(row[3])] = True
    trace = Trace(
        names,
        task_id=np.arange(len(rows)),
        arrival=np.array([r[0] for r in rows]),
        type_idx=np.array([names.index(r[1]) for r in rows]),
        work=np.array([r[2] for r in rows], dtype=float),
        visible=visible,
        min_demand=np.array([[*r[4], 0] for r in rows]).reshape(-1, 3),
        cap=np.array([r[5] for r in rows]).reshape(-1, 2),
    )
    return EdgeClusterEnv(tiny_scenario(clusters, types, len(rows), **settings), trace)


def play(env: EdgeClusterEnv, name: str, **options) -> tuple[list[int], list[list[int]]]:
    """One episode: every task's JCT (by row) and every round's actions."""
    return play_with(env, make_policy(name, env, **options))


def play_with(env: EdgeClusterEnv, policy) -> tuple[list[int], list[list[int]]]:
    """One episode of ``policy``: every task's JCT (by row) and every round's actions."""
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    trail = []
    while env.agents:
        actions = policy.act(obs, infos)
        trail.append([int(v) for a in sorted(actions) for v in actions[a]])
        obs, _, _, _, infos = env.step(actions)
        env.check_invariants()
        for info in infos.values():
            assert info["invalid_actions"] == 0 and info["conflicts_lost"] == 0
    return env.task_records().jct.tolist(), trail


def first_allocs(env: EdgeClusterEnv, name: str, **options) -> list[tuple[int, int, int]]:
    """(task row, cpu, gpu) of every start the policy plans in the first round."""
    policy = make_policy(name, env, **options)
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    snap = build_snapshot(env, obs, infos, policy.memory)
    policy.observe(snap)
    plan = policy.plan(snap, obs)
    return [(t, cpu, gpu) for t, (_, cpu, gpu) in plan.started.items()]


# ------------------------------------------------------------------------------ placement
# A small task (1, 1) and a large one (4, 4), both seen by a (2, 2) and a (4, 4) cluster,
# arriving in slot 0, each with 1.0 of work (4 slots). Worst fit puts the small task on the
# roomy cluster (3 CPU + 3 GPU left beats 1 + 1), where the large one no longer fits: it waits
# for slot 4 and ends at slot 7 (JCTs 4 and 8). Best fit puts the small one on the tight
# cluster and both run at once (JCTs 4 and 4): the Alibaba replay's fragmentation in small.
FRAGMENT = [
    (0, "image", 1.0, [0, 1], (1, 1), (1, 1)),
    (0, "image", 1.0, [0, 1], (4, 4), (4, 4)),
]


@pytest.mark.parametrize("name", ["fifo", "tiresias", "drf"])
def test_best_fit_keeps_the_large_cluster_for_the_large_task(name):
    env = world([(2, 2), (4, 4)], [IMAGE], FRAGMENT)
    assert play(env, name, placement="worst_fit")[0] == [4, 8]
    assert play(env, name, placement="best_fit")[0] == [4, 4]
    assert make_policy(name, env).placement == "best_fit"  # the default


def test_placement_is_validated():
    env = world([(2, 2), (4, 4)], [IMAGE], FRAGMENT)
    assert PLACEMENTS == ("worst_fit", "best_fit")
    with pytest.raises(Exception, match="placement"):
        make_policy("fifo", env, placement="first_fit")


def test_tetris_alignment_also_keeps_the_large_cluster():
    # Alignment of the small task: (1/2)(2/2) x 2 = 1 on the (2, 2) cluster, (1/4)(4/4) x 2 =
    # 0.5 on the (4, 4) one; the large task fits only the (4, 4) one. Both start at once.
    env = world([(2, 2), (4, 4)], [IMAGE], FRAGMENT)
    assert play(env, "tetris")[0] == [4, 4]


def tetris_durations(**settings) -> list[float | None]:
    # Two image tasks (0.25 of work per slot at any allocation) of work 1.0 and 2.0.
    rows = [(0, "image", 1.0, [0], (1, 1), (1, 1)), (0, "image", 2.0, [0], (1, 1), (1, 1))]
    env = world([(2, 2)], [IMAGE], rows, **settings)
    policy = make_policy("tetris", env)
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    policy.act(obs, infos)  # reads what the regime tells (the speed table) on its first call
    snap = build_snapshot(env, obs, infos, policy.memory)
    return [policy.duration(tv, (1, 1)) for tv in snap.pending.values()]


def test_tetris_uses_what_the_regime_tells():
    # Measured: nothing has run, no speed is known: no duration estimate.
    assert tetris_durations() == [None, None]
    # Profiled: the told table gives 1 / 0.25 = 4 slots per unit of work; the work is its
    # type's mean finished work, none finished yet: the work unit, 1.
    assert tetris_durations(information="profiled") == [4.0, 4.0]
    # Profiled and work known: 4 and 8 slots, exactly.
    assert tetris_durations(information="profiled", work_known=True) == [4.0, 8.0]


def test_tetris_keeps_its_measurements_across_episodes():
    # The episode asks for decisions in slot 0 and at the third task's arrival (slot 6) only.
    # By then it has seen the image rate at (1, 1) (0.25: the task of work 2.0 gained 1.5 in
    # 6 slots) and one finished work (1.0, the first task's, done at slot 4): a warm start
    # estimates 1.0 / 0.25 = 4 slots for each waiting task at once; a fresh one knows nothing.
    rows = [(0, "image", 1.0, [0], (1, 1), (1, 1)), (0, "image", 2.0, [0], (1, 1), (1, 1))]
    rows.append((6, "image", 1.5, [0], (1, 1), (1, 1)))
    env = world([(2, 2)], [IMAGE], rows)
    policy = make_policy("tetris", env)
    play_with(env, policy)
    policy.set_warm_state(policy.history_state())
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    snap = build_snapshot(env, obs, infos, policy.memory)
    assert [policy.duration(tv, (1, 1)) for tv in snap.pending.values()] == [4.0, 4.0]
    policy.set_warm_state(None)
    policy.reset(0)
    assert [policy.duration(tv, (1, 1)) for tv in snap.pending.values()] == [None, None]


# ------------------------------------------------------------------------------ allocation
# Two lm tasks (minimum (1, 1), cap (8, 8)) and one (8, 8) cluster.
TWO_LM = [(0, "lm", 1.0, [0], (1, 1), (8, 8)), (0, "lm", 1.0, [0], (1, 1), (8, 8))]


def test_allocation_defaults_follow_the_sources():
    env = world([(8, 8)], [LM], TWO_LM)
    # FIFO and Tetris give the request (the minimum demand, as a trace's requests are).
    assert first_allocs(env, "fifo") == [(0, 1, 1), (1, 1, 1)]
    assert first_allocs(env, "tetris") == [(0, 1, 1), (1, 1, 1)]
    # DRF fills along the cap direction (1, 1) to the equal dominant share 1/2.
    assert first_allocs(env, "drf") == [(0, 4, 4), (1, 4, 4)]
    # Tiresias spreads the 6 spare CPUs and GPUs round robin: 1 + 3 each.
    assert first_allocs(env, "tiresias") == [(0, 4, 4), (1, 4, 4)]


def test_allocation_options():
    env = world([(8, 8)], [LM], TWO_LM)
    # The cap clipped to the free resources: the first takes the whole cluster.
    assert first_allocs(env, "fifo", alloc="cap") == [(0, 8, 8)]
    # Tetris packing the cap: only one fits.
    assert first_allocs(env, "tetris", demand="cap") == [(0, 8, 8)]
    # DRF along the minimum's direction (1, 1) too: the same split here.
    assert first_allocs(env, "drf", demand="min") == [(0, 4, 4), (1, 4, 4)]
    assert first_allocs(env, "tiresias", alloc="min") == [(0, 1, 1), (1, 1, 1)]


# ------------------------------------------------------------------------------ tiresias
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_non_elastic_tiresias_at_the_minimum_is_fifo(placement):
    # Nothing can be preempted and nothing waiting has attained service: LAS order is arrival
    # order, and at the minimum demand Tiresias takes exactly FIFO's decisions.
    env = edge_cluster_v0.parallel_env("paper_synthetic", num_tasks=40, infos="full")
    fifo = play(env, "fifo", placement=placement)
    assert play(env, "tiresias", alloc="min", placement=placement) == fifo
    # Its default (spare resources spread over the tasks it starts) differs.
    spread = play(env, "tiresias", placement=placement)
    assert spread[1] != fifo[1] and np.mean(spread[0]) < np.mean(fifo[0])


def test_elastic_tiresias_pauses_through_the_env_masks():
    # An image task (1, 1) with 4.0 of work from slot 0, another with 1.0 from slot 1, one
    # (1, 1) cluster, queues split at 2 GPU-slots, half a slot lost per switch. Slot 2: the
    # first has attained 2 (second queue), the second 0: the first is paused (with the GPU
    # level the masks allow; CPU 0 pauses), the second runs slots 2-3. Slot 4: both attained 2,
    # arrival order: the second is paused and the first resumes (0.125, then 0.25 a slot for
    # the 3.375 left of its 3.5: 15 slots, 4-18, JCT 19), then the second (0.125 + 0.25 x 2
    # for its 0.5 left: slots 19-21, JCT 21).
    env = world(
        [(1, 1)],
        [IMAGE],
        [(0, "image", 4.0, [0], (1, 1), (1, 1)), (1, "image", 1.0, [0], (1, 1), (1, 1))],
        elastic=True,
        switch_penalty=0.5,
    )
    assert play(env, "tiresias", thresholds=(2.0,))[0] == [19, 21]


def test_a_pause_is_cpu_zero_at_an_allowed_gpu_level():
    obs = {"cpu_mask": np.array([[True, False, True]]), "gpu_mask": np.array([[False, True]])}
    assert can_pause(obs, 0) and pause_gpu(obs, 0) == 1
    obs["cpu_mask"][0, 0] = False
    assert not can_pause(obs, 0)


# ------------------------------------------------------------------------------ srpt
def test_srpt_is_an_oracle_with_an_elastic_variant():
    entry = policy_entry("srpt")
    assert entry.oracle and entry.elastic


def test_non_elastic_srpt_is_sjf():
    # Nothing has run while it waits: the remaining work is the whole work, SRPT is SJF.
    env = edge_cluster_v0.parallel_env(
        "paper_synthetic", num_tasks=30, oracle_infos=True, infos="full"
    )
    assert play(env, "srpt") == play(env, "sjf")
    assert play(env, "srpt", alloc="fastest") == play(env, "sjf", alloc="fastest")


def test_elastic_srpt_preempts_a_long_task_for_a_short_one():
    # One (1, 1) cluster. A: 2.0 of work from slot 0 (8 slots); B: 0.5 from slot 2 (2 slots).
    # Slot 2: A has 1.5 left (6 slots), B 2: A is paused, B runs slots 2-3 (JCT 2). A resumes
    # in slot 4 at 0.125 then 0.25: 1.5 needs 7 slots, 4-10 (JCT 11). Mean 6.5.
    rows = [(0, "image", 2.0, [0], (1, 1), (1, 1)), (2, "image", 0.5, [0], (1, 1), (1, 1))]
    settings = {"switch_penalty": 0.5, "oracle_infos": True}
    env = world([(1, 1)], [IMAGE], rows, elastic=True, **settings)
    assert play(env, "srpt")[0] == [11, 2]
    # Non-preemptive (no elastic mode, or SJF): A ends at slot 7 (JCT 8), B runs 8-9 (JCT 8).
    plain = world([(1, 1)], [IMAGE], rows, **settings)
    assert play(plain, "srpt")[0] == [8, 8]
    assert play(env, "sjf")[0] == [8, 8]


def test_elastic_srpt_does_not_preempt_for_a_task_no_shorter():
    # B needs 6 slots, as many as A has left in slot 2: the incumbent keeps running (A ends at
    # slot 7, JCT 8; B runs 8-13, JCT 12).
    rows = [(0, "image", 2.0, [0], (1, 1), (1, 1)), (2, "image", 1.5, [0], (1, 1), (1, 1))]
    env = world([(1, 1)], [IMAGE], rows, elastic=True, switch_penalty=0.5, oracle_infos=True)
    assert play(env, "srpt")[0] == [8, 12]


def test_elastic_srpt_grows_a_task_when_room_frees():
    # One (2, 8) cluster, no switch penalty. B: an image task of (1, 4) with 0.25 of work (one
    # slot); A: an lm task (rate tanh(g/16) sqrt(1.2 - p), minimum (1, 1)) with 0.6. B is
    # shorter and takes (1, 4); A gets the rest, (1, 4), and does tanh(4/16) sqrt(1.2) = 0.268
    # in slot 0. Slot 1, B gone: at 4 GPUs A needs two more slots (0.268 + 0.215 + 0.152), at
    # 7 one (0.268 + 0.357 = 0.625): it grows to the fewest CPUs and GPUs that end it in slot 1,
    # (1, 7) (JCT 2).
    rows = [(0, "lm", 0.6, [0], (1, 1), (8, 8)), (0, "image", 0.25, [0], (1, 4), (1, 4))]
    env = world([(2, 8)], [IMAGE, LM], rows, elastic=True, switch_penalty=0.0, oracle_infos=True)
    jct, trail = play(env, "srpt")
    assert jct == [2, 1]
    assert sorted(trail[:2]) == [[1, 1, 4], [2, 1, 4]]
    assert [env.dims.window + 1, 1, 7] in trail


def test_switched_slots_match_the_simulator():
    env = world([(1, 1)], [IMAGE], [(0, "image", 1.0, [0], (1, 1), (1, 1))], oracle_infos=True)
    speed = env.speed
    # 1.5 left at 0.25 a slot, the first at half: 0.125 + 0.25 x 6 >= 1.5 -> 7 slots.
    assert switched_slots(speed, 0, 2.0, 0.5, 0.5)[1, 1] == 7
    assert switched_slots(speed, 0, 2.0, 0.5, 0.0)[1, 1] == 6
    # No rate without a CPU: never.
    assert np.isinf(switched_slots(speed, 0, 2.0, 0.5, 0.5)[0, 1])
