"""Playing one episode: the scenario a policy plays on, its warm state, the episode itself.

DESIGN §5.4. A baseline that learns from what it measures (a ``history``: Optimus's fitted
speeds, Tetris's durations) first plays ``WARM_UP_EPISODES`` training-range episodes, and every
test episode starts from the state they leave (DESIGN §4.6); on a replayed trace there is no
training range, so it starts fresh.

Each policy plays on the scenario as configured, except: ``NAME@elastic`` plays the policy's
elastic variant on the same arrivals with ``elastic: true``; an oracle (a policy that reads a
fact the regime does not tell every policy) gets ``oracle_infos: true``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.scenario import ScenarioConfig
from envs.trace import Trace
from tapfinger.eval_types import TRAIN_SEED_BASE, WARM_UP_EPISODES, EpisodeResult
from tapfinger.policies import Policy, make_policy, policy_entry
from tapfinger.policies.registry import split_variant


def make_env(scenario: ScenarioConfig, trace: Trace | None) -> EdgeClusterEnv:
    return EdgeClusterEnv(scenario, trace=trace)


def play_episode(
    env: EdgeClusterEnv,
    policy: Policy,
    seed: int,
    *,
    name: str | None = None,
    trace: Trace | None = None,
    record_utilization: bool = False,
) -> EpisodeResult:
    """Play one episode of ``policy`` on ``env``, both reset with ``seed``.

    Args:
        env: The env to play on (reset here).
        policy: The policy to play (reset here).
        seed: Seed of the env and the policy.
        name: Policy name recorded in the result; None records ``policy.name``.
        trace: A trace the env replays instead of generating tasks.
        record_utilization: Also record the utilisation trace of the episode.
    """
    start = time.perf_counter()
    options = {"trace": trace} if trace is not None else None
    observations, infos = env.reset(seed=seed, options=options)
    policy.reset(seed=seed)
    while env.agents:
        actions = policy.act(observations, infos)
        observations, _, _, _, infos = env.step(actions)
    summary = dict(env.episode_summary())
    truncated = summary["tasks_finished"] < summary["tasks"]
    records = env.task_records()
    jct = records.jct[records.jct >= 0].astype(float)
    result = EpisodeResult(
        policy.name if name is None else name,
        seed,
        summary,
        jct,
        truncated,
        time.perf_counter() - start,
    )
    if record_utilization:
        result.util_slots, result.util_alloc = env.utilization_trace()
    return result


def policy_scenario(name: str, scenario: ScenarioConfig) -> ScenarioConfig:
    """The scenario ``name`` plays on: elastic for an elastic variant, with the oracle infos
    for an oracle (see the module docstring); the arrivals stay the same."""
    changes: dict[str, Any] = {}
    if split_variant(name)[1]:
        changes["elastic"] = True
    if policy_entry(name).oracle_under(scenario):
        changes["oracle_infos"] = True
    return dataclasses.replace(scenario, **changes) if changes else scenario


def warm_state(
    name: str, scenario: ScenarioConfig, trace: Trace | None, checkpoint: str | None = None
) -> dict[str, Any] | None:
    """The history ``name`` has learned after ``WARM_UP_EPISODES`` training-range episodes
    (None: it keeps none, or the scenario replays a trace)."""
    return getattr(ready_policy(name, scenario, trace, checkpoint)[1], "warm", None)


def ready_policy(
    name: str,
    scenario: ScenarioConfig,
    trace: Trace | None = None,
    checkpoint: str | None = None,
) -> tuple[EdgeClusterEnv, Policy]:
    """``name`` as it plays a test episode: its env (:func:`policy_scenario`) and the policy,
    warmed on ``WARM_UP_EPISODES`` training-range episodes when it keeps a history (not on a
    replayed trace: there is no training range)."""
    env = make_env(policy_scenario(name, scenario), trace)
    policy = make_policy(name, env, **policy_options(name, checkpoint))
    if getattr(policy, "history", ()) and trace is None and scenario.trace is None:
        for i in range(WARM_UP_EPISODES):
            play_episode(env, policy, TRAIN_SEED_BASE + i)
            policy.set_warm_state(policy.history_state())
    return env, policy


def policy_options(name: str, checkpoint: str | None) -> dict[str, Any]:
    """``checkpoint=...`` for the policies that are built from one, else nothing."""
    if checkpoint is None or not policy_entry(name).needs_checkpoint:
        return {}
    return {"checkpoint": checkpoint}
