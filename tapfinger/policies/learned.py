"""`tapfinger`: the learned policy, and acting with the network for a batch of observations.

:func:`act_batch` is the one place where the network decides, in evaluation and in training
alike: stack the observations, run the actor on the rows that have something to start, apply the
round-level no-deadlock rule when acting greedily, then the paper's Bayes rule for conflicts
(§IV-D). :class:`TapFingerPolicy` wraps it behind the policy interface; it loads a checkpoint
written by ``train.py`` (``torch.load(weights_only=True)``), refuses one whose shapes do not
match the env's scenario, and acts greedily unless ``sample=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from envs.errors import ConfigError
from envs.observation import CLUSTER_FEATURES
from tapfinger.checkpoint import Network, network_from_checkpoint
from tapfinger.conflicts import resolve_conflicts
from tapfinger.graph import stack_observations, to_tensors
from tapfinger.policies.registry import register

#: Observation keys the network reads (every key of the structured observation today).
MODEL_KEYS = (
    "clusters",
    "pending",
    "pending_mask",
    "pending_visible",
    "running",
    "running_mask",
    "agent",
    "task_mask",
    "cpu_mask",
    "gpu_mask",
    "free",
    "demand",
    "alloc",
    "changed",
)
RUNNING_COLUMN = CLUSTER_FEATURES.index("running")


def model_inputs(obs_list: list[dict]) -> dict[str, np.ndarray]:
    """The network's inputs for a list of observations, stacked to [B, ...] arrays."""
    return stack_observations([{k: o[k] for k in MODEL_KEYS} for o in obs_list])


def flatten_states(
    state: list[tuple[dict, dict]], agents: list[str]
) -> tuple[list[dict], list[dict]]:
    """Observations and infos of every (env, agent), env-major: the order of :func:`act_batch`."""
    return (
        [obs[a] for obs, _ in state for a in agents],
        [info[a] for _, info in state for a in agents],
    )


def deadlocked_rows(
    actions: np.ndarray,
    start_mass: np.ndarray,
    stacked: dict[str, np.ndarray],
    active: np.ndarray,
    num_agents: int,
) -> np.ndarray:
    """Rows that the greedy no-deadlock rule makes start a task, one per deadlocked env.

    An env's round is deadlocked when no cluster runs anything, every agent idles, and some agent
    has a task that fits: a greedy policy would then idle until the truncation. The agent whose
    pointer puts the most mass on starting something starts its likeliest task. Any other round
    is left exactly as the policy decided (idling one cluster while others run, e.g. to wait
    for a faster one, stays the policy's choice).
    """

    def per_env(x: np.ndarray) -> np.ndarray:
        return x.reshape(-1, num_agents)

    idle = (stacked["clusters"][:, :, RUNNING_COLUMN] == 0).all(axis=1)
    stuck = per_env(idle).all(1) & (per_env(actions[:, 0]) == 0).all(1) & per_env(active).any(1)
    envs = np.flatnonzero(stuck)
    mass = np.where(active, start_mass, -1.0)
    return envs * num_agents + per_env(mass)[envs].argmax(1)


def net_value(net: Network, t: dict, states: np.ndarray, device: torch.device) -> np.ndarray:
    """The critic's (normalised) values of the observations ``t`` with global ``states``."""
    local = None if net.cfg.critic == "central" else net.encode(t)[2]
    return net.value(t, torch.as_tensor(states, device=device), local).cpu().numpy()


@dataclass
class BatchDecision:
    """What :func:`act_batch` decided for B = envs x agents observations (env-major)."""

    stacked: dict[str, np.ndarray]
    """The network's stacked inputs (stored with a rollout and reused in the update)."""
    actions: np.ndarray
    """int [B, 3 * S]: the policy's own decisions, before the conflict rule."""
    env_actions: np.ndarray
    """int [B, 3 * S]: what goes to the env (conflict losers turned into no-ops)."""
    keep: np.ndarray
    """bool [B, S]: starts whose allocation log-probabilities count (not lost to a conflict)."""
    logp: np.ndarray
    """float [B]: joint log-probability of ``actions`` (lost allocations left out)."""
    value: np.ndarray | None
    """float [B]: the critic's normalised values, when global states were given."""


