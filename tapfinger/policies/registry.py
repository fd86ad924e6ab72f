"""Policy interface and registry: everything that maps observations to actions (DESIGN §5.1).

The registry records, for each name, the class and what evaluation must know about it: whether
it is an oracle (reads privileged ``infos``), learned, and whether it needs a checkpoint. Importing
:mod:`tapfinger.policies` (which any import of this module does first) registers every built-in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PolicyEntry:
    """What the registry knows of one policy."""

    name: str
    factory: Callable[..., Policy]
    oracle: bool = False
    """Reads privileged ``infos`` keys (DESIGN §3); reported apart from the baselines."""
    learned: bool = False
    """A trained network rather than a rule."""
    needs_checkpoint: bool = False
    """Built from ``checkpoint=PATH``; ``--policies all`` leaves it out when none is given."""

    @property
    def baseline(self) -> bool:
        """A rule-based policy that reads only what every policy may read."""
        return not (self.oracle or self.learned)


_REGISTRY: dict[str, PolicyEntry] = {}


def register(
    name: str, *, oracle: bool = False, learned: bool = False, needs_checkpoint: bool = False
) -> Callable[[type], type]:
    """Class decorator adding a policy to the registry under ``name`` (and setting its name)."""

    def deco(cls: type) -> type:
        cls.name = name
        _REGISTRY[name] = PolicyEntry(name, cls, oracle, learned, needs_checkpoint)
        return cls

    return deco


def policy_names() -> list[str]:
    """Registered policy names, sorted."""
    return sorted(_REGISTRY)


def policy_entry(name: str) -> PolicyEntry:
    """The registry's entry for ``name``; one clear error when there is none."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown policy '{name}' (known: {', '.join(policy_names())})")
    return _REGISTRY[name]


def make_policy(name: str, env: Any, **options: Any) -> Policy:
    """Instantiate the policy ``name`` for ``env`` (its spaces, dims and scenario)."""
    return policy_entry(name).factory(env, **options)
