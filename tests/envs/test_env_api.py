"""The PettingZoo contract: API tests, spaces at every step, masks, determinism, presets."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from envs import edge_cluster_v0, preset_names
from envs.observation import random_actions

FAST_PRESETS = ["paper_synthetic", "paper_hetero6", "testbed", "quickstart"]


def test_presets_are_listed():
    assert set(FAST_PRESETS) <= set(preset_names())


@pytest.mark.parametrize("name", ["quickstart", "paper_synthetic"])
def test_parallel_api(name):
    env = edge_cluster_v0.parallel_env(name, num_tasks=30)
    assert env.metadata["name"] == "edge_cluster_v0"
    parallel_api_test(env, num_cycles=200)


def test_parallel_seed():
    parallel_seed_test(lambda: edge_cluster_v0.parallel_env("quickstart", num_tasks=20))


def test_multi_task_mode_api():
    env = edge_cluster_v0.parallel_env(
        "quickstart", num_tasks=20, mode="multi", max_starts=3, infos="full"
    )
    assert env.action_space("cluster_0").shape == (9,)
    parallel_api_test(env, num_cycles=100)


def run_episode(env, seed: int, rng_seed: int, check=None):
    rng = np.random.default_rng(rng_seed)
    obs, infos = env.reset(seed=seed)
    rewards, trajectory = [], []
    while env.agents:
        if check:
            check(env, obs, infos)
        actions = random_actions(env, obs, rng)
        trajectory.append({a: v.tolist() for a, v in actions.items()})
        obs, r, _term, _trunc, infos = env.step(actions)
        rewards.append(r)
        if check:
            env.check_invariants()
    return rewards, trajectory, env.task_records()


def check_observation(env, obs, infos):
    for agent, o in obs.items():
        space = env.observation_space(agent)
        assert space.contains(o), f"{agent}: observation outside its space"
        am = o["task_mask"].astype(bool)
        assert am[0], "the no-op must always be valid"
        # Every allowed (task, cpu, gpu) must be a feasible start on this cluster.
        c = env.possible_agents.index(agent)
        sim = env.sim
        for i in np.flatnonzero(am[1 : 1 + env.dims.window]) + 1:
            task = int(infos[agent]["task_index"][i])
            for cpu in np.flatnonzero(o["cpu_mask"][i]):
                assert sim.fits(c, task, int(cpu), int(np.flatnonzero(o["gpu_mask"][i])[0]))
            for gpu in np.flatnonzero(o["gpu_mask"][i]):
                assert sim.fits(c, task, int(np.flatnonzero(o["cpu_mask"][i])[0]), int(gpu))
        # A task that is masked off really does not fit at its minimum demand.
        for i in np.flatnonzero(~am[1 : 1 + env.dims.window]) + 1:
            task = int(infos[agent]["task_index"][i])
            if task >= 0:
                mn = env.trace.min_demand[task]
                assert not sim.fits(c, task, int(mn[0]), int(mn[1]))
    assert env.state_space.contains(env.state())


@pytest.mark.parametrize("name", FAST_PRESETS)
def test_random_episodes_keep_invariants(name):
    for seed in range(2):
        env = edge_cluster_v0.parallel_env(name, num_tasks=40, infos="full")
        _, _, records = run_episode(env, seed, seed, check=check_observation)
        assert (records.jct >= 1).all(), "every task finishes exactly once, after arriving"
        assert (records.jct >= records.lower_bound).all()


def test_elastic_episodes_keep_invariants():
    env = edge_cluster_v0.parallel_env("quickstart", num_tasks=25, elastic=True, infos="full")
    _, _, records = run_episode(env, 3, 3, check=check_observation)
    assert (records.jct >= 1).all()


def test_multi_task_episodes_keep_invariants():
    env = edge_cluster_v0.parallel_env("paper_synthetic", num_tasks=40, mode="multi", infos="full")
    _, _, records = run_episode(env, 0, 0, check=check_observation)
    assert (records.jct >= 1).all()


def test_whole_episode_determinism():
    a = run_episode(edge_cluster_v0.parallel_env("paper_synthetic", infos="full"), 7, 7)
    b = run_episode(edge_cluster_v0.parallel_env("paper_synthetic", infos="full"), 7, 7)
    assert a[0] == b[0] and a[1] == b[1]
    assert np.array_equal(a[2].jct, b[2].jct)
    c = run_episode(edge_cluster_v0.parallel_env("paper_synthetic", infos="full"), 8, 7)
    assert not np.array_equal(a[2].arrival, c[2].arrival)


def test_arrivals_do_not_depend_on_the_policy():
    env = edge_cluster_v0.parallel_env("quickstart", infos="full")
    _, _, r1 = run_episode(env, 5, 1)
    _, _, r2 = run_episode(env, 5, 2)
    assert np.array_equal(r1.arrival, r2.arrival)
    assert np.array_equal(r1.task_type, r2.task_type)


def test_littles_law_team_reward():
    """With the team reward and no discount, the return is minus the sum of JCTs."""
    env = edge_cluster_v0.parallel_env("paper_synthetic", reward="team", infos="full")
    rewards, _, records = run_episode(env, 3, 3)
    ret = sum(r["cluster_0"] for r in rewards)
    assert ret == -records.jct.sum()


def test_agent_reward_counts_attributed_tasks():
    env = edge_cluster_v0.parallel_env("quickstart", reward="agent", infos="full")
    rewards, _, records = run_episode(env, 2, 2)
    # Each task is attributed to at least one agent in every slot it is in the system.
    total = sum(sum(r.values()) for r in rewards)
    assert total <= -records.jct.sum()


def test_fast_forward_is_exact():
    """Skipping idle slots gives the same episode as stepping every slot."""
    env_ff = edge_cluster_v0.parallel_env("testbed", num_tasks=40, infos="full")
    env_slow = edge_cluster_v0.parallel_env("testbed", num_tasks=40, infos="full")
    env_slow.sim.fast_forward = False
    ra, _, a = run_episode(env_ff, 4, 4)
    rb, _, b = run_episode(env_slow, 4, 4)
    assert np.array_equal(a.finish, b.finish) and np.array_equal(a.start, b.start)
    assert sum(r["cluster_0"] for r in ra) == sum(r["cluster_0"] for r in rb)


def test_metrics_at_episode_end():
    env = edge_cluster_v0.parallel_env("quickstart", infos="full")
    rng = np.random.default_rng(0)
    obs, infos = env.reset(seed=0)
    while env.agents:
        obs, _, _, _, infos = env.step(random_actions(env, obs, rng))
    ep = infos["cluster_0"]["episode"]
    records = env.task_records()
    assert ep["mean_jct"] == pytest.approx(records.jct.mean())
    assert ep["tasks_finished"] == len(records.jct)
    assert ep["lower_bound_ratio"] >= 1.0
    assert 0.0 < ep["utilization_gpu"] <= 1.0
    assert ep["p50_jct"] <= ep["p95_jct"] <= ep["p99_jct"]
    per_cluster = env.utilization_by_cluster()
    assert per_cluster.shape == (2, 3)
    # The network-wide GPU utilisation is the capacity-weighted mean of the clusters'.
    weights = env.capacity[:, 1] / env.capacity[:, 1].sum()
    assert ep["utilization_gpu"] == pytest.approx(float(per_cluster[:, 1] @ weights))


@pytest.mark.parametrize("elastic", [False, True])
def test_observations_are_read_only_and_kept_ones_never_change(elastic):
    """Parts that did not change are handed out again, so every array an agent receives is
    read-only (writing into it raises instead of corrupting later rounds), and an observation
    kept from an earlier round still holds what it held then."""
    env = edge_cluster_v0.parallel_env("quickstart", num_tasks=16, elastic=elastic, infos="full")
    rng = np.random.default_rng(3)
    obs, infos = env.reset(seed=3)
    kept = []
    while env.agents:
        for agent in env.agents:
            arrays = [v for v in obs[agent].values() if isinstance(v, np.ndarray)]
            arrays += [v for v in infos[agent].values() if isinstance(v, np.ndarray)]
            assert arrays and not any(a.flags.writeable for a in arrays), agent
        with pytest.raises(ValueError, match="read-only"):
            obs["cluster_0"]["pending"][0, 0] = 1.0
        kept.append(
            (
                obs,
                {
                    a: {k: v.copy() for k, v in o.items() if k != "action_mask"}
                    for a, o in obs.items()
                },
            )
        )
        obs, _, _, _, infos = env.step(random_actions(env, obs, rng))
    assert len(kept) > 20
    for then, copy in kept:
        for agent, values in copy.items():
            for key, value in values.items():
                np.testing.assert_array_equal(then[agent][key], value, err_msg=key)
