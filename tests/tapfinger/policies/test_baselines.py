"""Rule-based baselines: valid, complete, deterministic episodes and hand-checked decisions."""

from __future__ import annotations

import numpy as np
import pytest

from envs import edge_cluster_v0
from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.observation import after_start
from tapfinger.playing import policy_scenario
from tapfinger.policies import make_policy, policy_entry, policy_names
from tapfinger.policies.base import BaselinePolicy
from tapfinger.policies.drf import Member, progressive_filling, unit_vector
from tapfinger.policies.optimus import Group, OptimusPolicy
from tapfinger.policies.optimus_fit import FittedSpeed
from tapfinger.policies.plan import masked_valid
from tapfinger.policies.rates import RateTracker
from tapfinger.policies.snapshot import Snapshot, TaskView, build_snapshot
from tapfinger.policies.tiresias import TiresiasPolicy
from tests.conftest import tiny_scenario, tiny_trace

# Every rule-based policy in the registry (oracles included): a new baseline is tested here
# without editing this file.
BASELINES = tuple(name for name in policy_names() if not policy_entry(name).learned)


def test_the_registry_holds_the_papers_baselines() -> None:
    assert set(BASELINES) >= {
        "random",
        "min",
        "fifo",
        "sjf",
        "tiresias",
        "optimus",
        "drf",
        "tetris",
    }


ELASTIC = ("tiresias", "optimus", "drf")
PRESETS = ("quickstart", "paper_synthetic", "paper_hetero6", "testbed")


def without_oracle(infos: dict[str, dict]) -> dict[str, dict]:
    """The infos a non-oracle policy gets in these tests: the oracle keys removed."""
    return {
        a: {k: v for k, v in i.items() if not k.startswith("oracle_")} for a, i in infos.items()
    }


def check_masked(env: EdgeClusterEnv, obs: dict, action: np.ndarray) -> None:
    """Every triple of ``action`` up to the first no-op is allowed by the (updated) masks."""
    view = obs
    for j in range(env.dims.max_starts):
        idx, cpu, gpu = (int(v) for v in action[3 * j : 3 * j + 3])
        if idx == 0:
            assert not action[3 * j :].any(), "triples after a no-op must be zero"
            return
        assert masked_valid(view, idx, cpu, gpu), (j, idx, cpu, gpu)
        if idx <= env.dims.window:
            view = after_start(view, idx, cpu, gpu)
        else:
            return  # masks after a resize are not derived; the env's invalid count checks it


def for_policy(env: EdgeClusterEnv, name: str) -> EdgeClusterEnv:
    """``env`` as ``name`` plays it in evaluation (an oracle gets the oracle infos)."""
    scenario = policy_scenario(name, env.scenario)
    return env if scenario is env.scenario else EdgeClusterEnv(scenario, env._fixed_trace)


def episode(env: EdgeClusterEnv, name: str, seed: int, **options) -> tuple[dict, list]:
    """Run one episode; assert valid actions, no conflicts, invariants; return the summary."""
    env = for_policy(env, name)
    policy = make_policy(name, env, **options)
    policy.reset(seed)
    obs, infos = env.reset(seed=seed)
    trail = []
    while env.agents:
        given = infos if policy_entry(name).oracle else without_oracle(infos)
        actions = policy.act(obs, given)
        for agent, a in actions.items():
            assert env.action_space(agent).contains(a)
            check_masked(env, obs[agent], a)
        trail.append({a: v.tolist() for a, v in actions.items()})
        obs, _, _, _, infos = env.step(actions)
        env.check_invariants()
        for info in infos.values():
            assert info["invalid_actions"] == 0
            assert info["conflicts_lost"] == 0
    summary = next(iter(infos.values()))["episode"]
    return summary, trail


# ------------------------------------------------------------------------------ full episodes
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_finishes_every_preset_with_valid_actions(name, preset):
    env = edge_cluster_v0.parallel_env(preset, num_tasks=30, infos="full")
    summary, _ = episode(env, name, seed=3)
    assert summary["tasks_finished"] == summary["tasks"] == 30
    assert summary["mean_jct"] >= summary["lower_bound_mean_jct"] - 1e-9


