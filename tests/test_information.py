"""Non-interference: the proof of the README's "Who knows what" table.

Two worlds that differ only in a hidden fact (one task's work; one task type's speed table)
must give every policy the same observations, infos and global state, step for step, until the
fact becomes observable: the task finishes (its work is in ``finished_work``), or a task of the
type has run a slot (its observed ``rate``). Each policy plays each world on its own (two
instances, same seed), so a policy that peeked at the simulator through ``env`` would act
differently and fail here. Under the regimes that tell the fact (``work_known``, ``profiled``)
the same worlds differ from the first observation where the fact concerns a visible task: the
test has the power to see a leak.

The hidden-work task is of a stationary type (parametric speeds): a type whose speed falls with
its progress fraction (the paper's ``lm``) reveals that fraction through its observed rate while
it runs, which is physics, not a leak.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.scenario import ClusterSpec, ScenarioConfig, TaskTypeSpec
from tapfinger.checkpoint import build_network, shape_signature
from tapfinger.config import ExperimentConfig, ModelConfig
from tapfinger.policies import make_policy, policy_entry, policy_names
from tests.conftest import tiny_trace

CPU_BOUND = {"serial": 0.5, "cpu_work": 4.0, "gpu_work": 1.0}
GPU_BOUND = {"serial": 0.5, "cpu_work": 1.0, "gpu_work": 6.0}
TYPES = [("image", 1, 1, 4, 4), ("lm", 1, 1, 4, 4)]
#: (arrival slot, type, work, clusters that see it). Task 2 (an image task) has the hidden work;
#: no lm task arrives before slot 3, and both clusters are busy then, so lm tasks wait a while.
ROWS = [
    (0, "image", 1.0, [0]),
    (0, "image", 1.5, [1]),
    (1, "image", 1.0, [0, 1]),
    (1, "image", 0.5, [0]),
    (2, "image", 2.0, [1]),
    (3, "lm", 1.0, [0, 1]),
    (3, "lm", 0.5, [0]),
    (4, "image", 1.0, [0, 1]),
    (5, "lm", 1.5, [1]),
    (6, "image", 0.5, [0, 1]),
]
HIDDEN_TASK = 2
LM = 1


def scenario(lm_speed: dict[str, float] = GPU_BOUND, **settings: Any) -> ScenarioConfig:
    types = [
        TaskTypeSpec("image", 1, 1, 0, 4, 4, speed=CPU_BOUND),
        TaskTypeSpec("lm", 1, 1, 0, 4, 4, speed=lm_speed),
    ]
    return ScenarioConfig(
        name="worlds",
        clusters=[ClusterSpec(4, 4), ClusterSpec(4, 4)],
        task_types=types,
        speed_model="parametric",
        num_tasks=len(ROWS),
        window=4,
        **settings,
    )


def world(work_of_hidden: float = 1.0, **settings: Any) -> EdgeClusterEnv:
    rows = [
        (*r[:2], work_of_hidden if i == HIDDEN_TASK else r[2], r[3]) for i, r in enumerate(ROWS)
    ]
    return EdgeClusterEnv(scenario(**settings), tiny_trace(TYPES, rows, 2))


def same(a: Any, b: Any) -> bool:
    """Deep equality of observations / infos (arrays by value, tuples and dicts by item)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def fresh_network_policy(env: EdgeClusterEnv):
    torch.manual_seed(3)
    net = build_network(env, ExperimentConfig(model=ModelConfig(hidden=16, heads=2)))
    return make_policy("tapfinger", env, network=net)


def fair_names(elastic: bool) -> list[str]:
    """Every policy compared as fair in the default regime (and the elastic variants)."""
    names = [n for n in policy_names() if policy_entry(n).baseline]
    if elastic:
        names += [n + "@elastic" for n in names if policy_entry(n).elastic]
    return [*names, "tapfinger"]


def build(name: str, env: EdgeClusterEnv):
    return fresh_network_policy(env) if name == "tapfinger" else make_policy(name, env, seed=0)


def lm_has_run(env: EdgeClusterEnv) -> bool:
    sim = env.sim
    return bool((sim.run_slots[sim.trace.type_idx == LM] > 0).any())


#: Rounds compared for an untrained network in elastic mode: it starts, stops and restarts
#: tasks at random for hundreds of rounds, each a forward pass; so many rounds prove enough.
ELASTIC_NETWORK_ROUNDS = 100


def round_cap(name: str, env: EdgeClusterEnv) -> int | None:
    return ELASTIC_NETWORK_ROUNDS if name == "tapfinger" and env.scenario.elastic else None


