"""MAPPO: GAE with discounting per slot of simulated time, and the clipped PPO update.

Every (env, agent) pair is one stream of transitions; the shared actor is trained on all of them
at once (parameter sharing), the critic is centralised on the global state or local (IPPO).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tapfinger.config import TrainConfig
from tapfinger.graph import to_tensors


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    slots: np.ndarray,
    last_value: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over [T, B] streams, discounting per elapsed slot.

    ``slots[t]`` is how many slots passed during step t (0 for rounds inside a slot), so rounds
    of one slot are not penalised for being many (DESIGN §5.3.1). ``dones[t]`` ends the stream
    after step t (the next value is not bootstrapped).

    Returns:
        advantages and returns, both [T, B].
    """
    t_len = len(rewards)
    adv = np.zeros_like(rewards, dtype=np.float64)
    last = np.zeros(rewards.shape[1])
    for t in reversed(range(t_len)):
        next_value = last_value if t == t_len - 1 else values[t + 1]
        discount = np.power(gamma, slots[t]) * (1.0 - dones[t])
        delta = rewards[t] + discount * next_value - values[t]
        last = delta + discount * lam * last
        adv[t] = last
    return adv, adv + values


class RunningNorm:
    """Running mean and variance of value targets (value normalisation, DESIGN §5.3)."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def update(self, x: np.ndarray) -> None:
        m, v, n = float(x.mean()), float(x.var()), x.size
        delta = m - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + v * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var) + 1e-8)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, d: dict) -> None:
        self.mean, self.var, self.count = float(d["mean"]), float(d["var"]), float(d["count"])


@dataclass
class Rollout:
    """One rollout: per step t, arrays over B = envs x agents streams."""

    obs: list[dict[str, np.ndarray]] = field(default_factory=list)
    state: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    logp: list[np.ndarray] = field(default_factory=list)
    keep: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    dones: list[np.ndarray] = field(default_factory=list)
    slots: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        decision: Any,
        states: np.ndarray,
        values: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        slots: np.ndarray,
    ) -> None:
        """Append one step: ``act_batch``'s decision (its stacked inputs, actions,
        log-probabilities, kept starts), the critic's inputs and denormalised values, and what
        the envs returned."""
        self.obs.append(decision.stacked)
        self.state.append(states)
        self.actions.append(decision.actions)
        self.logp.append(decision.logp)
        self.keep.append(decision.keep)
        self.values.append(values)
        self.rewards.append(rewards)
        self.dones.append(dones)
        self.slots.append(slots)

    def advantages(
        self, last_value: np.ndarray, gamma: float, lam: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and returns [T, B] of this rollout (see :func:`gae`)."""
        return gae(
            np.stack(self.rewards),
            np.stack(self.values),
            np.stack(self.dones),
            np.stack(self.slots),
            last_value,
            gamma,
            lam,
        )

    def flat(self) -> dict[str, np.ndarray]:
        """Observations and actions of all steps, flattened to [T * B, ...]."""
        keys = self.obs[0].keys()
        out = {k: np.concatenate([o[k] for o in self.obs]) for k in keys}
        out["state"] = np.concatenate(self.state)
        out["actions"] = np.concatenate(self.actions)
        out["logp"] = np.concatenate(self.logp)
        out["keep"] = np.concatenate(self.keep)
        return out


def log_prob(decision, keep: torch.Tensor) -> torch.Tensor:
    """Joint log-probability of a decision; losing starts' allocation terms are left out."""
    return decision.logp_task.sum(-1) + (decision.logp_alloc * keep).sum(-1)


def ppo_update(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, np.ndarray],
    advantages: np.ndarray,
    returns: np.ndarray,
    norm: RunningNorm,
    cfg: TrainConfig,
    generator: np.random.Generator,
    device: torch.device,
    train_policy: bool = True,
) -> dict[str, float]:
    """Clipped PPO epochs over one rollout; returns the mean losses and diagnostics.

    With ``train_policy=False`` only the value loss is optimised (critic warm-up): the policy
    loss and entropy are not computed, so a central critic's update leaves the actor untouched.
    """
    n = len(advantages)
    norm.update(returns)
    targets = (returns - norm.mean) / norm.std
    stats: dict[str, list[float]] = {
        k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
    }
    mb_size = max(1, n // cfg.minibatches)
    obs_keys = [k for k in batch if k not in ("state", "actions", "logp", "keep")]
    # Only observations with something to start carry a policy gradient; the others (only the
    # no-op valid: log-probability 0, entropy 0) train the critic alone.
    active_all = batch["task_mask"][:, 1:].any(axis=1) & train_policy
    local_critic = net.cfg.critic == "local"
    for _ in range(cfg.epochs):
        order = generator.permutation(n)
        for start in range(0, n, mb_size):
            idx = order[start : start + mb_size]
            # A central critic reads the global state and the agent's one-hot only.
            keys = obs_keys if local_critic else ["agent"]
            obs = to_tensors({k: batch[k][idx] for k in keys}, device)
            state = torch.as_tensor(batch["state"][idx], device=device)
            target = torch.as_tensor(targets[idx], dtype=torch.float32, device=device)
            local = net.encode(obs)[2] if local_critic else None
            value = net.value(obs, state, local)
            v_loss = 0.5 * ((value - target) ** 2).mean()
            act = idx[active_all[idx]]
            pg_loss = ent = torch.zeros((), device=device)
            if len(act):
                sub = to_tensors({k: batch[k][act] for k in obs_keys}, device)
                actions = torch.as_tensor(batch["actions"][act], device=device)
                old_logp = torch.as_tensor(batch["logp"][act], device=device)
                keep = torch.as_tensor(batch["keep"][act], device=device).float()
                adv = torch.as_tensor(advantages[act], dtype=torch.float32, device=device)
                if len(act) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                decision, _ = net.decide(sub, actions=actions)
                logp = log_prob(decision, keep)
                ratio = torch.exp(logp - old_logp)
                pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - cfg.clip, 1 + cfg.clip) * adv)
                pg_loss = pg.mean()
                ent = decision.entropy.mean()
                with torch.no_grad():
                    log_ratio = logp - old_logp
                    stats["approx_kl"].append(float(((ratio - 1) - log_ratio).mean()))
                    stats["clipfrac"].append(float(((ratio - 1).abs() > cfg.clip).float().mean()))
            loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            stats["policy_loss"].append(float(pg_loss.detach()))
            stats["value_loss"].append(float(v_loss.detach()))
            stats["entropy"].append(float(ent.detach()))
    return {k: float(np.mean(v)) if v else 0.0 for k, v in stats.items()}
