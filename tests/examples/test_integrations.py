"""The examples under ``examples/`` run with the libraries' own parts, with a tiny budget, when
the ``marl`` extra is installed (``make test`` installs it); each library only ever samples
feasible actions."""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _library_warnings():
    """The libraries' own deprecation and version warnings are theirs, not the env's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_torchrl_wrapper_specs_and_masked_rollout():
    pytest.importorskip("torchrl")
    import torch
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    from envs import edge_cluster_v0

    env = PettingZooWrapper(
        edge_cluster_v0.parallel_env(
            "paper_synthetic", num_tasks=20, action="flat", observation="flat"
        ),
        use_mask=True,
        categorical_actions=True,
        seed=0,
    )
    check_env_specs(env)
    group = next(iter(env.group_map))
    assert group == "cluster" and len(env.group_map[group]) == 3
    # A random policy that samples from the action spec with its mask: never infeasible.
    td = env.rollout(60, break_when_any_done=False)
    invalid = td.get(("next", group, "info", "invalid_actions"))
    assert invalid.shape[0] == 60 and torch.all(invalid == 0)
    actions, masks = td.get((group, "action")), td.get((group, "action_mask"))
    assert torch.all(masks.gather(-1, actions.long().unsqueeze(-1)))


def test_torchrl_mappo_example_trains():
    pytest.importorskip("torchrl")
    report = load("torchrl_mappo").main(["--iterations", "2", "--frames", "120", "--epochs", "1"])
    assert report["iteration"] == 1 and math.isfinite(report["reward_per_step"])


@pytest.mark.parametrize("runners", [0, 1])
def test_rllib_ppo_example_trains_with_masking(runners):
    pytest.importorskip("ray.rllib")
    import ray
    import torch
    from ray import cloudpickle
    from ray.rllib.core.columns import Columns
    from ray.tune.registry import register_env

    example = load("rllib_ppo")
    cloudpickle.register_pickle_by_value(example)  # the env runners cannot import examples/
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_env(example.ENV_NAME, example.make_env)
        algo = example.build_config("quickstart", runners, 200, seed=0).build_algo()
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 200
        module = algo.get_module("shared")
        env = example.make_env({"preset": "quickstart"})
        obs, _ = env.reset(seed=1)
        batch = {
            Columns.OBS: {
                k: torch.as_tensor(np.stack([o[k] for o in obs.values()]))
                for k in ("observations", "action_mask")
            }
        }
        mask = batch[Columns.OBS]["action_mask"].bool()  # the module pops it from the batch
        logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
        draws = torch.distributions.Categorical(logits=logits).sample((200,))
        assert mask.sum() < mask.numel()  # something is masked out
        assert torch.all(mask.gather(-1, draws.T))
        algo.stop()
    finally:
        ray.shutdown()


def test_benchmarl_task_trains_with_mappo(tmp_path):
    pytest.importorskip("benchmarl")
    out = load("benchmarl_task").main(["--frames", "200", "--folder", str(tmp_path)])
    assert out["frames"] >= 200 and out["iterations"] == 2


def test_supersuit_wrappers_on_the_box_variant():
    ss = pytest.importorskip("supersuit")
    from envs import edge_cluster_v0

    env = edge_cluster_v0.parallel_env("quickstart", action="flat", observation="box")
    vec = ss.pettingzoo_env_to_vec_env_v1(ss.frame_stack_v1(env, 2))
    obs, infos = vec.reset(seed=0)
    features = env.flat.num_features
    assert obs.shape == (2, 2 * features)
    rng = np.random.default_rng(0)
    for _ in range(30):
        acts = np.array([rng.choice(np.flatnonzero(i["action_mask"])) for i in infos])
        obs, rewards, _, _, infos = vec.step(acts)
        assert obs.shape == (2, 2 * features) and rewards.shape == (2,)
        assert all(i["invalid_actions"] == 0 for i in infos)
