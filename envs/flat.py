"""The flat variant of the environment, for stock MARL libraries (README "Use it from your MARL
library"): one ``Discrete`` action over (task, cpu, gpu) with its exact joint mask, and a flat
``Box`` of normalised features.

- Action ``k`` is ``(task, cpu, gpu) = np.unravel_index(k, (A, C, G))``; ``0`` is the no-op. The
  joint mask allows exactly the triples the env would carry out: ``task_mask[t] and
  cpu_mask[t, c] and gpu_mask[t, g]`` (the start rule is one bound per kind, so the product is
  exact), except that an elastic pause (``cpu == 0`` on a running task) is one action, at the
  task's lowest allowed GPU level. Every allowed action is feasible; every feasible change is
  allowed (tests check both ways).
- The flat features are the structured observation's parts in a fixed order, each in [0, 1]:
  the cluster table, the window and its masks and visibility, the running set and its mask,
  the agent one-hot, the free resources and every action row's demand as shares of the agent's
  own capacity, and the task mask. They carry the same facts, so every regime's
  non-interference holds for them too.

Only single-task mode has a flat action (a multi-task sequence is a product of such triples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.errors import ConfigError
from envs.observation import Dims

ACTIONS = ("structured", "flat")
OBSERVATIONS = ("structured", "flat", "box")

#: Structured observation parts flattened, in order (``free`` and ``demand`` are scaled).
FLAT_PARTS = (
    "clusters",
    "pending",
    "pending_mask",
    "pending_visible",
    "running",
    "running_mask",
    "agent",
    "free",
    "demand",
    "task_mask",
)


@dataclass(frozen=True)
class FlatLayout:
    """Sizes of the flat action and observation for one scenario's shapes."""

    dims: Dims
    part_sizes: tuple[int, ...]

    @property
    def action_shape(self) -> tuple[int, int, int]:
        d = self.dims
        return d.actions, d.cpu_levels, d.gpu_levels

    @property
    def num_actions(self) -> int:
        a, c, g = self.action_shape
        return a * c * g

    @property
    def num_features(self) -> int:
        return sum(self.part_sizes)


def flat_layout(dims: Dims, structured: spaces.Dict) -> FlatLayout:
    """The flat sizes for ``dims`` and the structured observation space they flatten."""
    sizes = tuple(int(np.prod(structured[k].shape)) for k in FLAT_PARTS)
    return FlatLayout(dims, sizes)


def check_interface(action: str, observation: str, dims: Dims) -> None:
    """One clear error for an unknown choice, or a flat action the mode cannot have."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown action form '{action}' (choose from {', '.join(ACTIONS)})")
    if observation not in OBSERVATIONS:
        raise ConfigError(
            f"unknown observation form '{observation}' (choose from {', '.join(OBSERVATIONS)})"
        )
    if action == "flat" and dims.max_starts != 1:
        raise ConfigError(
            "action='flat' needs single-task mode (mode: single); a multi-task sequence is "
            f"{dims.max_starts} starts, use action='structured'"
        )


def flat_action_space(layout: FlatLayout) -> spaces.Discrete:
    return spaces.Discrete(layout.num_actions)


def flat_observation_space(
    layout: FlatLayout, action: str, observation: str, key: str = "observation"
) -> spaces.Space:
    """``observation='flat'`` with the flat action: ``{key: Box, "action_mask": int8 [A * C *
    G]}`` (PettingZoo's form with the default ``key``; RLlib's masking module reads
    ``"observations"``); otherwise the Box alone (with the flat action its mask is then
    ``infos[agent]["action_mask"]``)."""
    box = spaces.Box(0.0, 1.0, shape=(layout.num_features,), dtype=np.float32)
    if observation == "flat" and action == "flat":
        mask = spaces.Box(0, 1, shape=(layout.num_actions,), dtype=np.int8)
        return spaces.Dict({key: box, "action_mask": mask})
    return box


def joint_mask(obs: dict, elastic_from: int | None = None) -> np.ndarray:
    """int8 [A * C * G]: the exact mask of the flat action for one structured observation.

    ``elastic_from``: the first task index that addresses a running task (elastic mode), whose
    ``cpu == 0`` column is a pause; ``None`` without elastic mode.
    """
    task = obs["task_mask"].astype(bool)
    cpu = obs["cpu_mask"].astype(bool)
    gpu = obs["gpu_mask"].astype(bool)
    joint = task[:, None, None] & cpu[:, :, None] & gpu[:, None, :]
    if elastic_from is not None and joint.shape[0] > elastic_from:
        rows = joint[elastic_from:, 0, :]  # a pause: one action, at the lowest allowed level
        keep = np.zeros_like(rows)
        first = rows.argmax(axis=1)
        has = rows.any(axis=1)
        keep[np.flatnonzero(has), first[has]] = True
        joint[elastic_from:, 0, :] = keep
    return joint.reshape(-1).astype(np.int8)


def flat_features(obs: dict, capacity: np.ndarray) -> np.ndarray:
    """float32 [F]: the structured observation's parts as one vector in [0, 1]."""
    scale = np.maximum(capacity, 1).astype(np.float32)
    parts = []
    for key in FLAT_PARTS:
        value = obs[key]
        if key == "free":
            value = value / scale
        elif key == "demand":
            value = value / scale[None, :]
        parts.append(np.asarray(value, dtype=np.float32).reshape(-1))
    return np.clip(np.concatenate(parts), 0.0, 1.0)


def decode(action: int, layout: FlatLayout) -> np.ndarray:
    """The structured (task, cpu, gpu) triple of flat action ``action``."""
    if not 0 <= int(action) < layout.num_actions:
        raise ValueError(f"flat action must be in [0, {layout.num_actions}), got {action}")
    return np.asarray(np.unravel_index(int(action), layout.action_shape), dtype=np.int64)


def encode(task: int, cpu: int, gpu: int, layout: FlatLayout) -> int:
    """The flat action of a structured (task, cpu, gpu) triple."""
    return int(np.ravel_multi_index((task, cpu, gpu), layout.action_shape))


def present_flat(observations: dict, infos: dict, env: Any) -> dict:
    """Every agent's structured observation in ``env``'s flat form (``env.observation_form``,
    ``env.action_form``, ``env.observation_key``); with the Box and the flat action the mask
    goes to ``infos``."""
    out = {}
    elastic_from = 1 + env.dims.window if env.dims.elastic else None
    for c, (agent, obs) in enumerate(observations.items()):
        box = flat_features(obs, env.capacity[c])
        if env.action_form != "flat":
            out[agent] = box
            continue
        mask = joint_mask(obs, elastic_from)
        if env.observation_form == "flat":
            out[agent] = {env.observation_key: box, "action_mask": mask}
        else:
            out[agent] = box
            infos[agent]["action_mask"] = mask
    return out
