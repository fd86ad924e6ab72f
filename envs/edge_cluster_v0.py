"""edge_cluster_v0: the PettingZoo environment of distributed edge clusters.

One agent per cluster (``cluster_0..cluster_{N-1}``). A step is one round of simultaneous
decisions; rewards arrive when slots end (``infos[agent]["slots_elapsed"]`` says how many).
``parallel_env()`` is the parallel API, ``env()`` the AEC one (PettingZoo's convention). See
the env card in the README for spaces, rewards, options and ``infos`` keys; the flat variant
for stock libraries is :mod:`envs.flat`.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import parallel_to_aec, wrappers

from envs.errors import ConfigError
from envs.flat import (
    check_interface,
    decode,
    flat_action_space,
    flat_layout,
    flat_observation_space,
    present_flat,
)
from envs.metrics import EpisodeMetrics, status_text
from envs.observation import (
    Dims,
    Exposure,
    action_space,
    dims_for,
    exposure_for,
    observation_space,
    state_size,
)
from envs.observation_builder import ObservationBuilder
from envs.scenario import ScenarioConfig, load_scenario
from envs.simulator import Op, RoundOutcome, Simulator, Status
from envs.speed_models import SpeedModel, build_speed_model
from envs.trace import Trace, generate_trace, load_trace
from envs.typed_config import from_dict, to_dict

INFO_LEVELS = ("numeric", "full")
RENDER_MODES = ("ansi", "human")

#: ``infos`` keys at the ``numeric`` level: one integer each, in every step.
NUMERIC_INFOS = ("slot", "round", "slots_elapsed", "conflicts_lost", "invalid_actions", "started")


def parallel_env(
    scenario: str | Path | ScenarioConfig | dict | None = "paper_synthetic",
    *,
    render_mode: str | None = None,
    action: str = "structured",
    observation: str = "structured",
    observation_key: str = "observation",
    infos: str = "numeric",
    **overrides: Any,
) -> EdgeClusterEnv:
    """Build the parallel environment from a preset name, a YAML path, a mapping or a
    ScenarioConfig.

    Args:
        scenario: what to build; keyword ``overrides`` replace scenario fields, e.g.
            ``parallel_env("quickstart", reward="team")``.
        render_mode: ``"ansi"`` (``render()`` returns a text table) or ``"human"`` (prints it).
        action: ``"structured"`` (MultiDiscrete (task, cpu, gpu) per start) or ``"flat"``
            (one ``Discrete`` over the triples, exact joint mask; single-task mode).
        observation: ``"structured"`` (the Dict the project's networks read), ``"flat"`` (a
            Box of normalised features, with the flat action as ``{"observation",
            "action_mask"}``) or ``"box"`` (the Box alone; the flat mask goes to ``infos``).
        observation_key: the Box's key in the flat Dict (RLlib's masking module reads
            ``"observations"``).
        infos: ``"numeric"`` (a fixed set of integers per step, what stock libraries can
            batch) or ``"full"`` (also the per-action facts, finished tasks, the episode summary
            and, where the regime tells them, speed-model objects and oracle keys: what the
            baselines read).
    """
    cfg = load_scenario(scenario)
    if overrides:
        known = set(ScenarioConfig.__dataclass_fields__)
        bad = sorted(set(overrides) - known)
        if bad:
            raise ConfigError(f"unknown scenario key '{bad[0]}'")
        data = to_dict(replace(cfg))
        data.update(overrides)
        cfg = from_dict(ScenarioConfig, data, "scenario")
    return EdgeClusterEnv(
        cfg,
        render_mode=render_mode,
        action=action,
        observation=observation,
        observation_key=observation_key,
        infos=infos,
    )


def raw_env(*args: Any, **kwargs: Any) -> AECEnv:
    """The AEC version of :func:`parallel_env` (agents act in turn within a round), unwrapped."""
    return parallel_to_aec(parallel_env(*args, **kwargs))


def env(*args: Any, **kwargs: Any) -> AECEnv:
    """The AEC version of :func:`parallel_env`, with PettingZoo's order-enforcing wrapper."""
    return wrappers.OrderEnforcingWrapper(raw_env(*args, **kwargs))


