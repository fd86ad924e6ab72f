"""MAPPO from TorchRL's own parts on the flat variant of edge_cluster_v0 (no glue code).

The env is wrapped by ``PettingZooWrapper(use_mask=True)``: the agents form one group
(``cluster``), the flat ``action_mask`` becomes ``("cluster", "action_mask")`` and feeds a
``MaskedCategorical``, so an infeasible action is never sampled. The actor shares parameters
across agents; the critic is centralised (MAPPO). Run:

    python examples/torchrl_mappo.py --preset quickstart --iterations 10

It prints, per iteration, the mean reward per agent-step and the mean return of the episodes
that finished (minus the sum of JCTs, in slots, with the team reward).
"""

from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictModule
from torch import nn

try:  # TorchRL >= 0.11 names it Collector (SyncDataCollector is gone in 0.13)
    from torchrl.collectors import Collector
except ImportError:  # pragma: no cover - older TorchRL
    from torchrl.collectors import SyncDataCollector as Collector
from torchrl.data.replay_buffers import ReplayBuffer
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.data.replay_buffers.storages import LazyTensorStorage
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.pettingzoo import PettingZooWrapper
from torchrl.envs.utils import check_env_specs
from torchrl.modules import MaskedCategorical, MultiAgentMLP, ProbabilisticActor
from torchrl.objectives import ClipPPOLoss, ValueEstimators

from envs import edge_cluster_v0


def make_env(preset: str, seed: int) -> TransformedEnv:
    base = edge_cluster_v0.parallel_env(preset, action="flat", observation="flat")
    env = PettingZooWrapper(base, use_mask=True, categorical_actions=True, seed=seed)
    group = next(iter(env.group_map))
    return TransformedEnv(
        env, RewardSum(in_keys=[(group, "reward")], out_keys=[(group, "episode_reward")])
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--frames", type=int, default=1000, help="env steps per iteration")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)

    env = make_env(args.preset, args.seed)
    check_env_specs(env)
    group = next(iter(env.group_map))
    n_agents = len(env.group_map[group])
    obs_key = (group, "observation", "observation")
    n_obs = env.observation_spec[obs_key].shape[-1]
    n_act = env.full_action_spec[group, "action"].space.n

    actor_net = MultiAgentMLP(
        n_agent_inputs=n_obs,
        n_agent_outputs=n_act,
        n_agents=n_agents,
        centralised=False,
        share_params=True,
        depth=2,
        num_cells=128,
        activation_class=nn.Tanh,
    )
    policy = ProbabilisticActor(
        TensorDictModule(actor_net, in_keys=[obs_key], out_keys=[(group, "logits")]),
        in_keys={"logits": (group, "logits"), "mask": (group, "action_mask")},
        out_keys=[(group, "action")],
        distribution_class=MaskedCategorical,
        return_log_prob=True,
        log_prob_key=(group, "sample_log_prob"),
    )
    critic_net = MultiAgentMLP(
        n_agent_inputs=n_obs,
        n_agent_outputs=1,
        n_agents=n_agents,
        centralised=True,  # MAPPO: every agent's critic sees every agent's observation
        share_params=True,
        depth=2,
        num_cells=128,
        activation_class=nn.Tanh,
    )
    critic = TensorDictModule(critic_net, in_keys=[obs_key], out_keys=[(group, "state_value")])

    collector = Collector(
        env,
        policy,
        frames_per_batch=args.frames,
        total_frames=args.frames * args.iterations,
    )
    buffer = ReplayBuffer(
        storage=LazyTensorStorage(args.frames),
        sampler=SamplerWithoutReplacement(),
        batch_size=max(args.frames // 4, 1),
    )
    loss = ClipPPOLoss(
        actor_network=policy,
        critic_network=critic,
        clip_epsilon=0.2,
        entropy_coeff=0.01,
        normalize_advantage=False,
    )
    loss.set_keys(
        reward=(group, "reward"),
        action=(group, "action"),
        sample_log_prob=(group, "sample_log_prob"),
        value=(group, "state_value"),
        done=(group, "done"),
        terminated=(group, "terminated"),
    )
    loss.make_value_estimator(ValueEstimators.GAE, gamma=0.99, lmbda=0.95)
    optim = torch.optim.Adam(loss.parameters(), lr=3e-4)

    report: dict[str, float] = {}
    for i, batch in enumerate(collector):
        # The group's done flags, expanded to the reward's shape, as the GAE needs them.
        for key in ("done", "terminated"):
            flag = batch.get(("next", key))
            batch.set(
                ("next", group, key),
                flag.unsqueeze(-1).expand(batch["next", group, "reward"].shape),
            )
        with torch.no_grad():
            loss.value_estimator(
                batch,
                params=loss.critic_network_params,
                target_params=loss.target_critic_network_params,
            )
        buffer.extend(batch.reshape(-1))
        for _ in range(args.epochs):
            for _ in range(max(args.frames // buffer._batch_size, 1)):
                parts = loss(buffer.sample())
                total = parts["loss_objective"] + parts["loss_critic"] + parts["loss_entropy"]
                optim.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optim.step()
        collector.update_policy_weights_()
        done = batch.get(("next", group, "done")).any(-2).squeeze(-1)
        returns = batch.get(("next", group, "episode_reward"))[done]
        report = {
            "iteration": i,
            "reward_per_step": float(batch.get(("next", group, "reward")).mean()),
            "episodes": int(done.sum()),
            "mean_return": float(returns.mean()) if returns.numel() else float("nan"),
        }
        print(
            f"iteration {i}: reward/step {report['reward_per_step']:.3f}, "
            f"{report['episodes']} episodes, mean return {report['mean_return']:.1f}"
        )
    collector.shutdown()
    return report


if __name__ == "__main__":
    main()