@pytest.mark.parametrize("preset", ("quickstart", "testbed"))
@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_in_elastic_mode(name, preset):
    env = edge_cluster_v0.parallel_env(preset, num_tasks=25, elastic=True, infos="full")
    summary, _ = episode(env, name, seed=1)
    assert summary["tasks_finished"] == summary["tasks"] == 25


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_in_multi_task_mode(name):
    env = edge_cluster_v0.parallel_env(
        "quickstart", num_tasks=25, mode="multi", max_starts=3, infos="full"
    )
    summary, trail = episode(env, name, seed=2)
    assert summary["tasks_finished"] == summary["tasks"] == 25
    if name != "random":
        assert any(np.count_nonzero(np.asarray(a)[::3]) > 1 for t in trail for a in t.values())


@pytest.mark.parametrize("name", BASELINES)
def test_deterministic_under_a_seed(name):
    env = edge_cluster_v0.parallel_env(
        "quickstart", num_tasks=20, elastic=name in ELASTIC, infos="full"
    )
    first, trail_a = episode(env, name, seed=5)
    second, trail_b = episode(env, name, seed=5)
    assert trail_a == trail_b
    assert first["mean_jct"] == second["mean_jct"]


def test_registry_marks_the_oracles():
    oracles = {name for name in policy_names() if policy_entry(name).oracle}
    assert oracles == {"sjf", "srpt"}
    assert {name for name in policy_names() if policy_entry(name).learned} == {"tapfinger"}


def test_elastic_variants_are_chosen_by_the_env():
    plain = edge_cluster_v0.parallel_env("quickstart", infos="full")
    elastic = edge_cluster_v0.parallel_env("quickstart", elastic=True, infos="full")
    for name in ELASTIC:
        assert not make_policy(name, plain).elastic
        assert make_policy(name, elastic).elastic


# ------------------------------------------------------------------------------ tiny states
def tiny_env(clusters, types, trace_rows, elastic=False) -> EdgeClusterEnv:
    """One env over a hand-written trace: rows of (arrival, type, work, visible clusters)."""
    scenario = tiny_scenario(clusters, types, len(trace_rows), elastic=elastic)
    return EdgeClusterEnv(scenario, tiny_trace(types, trace_rows, len(clusters)))


def first_starts(env: EdgeClusterEnv, name: str, **options) -> dict[str, tuple[int, int, int]]:
    """(task row, cpu, gpu) each agent starts in the first round (task row -1: no-op)."""
    env = for_policy(env, name)
    policy = make_policy(name, env, **options)
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    actions = policy.act(obs, infos if policy_entry(name).oracle else without_oracle(infos))
    out = {}
    for agent, a in actions.items():
        idx = int(a[0])
        out[agent] = (int(infos[agent]["task_index"][idx]) if idx else -1, int(a[1]), int(a[2]))
    return out


IMAGE = ("image", 2, 1, 2, 1)


def test_sjf_picks_the_shortest_task():
    # Room for one image task; the later, shorter one (row 1) must go first; FIFO does not.
    env = tiny_env([(2, 1)], [IMAGE], [(0, "image", 2.0, [0]), (0, "image", 1.0, [0])])
    assert first_starts(env, "sjf")["cluster_0"][0] == 1
    assert first_starts(env, "fifo")["cluster_0"][0] == 0


def test_sjf_gives_a_lone_lm_task_the_smallest_fastest_allocation():
    # tanh(g/16) sqrt(1.2 - p): 10 GPUs finish in 2 slots, 9 need 3, more than 10 cannot beat 2.
    env = tiny_env([(16, 16)], [("lm", 2, 1, 16, 16)], [(0, "lm", 1.0, [0])])
    assert first_starts(env, "sjf")["cluster_0"] == (0, 2, 10)


def test_sjf_goes_where_it_finishes_soonest():
    # The lm task can see a 4-GPU and a 16-GPU cluster: it goes to the larger one.
    env = tiny_env([(4, 4), (16, 16)], [("lm", 2, 1, 16, 16)], [(0, "lm", 1.0, [0, 1])])
    starts = first_starts(env, "sjf")
    assert starts["cluster_0"][0] == -1 and starts["cluster_1"][0] == 0


def test_coordination_never_lets_two_agents_claim_one_task():
    env = tiny_env([(4, 4), (4, 4)], [IMAGE], [(0, "image", 1.0, [0, 1])])
    for name in BASELINES:
        starts = first_starts(env, name)
        assert sorted(t for t, _, _ in starts.values()) == [-1, 0], name


def optimus_group(policy: OptimusPolicy, rows, pool) -> Group:
    g = Group(np.array([16, 16, 0]), np.array([*pool, 0]))
    for i, (type_, alloc, remaining) in enumerate(rows):
        g.add(i, None, type_, alloc, (1, 1), (16, 16), remaining, 0.0)
    g.arrays()
    return g


