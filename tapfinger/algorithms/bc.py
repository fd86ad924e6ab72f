"""Behaviour cloning: the warm start that imitates a baseline before PPO (DESIGN §5.3.1).

DAgger-style: the teacher labels every visited state; it also drives the envs at first, then
hands over to the student (sampling) so that the student learns to recover from its own
mistakes. The teacher may be an oracle baseline (it reads privileged ``infos`` during training
only); the student only ever sees observations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from envs.edge_cluster_v0 import EdgeClusterEnv
from tapfinger.algorithms.mappo import log_prob
from tapfinger.checkpoint import Network
from tapfinger.config import TrainConfig
from tapfinger.graph import to_tensors
from tapfinger.models.network import MASKED
from tapfinger.policies import Policy
from tapfinger.policies.learned import act_batch, flatten_states, model_inputs


def imitation_loss(
    net: Network, obs: dict[str, torch.Tensor], labels: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Mean negative log-likelihood of the teacher's ``labels`` under the student, and the
    share of labels left out: those the student's own rules forbid (in elastic mode,
    re-addressing a task already changed this slot, after the student drove it elsewhere), which
    would otherwise be learned at the masked log-probability (-1e9) and swamp the rest."""
    decision, _ = net.decide(obs, actions=labels)
    logp = log_prob(decision, torch.ones_like(decision.logp_alloc))
    allowed = logp > MASKED / 2
    loss = -(logp * allowed).sum() / allowed.sum().clamp(min=1)
    return loss, float(1.0 - allowed.float().mean())


def behaviour_cloning(
    net: Network,
    optimizer: torch.optim.Optimizer,
    envs: Sequence[EdgeClusterEnv],
    teachers: Sequence[Policy],
    cfg: TrainConfig,
    *,
    bayes: bool,
    device: torch.device,
    rng: np.random.Generator,
    next_seed: Callable[[], int],
    log: Callable[[str, float, int], None],
) -> int:
    """Run ``cfg.bc_steps`` imitation updates of ``net`` on ``envs`` (one teacher per env).

    Args:
        net: the student network (its actor is trained; the learning rate is ``cfg.bc_lr``
            during cloning and ``cfg.lr`` again after).
        optimizer: the student's optimizer.
        envs: the training envs.
        teachers: one policy per env, reset with the env's seed at every episode.
        cfg: the training section (``bc_steps``, ``bc_lr``, ``lr``, ``rollout_steps``,
            ``max_grad_norm``).
        bayes: apply the Bayes conflict rule when the student drives.
        device: where the network runs.
        rng: decides, per round group, whether the teacher or the student drives.
        next_seed: the seed of the next training episode (each call takes a new one).
        log: ``(tag, value, step)`` for TensorBoard.

    Returns:
        The env steps taken.
    """
    agents = envs[0].possible_agents
    n = len(agents)

    def reset(e: int) -> tuple[dict, dict]:
        seed = next_seed()
        teachers[e].reset(seed)
        return envs[e].reset(seed=seed)

    state = [reset(e) for e in range(len(envs))]
    rounds = max(1, cfg.rollout_steps // 4)
    env_steps = 0
    for group in optimizer.param_groups:
        group["lr"] = cfg.bc_lr
    for update in range(cfg.bc_steps):
        beta = max(0.0, 1.0 - update / max(1, cfg.bc_steps // 2))
        obs_batch, labels = [], []
        for _ in range(rounds):
            student = None
            if rng.random() >= beta:
                obs_list, facts = flatten_states(state, agents)
                student = act_batch(
                    net,
                    obs_list,
                    facts,
                    num_agents=n,
                    greedy=False,
                    bayes=bayes,
                    device=device,
                ).env_actions
            for e, (env, teacher) in enumerate(zip(envs, teachers)):
                obs, infos = state[e]
                taught = teacher.act(obs, infos)
                for a in agents:
                    obs_batch.append(obs[a])
                    labels.append(taught[a])
                acts = (
                    taught
                    if student is None
                    else {a: student[e * n + i] for i, a in enumerate(agents)}
                )
                obs, _, _, _, infos = env.step(acts)
                env_steps += 1
                state[e] = (obs, infos) if env.agents else reset(e)
        t = to_tensors(model_inputs(obs_batch), device)
        actions = torch.as_tensor(np.stack(labels), device=device)
        loss, left_out = imitation_loss(net, t, actions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
        optimizer.step()
        log("losses/bc_loss", float(loss.detach()), update)
        log("losses/bc_teacher_share", beta, update)
        log("losses/bc_labels_left_out", left_out, update)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr
    return env_steps
