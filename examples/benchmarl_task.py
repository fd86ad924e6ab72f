"""edge_cluster_v0 as a BenchMARL task, trained with BenchMARL's own MAPPO.

``EdgeClusterTask`` is a BenchMARL ``TaskClass``: it builds the flat variant through TorchRL's
``PettingZooWrapper`` (one group, ``cluster``; the flat ``action_mask`` is BenchMARL's action
mask, so no infeasible action is sampled; the env's global ``state()`` feeds the centralised
critic). Run:

    python examples/benchmarl_task.py --preset quickstart --frames 6000

BenchMARL 1.5 pins TorchRL < 0.12 (the ``marl`` extra installs that pair); the TorchRL example
works with it and with TorchRL 0.14.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable

from benchmarl.algorithms import MappoConfig
from benchmarl.environments.common import TaskClass
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.models.mlp import MlpConfig
from torchrl.data import Composite
from torchrl.envs import EnvBase
from torchrl.envs.libs.pettingzoo import PettingZooWrapper

from envs import edge_cluster_v0


class EdgeClusterTask(TaskClass):
    """One preset of edge_cluster_v0 (``config["preset"]``), flat action and observation."""

    def get_env_fun(
        self, num_envs: int, continuous_actions: bool, seed: int | None, device
    ) -> Callable[[], EnvBase]:
        preset = self.config.get("preset", "quickstart")
        return lambda: PettingZooWrapper(
            edge_cluster_v0.parallel_env(preset, action="flat", observation="flat"),
            use_mask=True,
            categorical_actions=True,
            return_state=True,
            seed=seed,
            device=device,
        )

    def supports_continuous_actions(self) -> bool:
        return False

    def supports_discrete_actions(self) -> bool:
        return True

    def has_render(self, env: EnvBase) -> bool:
        return False

    def max_steps(self, env: EnvBase) -> int:
        return int(self.config.get("max_steps", 100_000))

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return env.group_map

    def _only(self, env: EnvBase, keep: str) -> Composite | None:
        spec = env.observation_spec.clone()
        for group in self.group_map(env):
            for key in list(spec[group].keys()):
                if key != keep:
                    del spec[group][key]
            if spec[group].is_empty():
                del spec[group]
        if "state" in spec.keys():  # noqa: SIM118 - a Composite, not a dict
            del spec["state"]
        return None if spec.is_empty() else spec

    def observation_spec(self, env: EnvBase) -> Composite:
        return self._only(env, "observation")

    def action_mask_spec(self, env: EnvBase) -> Composite | None:
        return self._only(env, "action_mask")

    def info_spec(self, env: EnvBase) -> Composite | None:
        return self._only(env, "info")

    def state_spec(self, env: EnvBase) -> Composite | None:
        if "state" in env.observation_spec.keys():  # noqa: SIM118
            return Composite({"state": env.observation_spec["state"].clone()})
        return None

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec

    @staticmethod
    def env_name() -> str:
        return "edge_cluster_v0"


def build_experiment(preset: str, frames: int, seed: int, folder: str) -> Experiment:
    config = ExperimentConfig.get_from_yaml()
    config.max_n_frames = frames
    config.max_n_iters = None
    config.on_policy_collected_frames_per_batch = max(frames // 2, 1)
    config.on_policy_n_envs_per_worker = 1
    config.on_policy_n_minibatch_iters = 2
    config.on_policy_minibatch_size = max(frames // 8, 1)
    config.evaluation = False
    config.render = False
    config.loggers = ["csv"]
    config.create_json = False
    config.save_folder = folder
    config.checkpoint_at_end = False
    config.lr = 3e-4
    task = EdgeClusterTask("EDGE_CLUSTER", {"preset": preset})
    return Experiment(
        task=task,
        algorithm_config=MappoConfig.get_from_yaml(),
        model_config=MlpConfig.get_from_yaml(),
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=seed,
        config=config,
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--frames", type=int, default=6000, help="env steps in all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folder", default=None, help="BenchMARL's output folder (default: temp)")
    args = p.parse_args(argv)
    folder = args.folder or tempfile.mkdtemp(prefix="benchmarl_")
    experiment = build_experiment(args.preset, args.frames, args.seed, folder)
    experiment.run()
    out = {
        "frames": float(experiment.total_frames),
        "iterations": float(experiment.n_iters_performed),
    }
    frames, iterations = int(out["frames"]), int(out["iterations"])
    print(f"trained {frames} frames in {iterations} iterations; logs in {folder}")
    return out


if __name__ == "__main__":
    main()