def test_optimus_gives_the_next_unit_to_the_largest_marginal_gain():
    env = edge_cluster_v0.parallel_env("quickstart", infos="full")
    policy = make_policy("optimus", env)
    assert isinstance(policy, OptimusPolicy)
    levels = np.arange(env.dims.gpu_levels)
    table = np.ones((2, env.dims.cpu_levels, env.dims.gpu_levels))
    table[0] = 8.0 / np.maximum(levels, 1)[None, :]  # type 0: GPUs halve its time
    table[1] = 4.0  # type 1: flat
    policy.table = table
    # One spare GPU: 8 -> 4 slots for type 0 beats nothing for type 1.
    g = optimus_group(policy, [(1, (1, 1), 1.0), (0, (1, 1), 1.0)], pool=(0, 1))
    policy._greedy(g, queue=0.0, transfers=False)
    assert g.alloc.tolist() == [[1, 1], [1, 2]]
    # Same type, the task with more work left gains more from the unit.
    g = optimus_group(policy, [(0, (1, 1), 0.2), (0, (1, 1), 0.9)], pool=(0, 1))
    policy._greedy(g, queue=0.0, transfers=False)
    assert g.alloc.tolist() == [[1, 1], [1, 2]]
    # Gains shrink (8/g): with 3 spare GPUs two go to the larger task, one to the other.
    g = optimus_group(policy, [(0, (1, 1), 0.5), (0, (1, 1), 1.0)], pool=(0, 3))
    policy._greedy(g, queue=0.0, transfers=False)
    assert g.alloc.tolist() == [[1, 2], [1, 3]]
    # A unit that does not help is kept back.
    g = optimus_group(policy, [(1, (1, 1), 1.0)], pool=(0, 5))
    policy._greedy(g, queue=0.0, transfers=False)
    assert g.alloc.tolist() == [[1, 1]]


def test_optimus_learns_speeds_from_observed_progress():
    tracker = RateTracker()
    # Image-like: 0.25 per slot whatever the allocation; lm-like: rate tanh(g / 16).
    for alloc in [(2, 1), (2, 8), (8, 4), (16, 16)]:
        tracker.add(0, alloc, 0.25 * 12, 12)
    for g in (1, 4, 8, 16):
        tracker.add(1, (2, g), np.tanh(g / 16) * 12, 12)
    model = FittedSpeed()
    kinds = (np.array([2, 1, 0]), np.array([16, 16]))
    model.refit(tracker, {0: kinds, 1: kinds})
    flat = model.time(0, np.array([2, 2, 16]), np.array([1, 16, 16]))
    assert np.allclose(flat, 4.0, rtol=0.1)
    lm = model.time(1, np.array([2, 2, 2]), np.array([2, 6, 12]))
    assert lm[0] > lm[1] > lm[2]
    assert lm == pytest.approx(1 / np.tanh(np.array([2, 6, 12]) / 16), rel=0.1)


def test_drf_equalises_dominant_shares():
    # The DRF paper's example (Ghodsi et al., NSDI 2011): 9 CPUs, 18 GB; A needs (1, 4) per task,
    # B (3, 1). Progressive filling gives A (3, 12) and B (6, 2): dominant shares 2/3 each.
    def member(task, mn):
        return Member(task, 0, np.array([*mn, 0]), np.array([9, 18]), *mn)

    a, b = member(0, (1, 4)), member(1, (3, 1))
    room = np.array([9 - 1 - 3, 18 - 4 - 1, 0])
    progressive_filling(
        [a, b], room, np.array([9, 18]), [unit_vector(a.min_demand), unit_vector(b.min_demand)]
    )
    assert (a.cpu, a.gpu) == (3, 12)
    assert (b.cpu, b.gpu) == (6, 2)


def test_drf_splits_a_cluster_evenly_between_its_tasks():
    # Two tasks compete for an 8/8 cluster: each starts with dominant share 1/2.
    lm = ("lm", 1, 1, 8, 8)
    env = tiny_env([(8, 8)], [lm], [(0, "lm", 1.0, [0]), (0, "lm", 1.0, [0])])
    assert first_starts(env, "drf")["cluster_0"] == (0, 4, 4)


def hand_snapshot(env, attained: tuple[float, float]) -> tuple[Snapshot, dict]:
    """One cluster with room for one task at its minimum, two waiting image tasks."""
    obs, infos = env.reset(seed=0)
    snap = build_snapshot(env, obs, infos, {})
    views = list(snap.pending.values())
    for tv, a in zip(views, attained):
        tv.attained_gpu = a
    return snap, obs