def act_batch(
    net: Network,
    obs_list: list[dict],
    facts: list[dict],
    *,
    num_agents: int,
    greedy: bool,
    bayes: bool,
    device: torch.device,
    states: np.ndarray | None = None,
) -> BatchDecision:
    """Decide for B = envs x agents observations (env-major), resolving conflicts by Bayes.

    Observations in which only the no-op is valid are not run through the actor: their action
    is the no-op with log-probability 0 (most rounds leave most agents nothing to start).

    Args:
        net: the actor-critic.
        obs_list: B observations, env-major, agent-minor.
        facts: the B agents' infos (``task_index`` feeds the conflict rule).
        num_agents: agents per env.
        greedy: take the likeliest action (and apply the no-deadlock rule) instead of sampling.
        bayes: resolve conflicts with the paper's Bayes rule (else the env's rule decides).
        device: where the network runs.
        states: float [B, state_size]: global states; when given, the critic's values too.
    """
    stacked = model_inputs(obs_list)
    b = len(obs_list)
    starts = net.dims.max_starts
    active = stacked["task_mask"][:, 1:].any(axis=1)
    actions = np.zeros((b, 3 * starts), dtype=np.int64)
    logp_task = np.zeros((b, starts), dtype=np.float32)
    logp_alloc = np.zeros((b, starts), dtype=np.float32)
    value = None
    with torch.no_grad():
        if active.any():
            sub = to_tensors({k: v[active] for k, v in stacked.items()}, device)
            decision, _ = net.decide(sub, greedy=greedy)
            actions[active] = decision.actions.cpu().numpy()
            logp_task[active] = decision.logp_task.cpu().numpy()
            logp_alloc[active] = decision.logp_alloc.cpu().numpy()
            if greedy:
                start_mass = np.zeros(b)
                start_mass[active] = 1.0 - decision.task_probs[:, 0].cpu().numpy()
                forced = deadlocked_rows(actions, start_mass, stacked, active, num_agents)
                if forced.size:
                    sub = to_tensors({k: v[forced] for k, v in stacked.items()}, device)
                    must = torch.ones(forced.size, dtype=torch.bool, device=device)
                    redo, _ = net.decide(sub, greedy=True, must_start=must)
                    actions[forced] = redo.actions.cpu().numpy()
                    logp_task[forced] = redo.logp_task.cpu().numpy()
                    logp_alloc[forced] = redo.logp_alloc.cpu().numpy()
        if states is not None:
            value = net_value(net, to_tensors(stacked, device), states, device)
    if bayes:
        task_index = np.stack([f["task_index"] for f in facts])
        env_actions, keep = resolve_conflicts(
            actions, logp_task, task_index, stacked["free"], stacked["demand"], num_agents
        )
    else:
        env_actions, keep = actions, np.ones_like(logp_task, dtype=bool)
    logp = logp_task.sum(axis=1) + (logp_alloc * keep).sum(axis=1)
    return BatchDecision(stacked, actions, env_actions, keep, logp, value)


@register("tapfinger", learned=True, needs_checkpoint=True, elastic=True)
class TapFingerPolicy:
    """Decides for all agents of one env in one batched forward pass."""

    def __init__(
        self,
        env: Any,
        checkpoint: str | None = None,
        network: Network | None = None,
        sample: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        self.env = env
        self.device = torch.device(device)
        self.sample = sample
        if network is None:
            if checkpoint is None:
                raise ConfigError("policy 'tapfinger' needs --checkpoint PATH")
            network = network_from_checkpoint(checkpoint, env).to(self.device)
        self.net = network
        self.bayes = self.net.cfg.bayes

    def reset(self, seed: int | None = None) -> None:
        if self.sample:
            torch.manual_seed(0 if seed is None else seed)

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        agents = list(observations)
        if infos is None:
            raise ConfigError("policy 'tapfinger' needs the env's infos (task_index)")
        was_training = self.net.training
        self.net.eval()
        out = act_batch(
            self.net,
            [observations[a] for a in agents],
            [infos[a] for a in agents],
            num_agents=len(agents),
            greedy=not self.sample,
            bayes=self.bayes,
            device=self.device,
        )
        self.net.train(was_training)
        return {a: out.env_actions[i] for i, a in enumerate(agents)}
