"""Tests of MAPPO (tapfinger.algorithms.mappo) and the Bayes conflict rule (tapfinger.conflicts).

GAE against a naive double loop (per-slot discounts, dones), the running value normaliser against
numpy, one PPO update on a real rollout of the smoke config, and the paper's Bayes rule on
hand-made conflicts, alone and inside real episodes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from envs import edge_cluster_v0
from envs.simulator import spare_capacity
from tapfinger.algorithms.mappo import RunningNorm, gae, log_prob
from tapfinger.checkpoint import build_network
from tapfinger.config import ExperimentConfig, ModelConfig, load_config
from tapfinger.conflicts import resolve_conflicts
from tapfinger.graph import to_tensors
from tapfinger.models.network import Decision
from tapfinger.policies import make_policy
from tapfinger.training import Trainer
from tests import ROOT

SMOKE = ROOT / "configs" / "smoke.yaml"


# ---------------------------------------------------------------------------------- GAE
def naive_gae(rewards, values, dones, slots, last_value, gamma, lam):
    """Advantages by the definition: A_t = sum_l (prod of discounts before t+l) * delta_{t+l}."""
    t_len, b = rewards.shape
    adv = np.zeros((t_len, b))
    for s in range(b):
        for t in range(t_len):
            total, coef = 0.0, 1.0
            for u in range(t, t_len):
                next_value = last_value[s] if u == t_len - 1 else values[u + 1, s]
                discount = gamma ** slots[u, s] * (1.0 - dones[u, s])
                total += coef * (rewards[u, s] + discount * next_value - values[u, s])
                if dones[u, s]:
                    break
                coef *= discount * lam
            adv[t, s] = total
    return adv, adv + values


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_the_naive_loop(seed, gamma, lam) -> None:
    rng = np.random.default_rng(seed)
    t_len, b = 13, 5
    rewards = rng.normal(size=(t_len, b))
    values = rng.normal(size=(t_len, b))
    dones = (rng.random((t_len, b)) < 0.15).astype(float)
    slots = rng.integers(0, 4, size=(t_len, b)).astype(float)  # 0: a round inside a slot
    last = rng.normal(size=b)
    adv, ret = gae(rewards, values, dones, slots, last, gamma, lam)
    want_adv, want_ret = naive_gae(rewards, values, dones, slots, last, gamma, lam)
    assert adv.shape == ret.shape == (t_len, b)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-10, atol=1e-10)


def test_gae_by_hand() -> None:
    """Two rounds inside one slot are not discounted; a done stops the bootstrap."""
    rewards = np.array([[1.0], [2.0], [4.0]])
    values = np.array([[0.5], [1.0], [3.0]])
    slots = np.array([[0.0], [2.0], [1.0]])
    dones = np.array([[0.0], [1.0], [0.0]])
    last = np.array([10.0])
    adv, ret = gae(rewards, values, dones, slots, last, gamma=0.5, lam=1.0)
    # t=2: 4 + 0.5 * 10 - 3 = 6; t=1 (done): 2 - 1 = 1; t=0: 1 + 1 * 1 - 0.5 + 1 * 1 = 2.5
    np.testing.assert_allclose(adv[:, 0], [2.5, 1.0, 6.0])
    np.testing.assert_allclose(ret[:, 0], [3.0, 2.0, 9.0])


# ---------------------------------------------------------------------------------- norm
def test_running_norm_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 5.0, size=n) for n in (7, 100, 1, 33)]
    norm = RunningNorm()
    for c in chunks:
        norm.update(c)
    data = np.concatenate(chunks)
    # The prior (mean 0, variance 1, weight 1e-4) is negligible against 141 samples.
    assert norm.mean == pytest.approx(data.mean(), rel=1e-5)
    assert norm.var == pytest.approx(data.var(), rel=1e-5)
    assert norm.std == pytest.approx(data.std(), rel=1e-5)
    assert norm.count == pytest.approx(len(data) + 1e-4)
    copy = RunningNorm()
    copy.load_state_dict(norm.state_dict())
    assert (copy.mean, copy.var, copy.count) == (norm.mean, norm.var, norm.count)


def test_log_prob_leaves_out_the_losers_allocations() -> None:
    decision = Decision(
        actions=torch.zeros(2, 6, dtype=torch.long),
        logp_task=torch.tensor([[-1.0, -2.0], [-0.5, 0.0]]),
        logp_alloc=torch.tensor([[-3.0, -4.0], [-0.25, 0.0]]),
        entropy=torch.zeros(2),
        task_probs=torch.ones(2, 3) / 3,
        active=torch.ones(2, 2, dtype=torch.bool),
    )
    keep = torch.tensor([[True, False], [True, True]])
    assert torch.equal(log_prob(decision, keep), torch.tensor([-6.0, -0.75]))


# ---------------------------------------------------------------------------------- PPO
@pytest.fixture
def trainer(tmp_path: Path):
    """A Trainer on the smoke config, writing into a temporary run folder."""
    cfg = load_config(SMOKE)
    t = Trainer(cfg, tmp_path, torch.device("cpu"), show_progress=False)
    yield t
    t.writer.close()


def test_one_ppo_update_on_a_real_rollout(trainer: Trainer) -> None:
    tc = trainer.cfg.train
    state = [trainer._reset_env(env) for env in trainer.envs]
    ro, last, _ = trainer.collect(state)
    n_streams = tc.num_envs * len(trainer.agents)
    assert len(ro.obs) == tc.rollout_steps
    assert trainer.global_step == tc.num_envs * tc.rollout_steps
    batch = ro.flat()
    assert batch["actions"].shape == (tc.rollout_steps * n_streams, 3)
    assert batch["task_mask"].shape[0] == tc.rollout_steps * n_streams  # masks are stored
    assert last.shape == (n_streams,)

    # The stored log-probabilities are those the network gives the stored actions under the
    # stored masks: the first PPO ratio is exactly 1.
    obs_keys = [k for k in batch if k not in ("state", "actions", "logp", "keep")]
    with torch.no_grad():
        decision, _ = trainer.net.decide(
            to_tensors({k: batch[k] for k in obs_keys}), actions=torch.as_tensor(batch["actions"])
        )
        again = log_prob(decision, torch.as_tensor(batch["keep"]).float()).numpy()
    np.testing.assert_allclose(again, batch["logp"], atol=1e-4)

    before = {k: v.detach().clone() for k, v in trainer.net.named_parameters()}
    stats, _, ret = trainer.update(ro, last)
    assert set(stats) == {"policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"}
    assert all(math.isfinite(v) for v in stats.values()), stats
    assert stats["value_loss"] > 0 and stats["entropy"] > 0
    assert 0.0 <= stats["clipfrac"] <= 1.0
    assert trainer.norm.count > len(ret.reshape(-1))
    changed = {
        k for k, v in trainer.net.named_parameters() if not torch.equal(v.detach(), before[k])
    }
    for k, v in trainer.net.named_parameters():
        assert torch.isfinite(v).all(), k
    for prefix in ("critic.", "query.", "key.", "cpu_head.", "gpu_head.", "encoder.inp.task."):
        assert any(k.startswith(prefix) for k in changed), f"{prefix}* did not change"
    assert len(changed) > len(before) // 2


def test_critic_warmup_update_leaves_the_actor_untouched(trainer: Trainer) -> None:
    """``train_policy=False`` (train.critic_warmup): only the central critic's weights move."""
    state = [trainer._reset_env(env) for env in trainer.envs]
    ro, last, _ = trainer.collect(state)
    before = {k: v.detach().clone() for k, v in trainer.net.named_parameters()}
    stats, _, _ = trainer.update(ro, last, train_policy=False)
    assert stats["value_loss"] > 0 and stats["policy_loss"] == 0.0 and stats["entropy"] == 0.0
    changed = {
        k for k, v in trainer.net.named_parameters() if not torch.equal(v.detach(), before[k])
    }
    assert changed and all(k.startswith("critic.") for k in changed), changed


# ---------------------------------------------------------------------------------- Bayes rule
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
    env = edge_cluster_v0.parallel_env("quickstart", visibility="all", num_tasks=24)
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