def test_tiresias_serves_least_attained_service_first():
    env = tiny_env([(2, 1)], [IMAGE], [(0, "image", 1.0, [0]), (0, "image", 1.0, [0])])
    policy = make_policy("tiresias", env, thresholds=(16.0, 64.0))
    assert isinstance(policy, TiresiasPolicy)
    # Row 0 was served 20 GPU-slots (second queue), row 1 none: row 1 starts.
    snap, obs = hand_snapshot(env, (20.0, 0.0))
    assert list(policy.plan(snap, obs).started) == [1]
    # Within one queue, arrival order.
    snap, obs = hand_snapshot(env, (3.0, 0.0))
    assert list(policy.plan(snap, obs).started) == [0]
    assert policy.queue(0.0) == 0 and policy.queue(16.0) == 1 and policy.queue(100.0) == 2


def test_elastic_tiresias_preempts_a_more_served_task_when_the_env_allows_pauses():
    env = tiny_env(
        [(2, 1)], [IMAGE], [(0, "image", 4.0, [0]), (1, "image", 1.0, [0])], elastic=True
    )
    policy = make_policy("tiresias", env, thresholds=(2.0,))
    obs, infos = env.reset(seed=0)
    for _ in range(6):  # row 0 runs and gathers 2 GPU-slots; row 1 arrives and waits
        obs, _, _, _, infos = env.step(policy.act(obs, infos))
        if infos["cluster_0"]["slot"] >= 2:
            break
    info = infos["cluster_0"]
    assert info["running_index"].tolist() == [0]
    o = obs["cluster_0"]
    run_action = env.dims.window + 1
    snap = build_snapshot(env, {"cluster_0": o}, infos, {})
    policy.slot_targets.slot = -1
    plan = policy.plan(snap, {"cluster_0": o})
    ops = plan.ops[0]
    assert ops[0].action == run_action and (ops[0].cpu, ops[0].gpu) == (0, 0)
    assert ops[1].start and ops[1].task == 1
    # The env's masks allow the pause: CPU 0 at the lowest GPU level the mask allows.
    assert plan.actions(env, {"cluster_0": o})["cluster_0"].tolist() == [run_action, 0, 1]


def test_baselines_need_infos():
    env = edge_cluster_v0.parallel_env("quickstart", infos="full")
    obs, _ = env.reset(seed=0)
    policy = make_policy("fifo", env)
    assert isinstance(policy, BaselinePolicy)
    with pytest.raises(ValueError, match="infos"):
        policy.act(obs, None)


def test_taskview_keeps_every_window_it_sits_in():
    env = tiny_env([(4, 4), (4, 4)], [IMAGE], [(0, "image", 1.0, [0, 1])])
    obs, infos = env.reset(seed=0)
    snap = build_snapshot(env, obs, infos, {})
    tv = snap.pending[0]
    assert isinstance(tv, TaskView) and tv.where == {0: 1, 1: 1}


@pytest.mark.parametrize("teacher", ["optimus", "srpt", "tetris"])
def test_elastic_planners_label_states_another_policy_drives(teacher: str) -> None:
    """Under DAgger a student drives while the teacher labels every state: the elastic
    planners then meet tasks started elsewhere than they planned (their slot's targets went
    stale) and must still plan valid operations (regression: a grow was sized by the planned
    cluster's free resources instead of those where the task runs)."""
    from envs.observation import conditional_sample

    env = edge_cluster_v0.parallel_env(
        "paper_hetero6", elastic=True, oracle_infos=True, infos="full"
    )
    policy = make_policy(teacher, env)
    rng = np.random.default_rng(0)
    obs, infos = env.reset(seed=5)
    policy.reset(5)
    for _ in range(400):
        labels = policy.act(obs, infos)
        for a, action in labels.items():  # every label is feasible under the agent's masks
            task, cpu, gpu = (int(v) for v in action[:3])
            assert obs[a]["task_mask"][task], (a, action)
            if task:
                assert obs[a]["cpu_mask"][task, cpu] and obs[a]["gpu_mask"][task, gpu]
        obs, _, _, _, infos = env.step(
            {a: np.array(conditional_sample(obs[a], rng)) for a in env.agents}
        )
        if not env.agents:
            obs, infos = env.reset(seed=6)
            policy.reset(6)
