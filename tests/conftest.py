"""Shared test helpers."""

from __future__ import annotations

import numpy as np
import pytest

from envs.observation import random_actions

__all__ = ["random_actions"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
