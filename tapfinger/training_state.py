"""A training run's checkpoint: what it holds, and how a trainer saves, resumes or starts from one.

:class:`RunState` is mixed into :class:`tapfinger.training.Trainer`: the weights, the optimiser,
the resolved config, the scenario's shapes, the step counters (rollout workers' episode counts
included), the best held-out JCT, the value statistics and the RNG states, written atomically
(:mod:`tapfinger.checkpoint`); ``_load`` resumes all of it, ``_init_from`` starts a fresh run
from another checkpoint's weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from envs.errors import ConfigError
from tapfinger.checkpoint import (
    CHECKPOINT_FORMAT,
    check_shapes,
    load_checkpoint,
    load_weights,
    save_atomic,
    shape_signature,
)
from tapfinger.config import config_to_dict


class RunState:
    """Checkpoint methods of a trainer (its attributes are set by ``Trainer.__init__``)."""

    def _payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": config_to_dict(self.cfg),
            "shapes": shape_signature(self.envs[0]),
            "counters": {
                "global_step": self.global_step,
                "iteration": self.iteration,
                "episodes": self.episodes,
                "bc_env_steps": self.bc_env_steps,
                "next_seed": self.next_seed,
                "env_episodes": list(self.env_episodes),
                "best_step": self.best_step,
                "wall_s": self.wall_offset + (time.perf_counter() - self._t0),
            },
            "best_jct": self.best_jct,
            "value_norm": self.norm.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state},
        }

    def save(self, name: str) -> Path:
        path = self.ckpt_dir / name
        save_atomic(self._payload(), path)
        return path

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        check_shapes(ckpt, self.envs[0], path)
        if "optimizer" not in ckpt:
            raise ConfigError(f"{path}: an exported policy (no optimizer state); cannot resume")
        load_weights(self.net, ckpt["model"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        c = ckpt["counters"]
        self.global_step, self.iteration = int(c["global_step"]), int(c["iteration"])
        self.episodes, self.next_seed = int(c["episodes"]), int(c["next_seed"])
        self.bc_env_steps = int(c["bc_env_steps"])
        self.env_episodes = [int(v) for v in c.get("env_episodes", self.env_episodes)]
        self.best_step, self.wall_offset = int(c["best_step"]), float(c["wall_s"])
        self.best_jct = float(ckpt["best_jct"])
        self.norm.load_state_dict(ckpt["value_norm"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.rng.bit_generator.state = ckpt["rng"]["numpy"]

    def _init_from(self, path: Path) -> None:
        """Fresh run, but starting from another checkpoint's weights (and value statistics)."""
        ckpt = load_checkpoint(path)
        check_shapes(ckpt, self.envs[0], path)
        state = ckpt["model"]
        own = self.net.state_dict()
        critic = [k for k in own if k.startswith("critic.")]
        if any(k not in state or state[k].shape != own[k].shape for k in critic):
            # A critic of another input (model.critic_extras changed): the actor's weights are
            # taken, the critic starts fresh (critic_warmup fits it before the actor moves).
            state = {
                **{k: v for k, v in state.items() if not k.startswith("critic.")},
                **{k: own[k] for k in critic},
            }
        else:
            if "value_norm" in ckpt:
                self.norm.load_state_dict(ckpt["value_norm"])
        load_weights(self.net, state, path)
