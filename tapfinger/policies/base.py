"""The rule-based baselines' base class: every round, a snapshot, a plan, the plan's actions.

Builds on :mod:`.snapshot` and :mod:`.plan`. A baseline subclasses :class:`BaselinePolicy`,
registers itself with :func:`~tapfinger.policies.registry.register` (which sets its ``name``),
and implements :meth:`BaselinePolicy.plan`; :mod:`.fifo` is the shortest example. The true
speed model is read by :meth:`BaselinePolicy.told_speed` (``infos["speed_model"]`` under the
``profiled`` regime, for every policy) and :meth:`BaselinePolicy.oracle_speed` (that, or the
oracle key ``oracle_speed_model``), which only oracle policies call.

History across episodes: a baseline that learns from what it measures names the attributes it
keeps in ``history``. An episode starts from the warm state set by :meth:`set_warm_state` (the
state after training-range episodes, the same for every test episode, so results stay paired
and independent of episode order and workers), or from a fresh one (``fresh_history``).
"""

from __future__ import annotations

import copy
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
    history: tuple[str, ...] = ()
    """Attributes learned from measurements that a warm state carries across episodes."""

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self.dims = env.dims
        self.elastic = bool(env.scenario.elastic)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.memory: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.warm: dict[str, Any] | None = None
        self.fresh_history()

    def reset(self, seed: int | None = None) -> None:
        """Forget the episode and reseed (``seed=None`` keeps the constructor's seed); the
        history restarts from the warm state (a fresh one without)."""
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
        self.memory = {}
        if self.warm is None:
            self.fresh_history()
        else:
            for key, value in copy.deepcopy(self.warm).items():
                setattr(self, key, value)

    def fresh_history(self) -> None:
        """Hook: set the ``history`` attributes to what is known before any measurement."""

    def history_state(self) -> dict[str, Any]:
        """A copy of what was learned so far (the ``history`` attributes)."""
        return copy.deepcopy({key: getattr(self, key) for key in self.history})

    def set_warm_state(self, state: dict[str, Any] | None) -> None:
        """Start every later episode from ``state`` (None: from a fresh history)."""
        if state is not None and set(state) != set(self.history):
            raise ValueError(f"warm state of {sorted(state)} for a history of {self.history}")
        self.warm = copy.deepcopy(state)

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

    def told_speed(self, infos: dict[str, dict] | None) -> Any:
        """The true speed model when the regime tells every policy (``profiled``), else None."""
        return next(iter(infos.values())).get("speed_model") if infos else None

    def oracle_speed(self, infos: dict[str, dict]) -> Any:
        """Oracle: the true speed model (told, or the oracle key ``oracle_speed_model``)."""
        info = next(iter(infos.values()))
        speed = info.get("speed_model", info.get("oracle_speed_model"))
        if speed is None:
            raise ConfigError(
                f"policy '{self.name}' reads the true speed model: it needs "
                "scenario.information=profiled or scenario.oracle_infos=true"
            )
        return speed


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Validate a string option of a policy, naming it in the error."""
    if value not in allowed:
        raise ConfigError(f"policy option {name}={value!r}: expected one of {', '.join(allowed)}")
    return value