class EdgeClusterEnv(EpisodeMetrics, ParallelEnv):
    """Distributed edge clusters scheduling ML tasks; see the module docstring."""

    metadata = {
        "name": "edge_cluster_v0",
        "render_modes": list(RENDER_MODES),
        "is_parallelizable": True,
    }

    def __init__(
        self,
        scenario: ScenarioConfig,
        trace: Trace | None = None,
        *,
        render_mode: str | None = None,
        action: str = "structured",
        observation: str = "structured",
        observation_key: str = "observation",
        infos: str = "full",
    ) -> None:
        """The project's own code builds this class directly (full ``infos``); users build it
        through :func:`parallel_env` / :func:`env`, whose arguments are documented there."""
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ConfigError(f"unknown render_mode '{render_mode}' (choose from ansi, human)")
        if infos not in INFO_LEVELS:
            raise ConfigError(f"unknown infos level '{infos}' (choose from numeric, full)")
        self.render_mode = render_mode
        self.scenario = scenario
        self.capacity = np.array([[c.cpu, c.gpu, c.mem] for c in scenario.clusters], np.int64)
        self.possible_agents = [f"cluster_{i}" for i in range(scenario.num_clusters)]
        self.agents: list[str] = []
        self._fixed_trace = trace
        if trace is None and scenario.trace is not None:
            self._fixed_trace = load_trace(
                scenario.trace,
                num_clusters=scenario.num_clusters,
                type_names=None
                if scenario.speed_model == "trace"
                else [t.name for t in scenario.task_types],
            )
        if self._fixed_trace is not None:
            self._fixed_trace.check_fits(scenario, str(scenario.trace or "trace"))
            self._window(self._fixed_trace, np.random.default_rng(0))  # a bad window fails now
            type_names = self._fixed_trace.type_names
            sizing = self._fixed_trace
        else:
            type_names = [t.name for t in scenario.task_types]
            sizing = generate_trace(scenario, np.random.default_rng(0))
        self.dims: Dims = dims_for(scenario, sizing, type_names)
        self.speed: SpeedModel = build_speed_model(
            scenario, type_names, self.dims.cpu_levels, self.dims.gpu_levels
        )
        self.exposure: Exposure = exposure_for(scenario)
        self.builder = ObservationBuilder(self.dims, self.capacity, self.speed, self.exposure)
        self._told = {"speed_model": self.speed} if self.exposure.speeds else {}
        if self.exposure.oracle:
            self._told["oracle_speed_model"] = self.speed
        check_interface(action, observation, self.dims)
        self.action_form, self.observation_form, self.info_level = action, observation, infos
        self.observation_key = observation_key
        self.structured_space = observation_space(self.dims, self.capacity)
        self.flat = flat_layout(self.dims, self.structured_space)
        self._obs_space = (
            self.structured_space
            if observation == "structured"
            else flat_observation_space(self.flat, action, observation, observation_key)
        )
        self._act_space = (
            flat_action_space(self.flat) if action == "flat" else action_space(self.dims)
        )
        self.state_space = spaces.Box(0.0, 1.0, shape=(state_size(self.dims),), dtype=np.float32)
        self.sim = Simulator(
            self.capacity,
            self.speed,
            window=scenario.window,
            elastic=scenario.elastic,
            switch_penalty=scenario.switch_penalty,
            max_slots=scenario.max_slots,
            conflict_rule=scenario.conflict_rule,
            max_rounds=scenario.max_rounds_per_slot,
        )
        self._state = np.zeros(self.state_space.shape, dtype=np.float32)
        self._facts: list[dict] = []
        self._lower_bound: np.ndarray | None = None

    # ------------------------------------------------------------------ spaces
    @functools.cache  # noqa: B019 - one space object per agent, as PettingZoo asks
    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    # ------------------------------------------------------------------ episode
    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, dict], dict[str, dict]]:
        """Start an episode. ``options={"trace": Trace}`` replays that trace.

        The workload and the conflict tie-breaks use separate generators spawned from ``seed``,
        so the arrivals of a seed are the same whatever the policy does.
        """
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        workload_seq, conflict_seq = np.random.SeedSequence(seed).spawn(2)
        trace = (options or {}).get("trace") or self._fixed_trace
        if trace is None:
            trace = generate_trace(self.scenario, np.random.default_rng(workload_seq))
        else:
            if trace is not self._fixed_trace:
                trace.check_fits(self.scenario)
            trace = self._window(trace, np.random.default_rng(workload_seq))
        self.trace = trace
        self.sim.reset(trace, rng=np.random.default_rng(conflict_seq))
        self.builder.prepare(trace)
        self.sim.skip_idle()
        self.agents = list(self.possible_agents)
        self._lower_bound = None
        self._conflicts = 0
        observations, facts = self._observe()
        infos = {a: self._info(i, facts[i], 0, 0, 0) for i, a in enumerate(self.agents)}
        return self._present(observations, infos)

    def _window(self, trace: Trace, rng: np.random.Generator) -> Trace:
        """The episode's part of a replayed trace (``scenario.trace_window``; see there)."""
        count = self.scenario.trace_window
        if count == 0:
            return trace
        if count > len(trace):
            raise ConfigError(f"trace_window: {count} tasks, but the trace has {len(trace)}")
        return trace.window(int(rng.integers(0, len(trace) - count + 1)), count)

    def _present(self, observations: dict, infos: dict) -> tuple[dict, dict]:
        """Observations (and, for the Box with the flat action, ``infos``) in the chosen form."""
        self._structured_obs = observations
        if self.observation_form == "structured":
            return observations, infos
        return present_flat(observations, infos, self), infos

    def structured_observations(self) -> dict[str, dict]:
        """The last observations in the structured form, whatever form the env returns."""
        return self._structured_obs

    def _observe(self) -> tuple[dict[str, dict], list[dict]]:
        obs_list, facts, self._state = self.builder.build(self.sim)
        self._facts = facts
        done, self.sim.finished = self.sim.finished, []
        ids = np.array(done, dtype=np.int64)
        self._finished = {
            "finished_index": ids,
            "finished_type": self.trace.type_idx[ids],
            "finished_work": self.trace.work[ids],  # known once a task has finished
        }
        for part in self._finished.values():
            part.flags.writeable = False
        return dict(zip(self.possible_agents, obs_list)), facts

    def state(self) -> np.ndarray:
        """Global view for a centralised critic: every cluster, window and running set."""
        return self._state.copy()

    def _plans(self, actions: dict[str, Any]) -> tuple[list[list[Op]], list[int]]:
        """Each agent's action as simulator operations, and whether it named an unknown index
        (that ends its sequence and counts as an invalid action)."""
        d = self.dims
        noop = np.zeros(3 * d.max_starts, dtype=np.int64)
        plans, unknown = [], []
        for c, agent in enumerate(self.possible_agents):
            if agent not in actions:
                a = noop
            elif self.action_form == "flat":
                a = decode(int(np.asarray(actions[agent]).reshape(-1)[0]), self.flat)
            else:
                a = np.asarray(actions[agent], dtype=np.int64).ravel()
            if a.size != 3 * d.max_starts:
                raise ValueError(f"action must have {3 * d.max_starts} entries, got {a.size}")
            index = self._facts[c]["task_index"]
            plan, bad = [], 0
            values = a.tolist()
            for j in range(0, len(values), 3):
                idx, cpu, gpu = values[j : j + 3]
                if idx == 0:
                    break
                task = int(index[idx]) if 0 < idx < d.actions else -1
                if task < 0:
                    bad = 1
                    break
                plan.append((task, cpu, gpu, idx <= d.window))
            plans.append(plan)
            unknown.append(bad)
        return plans, unknown

    def step(self, actions: dict[str, Any]):
        """Parse the actions, play one round, reward the elapsed slots, observe."""
        plans, unknown = self._plans(actions)
        out = self.sim.play_round(plans)
        self._conflicts += out.conflicts
        rewards = self._rewards(out)
        done, truncated = self.sim.done, self.sim.truncated
        observations, facts = self._observe()
        infos = {
            a: self._info(
                i,
                facts[i],
                out.elapsed.slots,
                out.lost[i],
                unknown[i] + out.invalid[i],
                out.started[i],
            )
            for i, a in enumerate(self.possible_agents)
        }
        if (done or truncated) and self.info_level == "full":
            summary = self.episode_summary()
            for a in infos:
                infos[a]["episode"] = summary
        if done or truncated:
            self.agents = []
        terminations = {a: done for a in self.possible_agents}
        truncations = {a: truncated and not done for a in self.possible_agents}
        observations, infos = self._present(observations, infos)
        return observations, rewards, terminations, truncations, infos

    def _rewards(self, out: RoundOutcome) -> dict[str, float]:
        """Minus the tasks in the system (team) or attributed to each agent, per elapsed slot."""
        if self.scenario.reward == "team":
            return {a: -float(out.elapsed.in_system) for a in self.possible_agents}
        attributed = out.elapsed.attributed
        return {a: -float(attributed[i]) for i, a in enumerate(self.possible_agents)}

    def _info(
        self, c: int, facts: dict, slots: int, lost: int, invalid: int, started: int = 0
    ) -> dict:
        numeric = {
            "slot": self.sim.slot,
            "round": self.sim.round,
            "slots_elapsed": slots,
            "conflicts_lost": lost,
            "invalid_actions": invalid,
            "started": started,
        }
        if self.info_level == "numeric":
            return numeric
        return {
            **numeric,
            **self._finished,
            **self._told,
            **facts,
        }

    def check_invariants(self) -> None:
        """DESIGN §4.1 invariants; tests call this after every step."""
        self.sim.check_invariants()
        finished = self.sim.status == Status.DONE
        if self.sim.done and not finished.all():
            raise AssertionError("episode done with unfinished tasks")

    def render(self) -> str | None:
        """``ansi``: the clusters' state as text; ``human``: the same, printed."""
        if self.render_mode is None:
            return None
        text = status_text(self.sim, self.capacity, self.possible_agents)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        return None
