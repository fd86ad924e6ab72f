"""`tapfinger`: the learned policy (graph attention actor + Bayes conflict rule) in the registry.

Loads a checkpoint written by ``train.py`` (``torch.load(weights_only=True)``), refuses one whose
shapes do not match the env's scenario, and acts greedily unless ``sample=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from envs.errors import ConfigError
from tapfinger.config import ExperimentConfig, config_from_dict
from tapfinger.policies.registry import register


@register("tapfinger", learned=True, needs_checkpoint=True)
class TapFingerPolicy:
    """Decides for all agents of one env in one batched forward pass."""

    name = "tapfinger"

    def __init__(
        self,
        env: Any,
        checkpoint: str | None = None,
        network: Any = None,
        sample: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        from tapfinger.training import (
            build_network,
            check_shapes,
            load_checkpoint,
            load_weights,
        )

        self.env = env
        self.device = torch.device(device)
        self.sample = sample
        if network is None:
            if checkpoint is None:
                raise ConfigError("policy 'tapfinger' needs --checkpoint PATH")
            ckpt = load_checkpoint(checkpoint)
            check_shapes(ckpt, env, checkpoint)
            cfg: ExperimentConfig = config_from_dict(ckpt["config"])
            network = build_network(env, cfg)
            load_weights(network, ckpt["model"], checkpoint)
            network.to(self.device)
        self.net = network
        self.bayes = self.net.cfg.bayes

    def reset(self, seed: int | None = None) -> None:
        if self.sample:
            torch.manual_seed(0 if seed is None else seed)

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        from tapfinger.training import act_batch

        agents = list(observations)
        if infos is None:
            raise ConfigError("policy 'tapfinger' needs the env's infos (task_index)")
        was_training = self.net.training
        self.net.eval()
        out = act_batch(
            self.net,
            [observations[a] for a in agents],
            [infos[a] for a in agents],
            len(agents),
            greedy=not self.sample,
            bayes=self.bayes,
            device=self.device,
        )
        self.net.train(was_training)
        return {a: out["env_actions"][i] for i, a in enumerate(agents)}
