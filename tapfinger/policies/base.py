"""The rule-based baselines' base class: every round, a snapshot, a plan, the plan's actions.

Builds on :mod:`.snapshot` and :mod:`.plan`. A baseline subclasses :class:`BaselinePolicy`,
registers itself with :func:`~tapfinger.policies.registry.register` (which sets its ``name``),
and implements :meth:`BaselinePolicy.plan`; :mod:`.fifo` is the shortest example. The oracle
speed model (``infos[agent]["oracle_speed_model"]``) is read by
:meth:`BaselinePolicy.oracle_speed`, which only oracle policies call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.errors import ConfigError
from tapfinger.policies.plan import Plan
from tapfinger.policies.snapshot import Snapshot, build_snapshot


class BaselinePolicy:
    """Common life cycle of the rule-based baselines: snapshot, plan, actions.

    Subclasses implement :meth:`plan` (and may learn in :meth:`observe`). Elastic variants
    decide target allocations once per slot, keep them in a :class:`~.plan.SlotTargets` and plan
    with :func:`~.plan.plan_towards`.
    """

    name: str
    """Set by the registry's ``@register(name)`` on each baseline."""

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self.dims = env.dims
        self.elastic = bool(env.scenario.elastic)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.memory: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def reset(self, seed: int | None = None) -> None:
        """Forget the episode and reseed (``seed=None`` keeps the constructor's seed)."""
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
        self.memory = {}

    def act(
        self, observations: dict[str, dict], infos: dict[str, dict] | None = None
    ) -> dict[str, np.ndarray]:
        """One masked-valid action per agent in ``observations``."""
        if not observations:
            return {}
        snap = build_snapshot(self.env, observations, infos, self.memory)
        self.observe(snap)
        plan = self.plan(snap, observations)
        return plan.actions(self.env, observations)

    def observe(self, snap: Snapshot) -> None:
        """Hook: learn from the snapshot before planning (speed models, attained service)."""

    def plan(self, snap: Snapshot, observations: dict[str, dict]) -> Plan:
        raise NotImplementedError

    def oracle_speed(self, infos: dict[str, dict]) -> Any:
        """Oracle: the env's speed model (``infos[agent]["oracle_speed_model"]``)."""
        return next(iter(infos.values()))["oracle_speed_model"]


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Validate a string option of a policy, naming it in the error."""
    if value not in allowed:
        raise ConfigError(f"policy option {name}={value!r}: expected one of {', '.join(allowed)}")
    return value
