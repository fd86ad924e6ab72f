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


#: Facts a policy may read that only some information regimes tell every policy.
HIDDEN_FACTS = ("work", "speeds")


@dataclass(frozen=True)
class PolicyEntry:
    """What the registry knows of one policy."""

    name: str
    factory: Callable[..., Policy]
    reads: tuple[str, ...] = ()
    """Hidden facts it reads (``work``: true remaining work; ``speeds``: the true speed model):
    an oracle wherever the regime does not tell them to every policy."""
    learned: bool = False
    """A trained network rather than a rule."""
    needs_checkpoint: bool = False
    """Built from ``checkpoint=PATH``; ``--policies all`` leaves it out when none is given."""
    elastic: bool = False
    """Has an elastic variant (resizes or preempts in elastic mode), evaluated as
    ``NAME@elastic`` beside a non-elastic scenario."""

    @property
    def oracle(self) -> bool:
        """Reads a hidden fact (an oracle in the default regime)."""
        return bool(self.reads)

    def oracle_under(self, scenario: Any) -> bool:
        """Reads a fact that ``scenario``'s regime does not tell every policy."""
        told = {"work": scenario.work_known, "speeds": scenario.information == "profiled"}
        return any(not told[fact] for fact in self.reads)

    @property
    def baseline(self) -> bool:
        """A rule-based policy that reads only what every policy may read (default regime)."""
        return not (self.oracle or self.learned)


_REGISTRY: dict[str, PolicyEntry] = {}


def register(
    name: str,
    *,
    oracle: bool = False,
    reads: tuple[str, ...] = (),
    learned: bool = False,
    needs_checkpoint: bool = False,
    elastic: bool = False,
) -> Callable[[type], type]:
    """Class decorator adding a policy to the registry under ``name`` (and setting its name).

    ``oracle=True`` is short for ``reads=HIDDEN_FACTS`` (true work and speeds).
    """
    reads = tuple(HIDDEN_FACTS if oracle and not reads else reads)
    unknown = set(reads) - set(HIDDEN_FACTS)
    if unknown:
        raise ValueError(f"policy {name}: unknown hidden facts {sorted(unknown)}")

    def deco(cls: type) -> type:
        cls.name = name
        _REGISTRY[name] = PolicyEntry(name, cls, reads, learned, needs_checkpoint, elastic)
        return cls

    return deco


def policy_names() -> list[str]:
    """Registered policy names, sorted."""
    return sorted(_REGISTRY)


#: Suffix of a policy name that plays the policy's elastic variant (``optimus@elastic``).
ELASTIC_SUFFIX = "@elastic"


def split_variant(name: str) -> tuple[str, bool]:
    """``(registered name, elastic variant?)`` of a policy name."""
    if name.endswith(ELASTIC_SUFFIX):
        return name[: -len(ELASTIC_SUFFIX)], True
    return name, False


def policy_entry(name: str) -> PolicyEntry:
    """The registry's entry for ``name`` (or its elastic variant); one clear error when there
    is none."""
    base, elastic = split_variant(name)
    if base not in _REGISTRY:
        raise ConfigError(f"unknown policy '{name}' (known: {', '.join(policy_names())})")
    entry = _REGISTRY[base]
    if elastic and not entry.elastic:
        variants = ", ".join(n + ELASTIC_SUFFIX for n in policy_names() if _REGISTRY[n].elastic)
        raise ConfigError(f"policy '{base}' has no elastic variant (those with one: {variants})")
    return entry


def make_policy(name: str, env: Any, **options: Any) -> Policy:
    """Instantiate the policy ``name`` for ``env`` (its spaces, dims and scenario); an elastic
    variant needs an elastic env."""
    entry = policy_entry(name)
    if split_variant(name)[1] and not env.scenario.elastic:
        raise ConfigError(f"policy '{name}' needs an elastic env (scenario.elastic=true)")
    policy = entry.factory(env, **options)
    if name != entry.name:
        policy.name = name
    return policy