def play_pair(name: str, env_a: EdgeClusterEnv, env_b: EdgeClusterEnv, observable) -> int:
    """Play ``name`` on both worlds on its own; assert identical observations, infos, state and
    actions until ``observable(infos_a, infos_b, env_a, env_b)``, which must come (and not the
    end of the episodes first), or until ``round_cap`` rounds. Returns the rounds compared."""
    pa, pb = build(name, env_a), build(name, env_b)
    obs_a, inf_a = env_a.reset(seed=0)
    obs_b, inf_b = env_b.reset(seed=0)
    pa.reset(0)
    pb.reset(0)
    rounds, cap = 0, round_cap(name, env_a)
    while env_a.agents and env_b.agents and not observable(inf_a, inf_b, env_a, env_b):
        if rounds == cap:
            return rounds
        assert same(obs_a, obs_b), f"{name}: observations differ in round {rounds}"
        assert same(inf_a, inf_b), f"{name}: infos differ in round {rounds}"
        assert np.array_equal(env_a.state(), env_b.state()), f"{name}: state, round {rounds}"
        act_a, act_b = pa.act(obs_a, inf_a), pb.act(obs_b, inf_b)
        assert same(act_a, act_b), f"{name}: actions differ in round {rounds}"
        obs_a, _, _, _, inf_a = env_a.step(act_a)
        obs_b, _, _, _, inf_b = env_b.step(act_b)
        rounds += 1
    assert observable(inf_a, inf_b, env_a, env_b), f"{name}: the fact never became observable"
    return rounds


def finished(task: int):
    def observable(inf_a, inf_b, env_a, env_b) -> bool:
        return any(task in i["finished_index"] for i in (*inf_a.values(), *inf_b.values()))

    return observable


def type_ran(inf_a, inf_b, env_a, env_b) -> bool:
    return lm_has_run(env_a) or lm_has_run(env_b)


@pytest.mark.parametrize("elastic", [False, True])
@pytest.mark.parametrize("information", ["measured", "profiled"])
def test_one_tasks_work_is_hidden_until_it_finishes(information: str, elastic: bool) -> None:
    for name in fair_names(elastic):
        settings = {"information": information, "elastic": elastic}
        env_a, env_b = world(1.0, **settings), world(3.0, **settings)
        rounds = play_pair(name, env_a, env_b, finished(HIDDEN_TASK))
        assert rounds >= 3, f"{name}: the hidden task finished too soon to prove anything"


@pytest.mark.parametrize("work_known", [False, True])
@pytest.mark.parametrize("elastic", [False, True])
def test_a_types_speed_table_is_hidden_until_a_task_of_it_runs(
    elastic: bool, work_known: bool
) -> None:
    # Also when the work is told (Optimus and Tetris then read it): speeds stay unknown.
    for name in fair_names(elastic):
        env_a = world(elastic=elastic, work_known=work_known)
        env_b = world(
            elastic=elastic,
            work_known=work_known,
            lm_speed={**GPU_BOUND, "gpu_work": 12.0, "comm": 0.0},
        )
        assert env_a.speed.base[LM].tolist() != env_b.speed.base[LM].tolist()
        rounds = play_pair(name, env_a, env_b, type_ran)
        assert env_a.sim.slot >= 3, f"{name}: no lm task arrived before the comparison stopped"
        assert rounds >= 3, name


def first_difference(env_a: EdgeClusterEnv, env_b: EdgeClusterEnv) -> int | None:
    """The first round whose observations or infos differ, both worlds played by FIFO."""
    policy = make_policy("fifo", env_a)
    obs_a, inf_a = env_a.reset(seed=0)
    obs_b, inf_b = env_b.reset(seed=0)
    rounds = 0
    while env_a.agents and env_b.agents:
        if not (same(obs_a, obs_b) and same(inf_a, inf_b)):
            return rounds
        actions = policy.act(obs_a, inf_a)
        obs_a, _, _, _, inf_a = env_a.step(actions)
        obs_b, _, _, _, inf_b = env_b.step(actions)
        rounds += 1
    return None


def test_the_regimes_that_tell_a_fact_show_it_at_once() -> None:
    # Work clairvoyance: the hidden task's work shows from the round it arrives (slot 1).
    env_a, env_b = world(1.0, work_known=True), world(3.0, work_known=True)
    at = first_difference(env_a, env_b)
    assert at is not None and env_a.sim.slot <= 1
    # Profiled: the speed tables are in the first infos.
    faster = {**GPU_BOUND, "gpu_work": 12.0}
    assert (
        first_difference(
            world(information="profiled"), world(information="profiled", lm_speed=faster)
        )
        == 0
    )
    # The oracle infos tell both facts to whoever is given them.
    assert (
        first_difference(world(1.0, oracle_infos=True), world(3.0, oracle_infos=True)) is not None
    )


HIDDEN_KEYS = {"speed_model", "oracle_speed_model", "oracle_remaining_work", "task_remaining_work"}
HIDDEN_KEYS |= {"task_progress", "running_progress", "running_remaining_work"}


