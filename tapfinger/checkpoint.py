"""Checkpoints: the file format, building the network a checkpoint fits, atomic save and safe load.

A checkpoint is a ``torch.save`` dict with ``format == CHECKPOINT_FORMAT``: the model weights,
the resolved config, the shape signature of the scenario it was trained on, counters, and (in a
training run, not in an exported policy) the optimizer and RNG states. Loading uses
``torch.load(weights_only=True)`` and refuses, in one line, a missing or foreign file, a scenario
whose shapes differ, and weights that do not fit the network.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.errors import ConfigError
from tapfinger.config import ExperimentConfig, config_from_dict
from tapfinger.critic_features import CRITIC_FEATURES
from tapfinger.graph import node_feature_dims
from tapfinger.models.network import TapFingerNet
from tapfinger.models.per_agent import PerAgentNet

CHECKPOINT_FORMAT = "tapfinger-checkpoint/1"

Network = TapFingerNet | PerAgentNet


def build_network(env: EdgeClusterEnv, cfg: ExperimentConfig) -> Network:
    """The network for ``env``'s shapes: shared by all agents, or one per agent."""
    feat = node_feature_dims(env.observation_space(env.possible_agents[0]))
    cls = TapFingerNet if cfg.model.shared_actor else PerAgentNet
    state_size = env.state_space.shape[0]
    if cfg.model.critic_extras and cfg.model.critic == "central":
        state_size += len(CRITIC_FEATURES)
    return cls(env.dims, feat, state_size, cfg.model)


def shape_signature(env: EdgeClusterEnv) -> dict[str, Any]:
    """What a checkpoint must agree on with a scenario to be loadable."""
    return {
        "dims": asdict(env.dims),
        "feat": node_feature_dims(env.observation_space(env.possible_agents[0])),
        "state_size": int(env.state_space.shape[0]),
    }


def save_atomic(payload: dict, path: Path) -> None:
    """Write a checkpoint so that a kill never leaves a broken file at ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a TapFinger checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not a TapFinger checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def load_weights(net: torch.nn.Module, state: dict, path: str | Path) -> None:
    """Load a checkpoint's weights; one clear line when they do not fit ``net``.

    They do not fit when the run's model section changed (``--resume ... --set model.hidden=``)
    or the checkpoint was written by another version of the network.
    """
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[1:])
        if len(detail) > 300:
            detail = detail[:300] + " ..."
        raise ConfigError(
            f"{path}: the checkpoint's weights do not fit this network ({detail})"
        ) from None


def check_shapes(ckpt: dict, env: EdgeClusterEnv, path: str | Path) -> None:
    """Refuse a checkpoint whose shapes do not match the scenario's."""
    want = shape_signature(env)
    have = ckpt["shapes"]
    for key in ("dims", "feat", "state_size"):
        if have[key] != want[key]:
            hint = ""
            if key == "dims" and {**have[key], "elastic": want[key]["elastic"]} == want[key]:
                mode = "an elastic" if have[key]["elastic"] else "a non-elastic"
                hint = (
                    f"; it is {mode} training's: evaluate it with --elastic-checkpoint"
                    if have[key]["elastic"]
                    else f"; it is {mode} training's: evaluate it on a non-elastic scenario"
                )
            raise ConfigError(
                f"{path}: checkpoint does not match scenario '{env.scenario.name}' "
                f"({key}: checkpoint {have[key]}, scenario {want[key]}){hint}"
            )


def network_from_checkpoint(path: str | Path, env: EdgeClusterEnv) -> Network:
    """The trained network stored in ``path``, built for ``env`` (on the CPU)."""
    ckpt = load_checkpoint(path)
    check_shapes(ckpt, env, path)
    network = build_network(env, config_from_dict(ckpt["config"]))
    load_weights(network, ckpt["model"], path)
    return network
