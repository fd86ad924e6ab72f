"""PPO with action masking from RLlib (new API stack) on the flat variant of edge_cluster_v0.

The env is RLlib's own ``ParallelPettingZooEnv`` around ``parallel_env(..., action="flat",
observation="flat", observation_key="observations")``: the flat Dict is exactly what RLlib's
``ActionMaskingTorchRLModule`` reads (``"observations"`` and ``"action_mask"``), so an
infeasible action is never sampled. All clusters share one policy. Run:

    python examples/rllib_ppo.py --preset quickstart --iterations 5 --env-runners 1

It prints, per iteration, the mean episode return (minus the sum of JCTs, in slots, with the
team reward) over the episodes that finished.
"""

from __future__ import annotations

import argparse
import math

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
from ray.tune.registry import register_env

from envs import edge_cluster_v0

ENV_NAME = "edge_cluster_v0_flat"


def make_env(config: dict) -> ParallelPettingZooEnv:
    return ParallelPettingZooEnv(
        edge_cluster_v0.parallel_env(
            config.get("preset", "quickstart"),
            action="flat",
            observation="flat",
            observation_key="observations",
        )
    )


def build_config(preset: str, env_runners: int, batch: int, seed: int) -> PPOConfig:
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config={"preset": preset})
        .env_runners(num_env_runners=env_runners, rollout_fragment_length="auto")
        .multi_agent(
            policies={"shared"},
            policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared",
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    "shared": RLModuleSpec(
                        module_class=ActionMaskingTorchRLModule,
                        model_config={"head_fcnet_hiddens": [128, 128]},
                    )
                }
            )
        )
        .training(
            train_batch_size_per_learner=batch,
            minibatch_size=max(batch // 4, 1),
            num_epochs=4,
            lr=3e-4,
        )
        .debugging(seed=seed)
    )


def main(argv: list[str] | None = None) -> list[float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--env-runners", type=int, default=0, help="0: sample in the driver")
    p.add_argument("--batch", type=int, default=2000, help="agent steps per iteration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--address", default=None, help="a Ray cluster (default: a local Ray)")
    args = p.parse_args(argv)

    started = not ray.is_initialized()
    if started:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    register_env(ENV_NAME, make_env)
    algo = build_config(args.preset, args.env_runners, args.batch, args.seed).build_algo()
    returns = []
    try:
        for i in range(args.iterations):
            result = algo.train()
            value = result.get("env_runners", {}).get("episode_return_mean", math.nan)
            returns.append(float(value))
            print(f"iteration {i}: mean episode return {value:.1f}")
    finally:
        algo.stop()
        if started:
            ray.shutdown()
    return returns


if __name__ == "__main__":
    main()
