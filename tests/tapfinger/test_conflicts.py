"""The paper's Bayes'-theorem conflict rule (tapfinger.conflicts, arXiv 2302.00571 §IV-D).

Hand-computed posteriors (pointer probability x spare-capacity prior), ties, multi-task
sequences, env boundaries, and real episodes in which every agent sees every task.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs import edge_cluster_v0
from envs.simulator import spare_capacity
from tapfinger.checkpoint import build_network
from tapfinger.config import ExperimentConfig, ModelConfig
from tapfinger.conflicts import resolve_conflicts
from tapfinger.policies import make_policy

A = 4  # action indices per agent: no-op + a window of 3
MIN_DEMAND = np.array([2, 1, 0])


def conflict_inputs(task_index: list[list[int]], free: list[list[int]]):
    """Task rows and free resources per agent; every task's minimum demand is (2, 1, 0)."""
    b = len(task_index)
    demand = np.tile(MIN_DEMAND, (b, A, 1))
    demand[:, 0] = 0
    return np.array(task_index), np.array(free), demand


def test_spare_capacity() -> None:
    assert spare_capacity(np.array([8, 3, 0]), np.array([2, 1, 0])) == 3.0
    assert spare_capacity(np.array([8, 3, 0]), np.array([2, 0, 0])) == 4.0
    assert spare_capacity(np.array([8, 3, 0]), np.array([0, 0, 0])) == 11.0


def test_spare_capacity_beats_a_larger_pointer_probability() -> None:
    # Both agents (of one env) pick task 10: agent 0 via index 1, agent 1 via index 2.
    task_index, free, demand = conflict_inputs(
        [[-1, 10, 11, -1], [-1, 11, 10, 12]], [[8, 8, 0], [2, 4, 0]]
    )
    actions = np.array([[1, 3, 2], [2, 4, 1]])
    # Posteriors: 0.5 * min(8/2, 8/1) = 2.0 against 0.9 * min(2/2, 4/1) = 0.9.
    logp = np.log(np.array([[0.5], [0.9]]))
    env_actions, keep = resolve_conflicts(actions, logp, task_index, free, demand, 2)
    assert env_actions.tolist() == [[1, 3, 2], [0, 0, 0]]
    assert keep.tolist() == [[True], [False]]
    assert actions.tolist() == [[1, 3, 2], [2, 4, 1]], "the sampled actions are not modified"


def test_larger_pointer_probability_wins_with_equal_spare() -> None:
    task_index, free, demand = conflict_inputs(
        [[-1, 10, 11, -1], [-1, 11, 10, 12]], [[8, 8, 0], [8, 8, 0]]
    )
    actions = np.array([[1, 3, 2], [2, 4, 1]])
    logp = np.log(np.array([[0.5], [0.9]]))
    env_actions, keep = resolve_conflicts(actions, logp, task_index, free, demand, 2)
    assert env_actions.tolist() == [[0, 0, 0], [2, 4, 1]]
    assert keep.tolist() == [[False], [True]]


def test_three_contenders_and_ties() -> None:
    task_index, free, demand = conflict_inputs([[-1, 10, -1, -1]] * 3, [[4, 4, 0]] * 3)
    actions = np.array([[1, 2, 1]] * 3)
    logp = np.log(np.array([[0.2], [0.7], [0.7]]))  # agents 1 and 2 tie: the first wins
    env_actions, keep = resolve_conflicts(actions, logp, task_index, free, demand, 3)
    assert env_actions.tolist() == [[0, 0, 0], [1, 2, 1], [0, 0, 0]]
    assert keep.tolist() == [[False], [True], [False]]


def test_multi_task_sequences_are_compacted() -> None:
    task_index, free, demand = conflict_inputs(
        [[-1, 10, 11, 12], [-1, 13, 10, 14]], [[16, 16, 0], [4, 4, 0]]
    )
    # Agent 1 starts 13, then 10 (also wanted by agent 0, who has far more spare), then 14.
    actions = np.array(
        [
            [1, 2, 1, 0, 0, 0, 3, 3, 3],  # entries after the no-op are never claims
            [1, 2, 2, 2, 2, 1, 3, 2, 1],
        ]
    )
    logp = np.log(np.array([[0.3, 1.0, 1.0], [0.3, 0.9, 0.5]]))
    env_actions, keep = resolve_conflicts(actions, logp, task_index, free, demand, 2)
    assert env_actions[1].tolist() == [1, 2, 2, 3, 2, 1, 0, 0, 0]
    assert keep[1].tolist() == [True, False, True]
    assert env_actions[0].tolist() == actions[0].tolist()
    assert keep[0].all()


def test_agents_of_different_envs_never_conflict() -> None:
    # Two envs of two agents: rows 0 and 2 (different envs) pick the same task row 10.
    task_index, free, demand = conflict_inputs(
        [[-1, 10, -1, -1], [-1, 11, -1, -1], [-1, 10, -1, -1], [-1, 11, -1, -1]],
        [[8, 8, 0]] * 4,
    )
    actions = np.array([[1, 2, 1]] * 4)
    logp = np.log(np.full((4, 1), 0.5))
    env_actions, keep = resolve_conflicts(actions, logp, task_index, free, demand, 2)
    assert env_actions.tolist() == actions.tolist()
    assert keep.all()
    # The same four rows as one env of four agents: two conflicts, the first row wins each.
    env_actions, keep = resolve_conflicts(actions, logp, task_index, free, demand, 4)
    assert keep[:, 0].tolist() == [True, True, False, False]


@pytest.mark.parametrize("bayes", [True, False])
def test_bayes_rule_removes_every_conflict_from_real_episodes(bayes: bool) -> None:
    """Every agent sees every task: without the rule agents collide, with it never."""
    env = edge_cluster_v0.parallel_env("quickstart", visibility="all", num_tasks=24, infos="full")
    torch.manual_seed(0)
    net = build_network(env, ExperimentConfig(model=ModelConfig(hidden=16, heads=2, bayes=bayes)))
    policy = make_policy("tapfinger", env, network=net, sample=True)
    conflicts = 0
    for seed in range(2):
        policy.reset(seed)
        obs, infos = env.reset(seed=seed)
        while env.agents:
            obs, _, _, _, infos = env.step(policy.act(obs, infos))
            assert all(i["invalid_actions"] == 0 for i in infos.values())
        conflicts += infos[env.possible_agents[0]]["episode"]["conflicts"]
    if bayes:
        assert conflicts == 0
    else:
        assert conflicts > 0
