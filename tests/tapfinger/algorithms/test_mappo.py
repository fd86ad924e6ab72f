"""Tests of MAPPO (tapfinger.algorithms.mappo): GAE, value normalisation, the PPO update.

GAE against a naive double loop (per-slot discounts, dones), the running value normaliser against
numpy, and one PPO update on a real rollout of the smoke config (the Bayes conflict rule is in
tests/tapfinger/test_conflicts.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tapfinger.algorithms.mappo import RunningNorm, gae, log_prob
from tapfinger.config import load_config
from tapfinger.graph import to_tensors
from tapfinger.models.network import Decision
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


def collect_once(trainer: Trainer):
    """One rollout of the trainer's collector (its envs just reset): (rollout, last values)."""
    collector = trainer._collector()
    collector.start()
    try:
        col = trainer.collect(collector)
    finally:
        collector.close()
    return col.rollout, col.last_value


def test_one_ppo_update_on_a_real_rollout(trainer: Trainer) -> None:
    tc = trainer.cfg.train
    ro, last = collect_once(trainer)
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
    ro, last = collect_once(trainer)
    before = {k: v.detach().clone() for k, v in trainer.net.named_parameters()}
    stats, _, _ = trainer.update(ro, last, train_policy=False)
    assert stats["value_loss"] > 0 and stats["policy_loss"] == 0.0 and stats["entropy"] == 0.0
    changed = {
        k for k, v in trainer.net.named_parameters() if not torch.equal(v.detach(), before[k])
    }
    assert changed and all(k.startswith("critic.") for k in changed), changed
