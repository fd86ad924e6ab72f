"""Policy interface and registry: everything that maps observations to actions (DESIGN §5.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from envs.errors import ConfigError


class Policy(Protocol):
    """A scheduler for all agents of one env: baselines and the learned policy alike."""

    name: str

    def reset(self, seed: int | None = None) -> None:
        """Forget per-episode state and reseed any randomness."""

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        """One action per agent in ``observations`` (MultiDiscrete vectors)."""


_REGISTRY: dict[str, Callable[..., Policy]] = {}
ORACLE_POLICIES: set[str] = set()


def register(name: str, *, oracle: bool = False) -> Callable[[type], type]:
    """Class decorator adding a policy to the registry under ``name``."""

    def deco(cls: type) -> type:
        _REGISTRY[name] = cls
        cls.name = name
        if oracle:
            ORACLE_POLICIES.add(name)
        return cls

    return deco


def policy_names() -> list[str]:
    """Registered policy names."""
    _load_builtin()
    return sorted(_REGISTRY)


def policy_class(name: str) -> Callable[..., Policy] | None:
    """The class registered as ``name`` (built-ins loaded first), or None."""
    _load_builtin()
    return _REGISTRY.get(name)


def make_policy(name: str, env: Any, **options: Any) -> Policy:
    """Instantiate the policy ``name`` for ``env`` (its spaces, dims and scenario)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown policy '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name](env, **options)


def _load_builtin() -> None:
    # Importing the modules registers every built-in policy (the learned one needs torch).
    import tapfinger.policies
    import tapfinger.policies.learned  # noqa: F401


def noop_action(env: Any) -> np.ndarray:
    """The all-no-op action vector of ``env``."""
    return np.zeros(3 * env.dims.max_starts, dtype=np.int64)