@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({}, set()),
        ({"information": "profiled"}, {"speed_model"}),
        (
            {"work_known": True},
            {"task_remaining_work", "task_progress", "running_progress", "running_remaining_work"},
        ),
        ({"oracle_infos": True}, {"oracle_speed_model", "oracle_remaining_work"}),
    ],
)
def test_infos_hold_no_object_or_oracle_key_unless_asked(settings: dict, allowed: set) -> None:
    env = world(**{"elastic": True, **settings})
    policy = make_policy("fifo", env)
    obs, infos = env.reset(seed=0)
    seen: set[str] = set()
    while env.agents:
        for info in infos.values():
            seen |= set(info) & HIDDEN_KEYS
            for key, value in info.items():
                if key in allowed or key == "episode":
                    continue
                # Plain numbers and arrays only: nothing that carries the world along.
                assert isinstance(value, (int, float, np.integer, np.floating, np.ndarray)), key
        obs, _, _, _, infos = env.step(policy.act(obs, infos))
    assert seen == allowed


@pytest.mark.parametrize("elastic", [False, True])
def test_the_learned_policy_acts_the_same_with_or_without_the_oracle_infos(elastic: bool) -> None:
    # Training gives the envs the oracle infos for an oracle teacher: the student must not
    # read them (observations equal, actions equal, the whole episode long).
    env_a = world(elastic=elastic)
    env_b = world(elastic=elastic, oracle_infos=True)
    pa, pb = fresh_network_policy(env_a), fresh_network_policy(env_b)
    obs_a, inf_a = env_a.reset(seed=0)
    obs_b, inf_b = env_b.reset(seed=0)
    assert "oracle_remaining_work" in inf_b["cluster_0"]
    cap = round_cap("tapfinger", env_a)
    while env_a.agents and cap != 0:
        cap = None if cap is None else cap - 1
        assert same(obs_a, obs_b)
        oracle_free = {
            a: {k: v for k, v in i.items() if not k.startswith("oracle_")} for a, i in inf_b.items()
        }
        assert same(inf_a, oracle_free)
        act_a, act_b = pa.act(obs_a, inf_a), pb.act(obs_b, inf_b)
        assert same(act_a, act_b)
        obs_a, _, _, _, inf_a = env_a.step(act_a)
        obs_b, _, _, _, inf_b = env_b.step(act_b)
    if not env_b.agents:
        assert np.array_equal(env_a.task_records().jct, env_b.task_records().jct)
    else:  # the elastic round cap: the same clock and the same tasks done so far
        assert env_a.sim.slot == env_b.sim.slot and env_a.sim.slot > 0
        assert np.array_equal(env_a.sim.finish_slot, env_b.sim.finish_slot)


def test_a_checkpoint_fits_every_regime() -> None:
    # The regimes fill or zero features; they never change the shapes a network is built for.
    base = shape_signature(EdgeClusterEnv(scenario()))
    for change in ({"information": "profiled"}, {"work_known": True}, {"oracle_infos": True}):
        assert shape_signature(EdgeClusterEnv(dataclasses.replace(scenario(), **change))) == base


@pytest.mark.parametrize("preset", ["paper_synthetic", "testbed", "pollux_edge", "diverse_bursty"])
def test_arrivals_do_not_depend_on_the_mode_or_the_regime(preset: str) -> None:
    # A table compares both modes and the regimes on the same traces: the same seed gives the
    # same tasks (arrival, type, work, visibility, demand) whatever the mode or the regime.
    from envs import edge_cluster_v0

    def trace_of(**settings):
        env = edge_cluster_v0.parallel_env(preset, **settings, infos="full").unwrapped
        env.reset(seed=7)
        t = env.trace
        return [t.arrival, t.type_idx, t.work, t.visible, t.min_demand, t.cap]

    base = trace_of()
    for settings in (
        {"elastic": True},
        {"information": "profiled"},
        {"work_known": True},
        {"oracle_infos": True},
        {"elastic": True, "switch_penalty": 0.0},
    ):
        assert all(np.array_equal(a, b) for a, b in zip(base, trace_of(**settings))), settings


def test_the_critics_privileged_facts_never_reach_the_actor() -> None:
    # model.critic_extras widens the central critic's input only: with the same actor weights,
    # a network built with them decides exactly as one without, the whole episode long, and
    # neither the observations nor the infos carry them.
    from tapfinger.critic_features import CRITIC_FEATURES

    env = world()
    plain = fresh_network_policy(env)
    torch.manual_seed(3)
    cfg = ExperimentConfig(model=ModelConfig(hidden=16, heads=2, critic_extras=True))
    extras = build_network(env, cfg)
    actor = {k: v for k, v in plain.net.state_dict().items() if not k.startswith("critic.")}
    extras.load_state_dict({**extras.state_dict(), **actor})
    assert extras.critic[0].in_features == plain.net.critic[0].in_features + len(CRITIC_FEATURES)
    with_extras = make_policy("tapfinger", env, network=extras)
    obs, infos = env.reset(seed=0)
    while env.agents:
        assert not any(k in CRITIC_FEATURES for i in infos.values() for k in i)
        act = plain.act(obs, infos)
        assert same(act, with_extras.act(obs, infos))
        obs, _, _, _, infos = env.step(act)
