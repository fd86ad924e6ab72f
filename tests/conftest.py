"""Shared test helpers: tiny scenarios and scripted policies."""

from __future__ import annotations

import numpy as np
import pytest

from envs.observation import conditional_sample


def random_actions(env, obs: dict, rng: np.random.Generator) -> dict:
    """A uniformly random valid action per live agent (task first, then its amounts)."""
    actions = {}
    for agent in env.agents:
        a = np.zeros(3 * env.dims.max_starts, dtype=np.int64)
        a[:3] = conditional_sample(obs[agent], rng)
        actions[agent] = a
    return actions


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
