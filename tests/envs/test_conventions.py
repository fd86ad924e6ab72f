"""PettingZoo's conventions (AEC ``env()``, ``render_mode``, numeric ``infos``, one-array
``action_mask``) and the flat variant for stock libraries, whose joint mask must be exact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import AECEnv
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

from envs import ConfigError, edge_cluster_v0
from envs.edge_cluster_v0 import NUMERIC_INFOS
from envs.flat import decode, encode, flat_features
from envs.observation import multidiscrete_mask

FLAT = dict(action="flat", observation="flat")


def warnings_of(check, *args, **kwargs) -> set[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check(*args, **kwargs)
    return {str(w.message) for w in seen}


#: PettingZoo's checker says these of every Dict observation (its own chess's included) ...
DICT_OBSERVATION = {
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be gymnasium.spaces.box or "
    "gymnasium.spaces.discrete",
}
#: ... and this of a MultiDiscrete action: the structured form is Dict / MultiDiscrete.
STRUCTURED = DICT_OBSERVATION | {
    "Action space for each agent probably should be gymnasium.spaces.box or "
    "gymnasium.spaces.discrete",
}


def test_env_is_the_aec_version_and_passes_the_api_test():
    aec = edge_cluster_v0.env("quickstart", num_tasks=12)
    assert isinstance(aec, AECEnv)
    assert warnings_of(api_test, aec, num_cycles=60) <= STRUCTURED
    flat = edge_cluster_v0.env("quickstart", num_tasks=12, **FLAT)
    assert warnings_of(api_test, flat, num_cycles=60) <= DICT_OBSERVATION
    box = edge_cluster_v0.env("quickstart", num_tasks=12, action="flat", observation="box")
    assert warnings_of(api_test, box, num_cycles=60) == set()
    raw = edge_cluster_v0.raw_env("quickstart", num_tasks=12)
    assert isinstance(raw, AECEnv)


@pytest.mark.parametrize("form", ["flat", "box"])
def test_flat_variant_passes_the_parallel_api_and_seed_tests(form):
    env = edge_cluster_v0.parallel_env(
        "paper_synthetic", num_tasks=30, action="flat", observation=form
    )
    parallel_api_test(env, num_cycles=200)
    parallel_seed_test(
        lambda: edge_cluster_v0.parallel_env(
            "quickstart", num_tasks=20, action="flat", observation=form
        )
    )


def test_render_modes(capsys):
    env = edge_cluster_v0.parallel_env("quickstart", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert text.startswith("slot 0") and "cluster_1: cpu 0/8 gpu 0/8 running 0" in text
    assert env.metadata["render_modes"] == ["ansi", "human"]
    human = edge_cluster_v0.parallel_env("quickstart", render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    assert capsys.readouterr().out.strip() == text
    assert edge_cluster_v0.parallel_env("quickstart").render() is None
    with pytest.raises(ConfigError, match="render_mode 'rgb_array'"):
        edge_cluster_v0.parallel_env("quickstart", render_mode="rgb_array")


def test_default_infos_are_numeric_and_fixed():
    env = edge_cluster_v0.parallel_env("paper_synthetic", num_tasks=20, oracle_infos=True)
    obs, infos = env.reset(seed=1)
    steps = 0
    while env.agents:
        for info in infos.values():
            assert tuple(info) == NUMERIC_INFOS
            assert all(isinstance(v, int) for v in info.values())
        acts = {a: env.action_space(a).sample(mask=multidiscrete_mask(obs[a])) for a in env.agents}
        obs, _, _, _, infos = env.step(acts)
        steps += 1
    assert steps > 10
    full = edge_cluster_v0.parallel_env(
        "paper_synthetic", num_tasks=20, oracle_infos=True, infos="full"
    )
    _, infos = full.reset(seed=1)
    assert {"task_index", "oracle_remaining_work", "finished_index"} <= set(infos["cluster_0"])
    with pytest.raises(ConfigError, match="infos level 'all'"):
        edge_cluster_v0.parallel_env("quickstart", infos="all")


def test_structured_observation_has_no_tuple_mask_and_helper_samples():
    env = edge_cluster_v0.parallel_env("quickstart", mode="multi", max_starts=3)
    obs, _ = env.reset(seed=0)
    o = obs["cluster_0"]
    assert "action_mask" not in o
    mask = multidiscrete_mask(o, starts=3)
    assert len(mask) == 9 and all(isinstance(m, np.ndarray) for m in mask)
    sample = env.action_space("cluster_0").sample(mask=mask)
    assert env.action_space("cluster_0").contains(sample)


def test_flat_spaces_and_codes():
    env = edge_cluster_v0.parallel_env("quickstart", **FLAT)
    d, layout = env.dims, env.flat
    assert env.action_space("cluster_0") == spaces.Discrete(d.actions * d.cpu_levels * d.gpu_levels)
    space = env.observation_space("cluster_0")
    assert space["action_mask"].shape == (layout.num_actions,)
    assert space["observation"].shape == (layout.num_features,)
    for triple in [(0, 0, 0), (1, 2, 3), (d.actions - 1, d.cpu_levels - 1, d.gpu_levels - 1)]:
        assert tuple(decode(encode(*triple, layout), layout)) == triple
    assert encode(0, 0, 0, layout) == 0
    with pytest.raises(ValueError, match="flat action must be in"):
        decode(layout.num_actions, layout)
    box = edge_cluster_v0.parallel_env("quickstart", action="flat", observation="box")
    obs, infos = box.reset(seed=0)
    assert isinstance(obs["cluster_0"], np.ndarray)
    assert infos["cluster_0"]["action_mask"].shape == (layout.num_actions,)
    with pytest.raises(ConfigError, match="single-task mode"):
        edge_cluster_v0.parallel_env("quickstart", action="flat", mode="multi")
    with pytest.raises(ConfigError, match="unknown action form 'joint'"):
        edge_cluster_v0.parallel_env("quickstart", action="joint")
    with pytest.raises(ConfigError, match="unknown observation form 'image'"):
        edge_cluster_v0.parallel_env("quickstart", observation="image")


def feasible_triples(env, c: int) -> set[tuple[int, int, int]]:
    """Every (index, cpu, gpu) the simulator accepts on cluster ``c`` now, and the no-op, by
    asking the simulator's own rules (not the masks); a pause is ``(index, 0, -1)``."""
    sim, d = env.sim, env.dims
    index = env._facts[c]["task_index"]
    out = {(0, 0, 0)}
    for i in range(1, d.actions):
        task = int(index[i])
        if task < 0:
            continue
        if i > d.window:
            out.add((i, 0, -1))
        for cpu in range(1, d.cpu_levels):
            for gpu in range(d.gpu_levels):
                if i <= d.window:
                    ok = sim.fits(c, task, cpu, gpu)
                else:
                    own = sim.free[c].copy()
                    own[:2] += sim.alloc[task, :2]
                    ok = sim.pending.fits(c, task, cpu, gpu, own)
                if ok:
                    out.add((i, cpu, gpu))
    return out


@pytest.mark.parametrize(
    "preset,settings",
    [
        ("quickstart", {}),
        ("paper_synthetic", {}),
        ("quickstart", {"elastic": True}),
        ("paper_hetero6", {"visibility": "uniform_subset"}),
    ],
)
def test_flat_joint_mask_is_exact(preset, settings):
    """Every allowed flat action is carried out; every feasible change is allowed; a played
    allowed action is never reported invalid."""
    env = edge_cluster_v0.parallel_env(preset, num_tasks=25, **FLAT, **settings)
    obs, infos = env.reset(seed=3)
    rng = np.random.default_rng(1)
    checked = 0
    while env.agents and checked < 40:
        acts = {}
        for c, a in enumerate(env.possible_agents):
            mask = obs[a]["action_mask"]
            allowed = {tuple(int(v) for v in decode(k, env.flat)) for k in np.flatnonzero(mask)}
            want = feasible_triples(env, c)
            # A pause is one action per running task (its GPU level is immaterial).
            pauses = [t for t in allowed if t[0] > env.dims.window and t[1] == 0]
            assert len(pauses) == len({t[0] for t in pauses})
            allowed = {(t[0], 0, -1) if t in pauses else t for t in allowed}
            assert allowed == want
            acts[a] = int(rng.choice(np.flatnonzero(mask)))
        obs, _, _, _, infos = env.step(acts)
        assert all(i["invalid_actions"] == 0 for i in infos.values())
        env.check_invariants()
        checked += 1
    assert checked >= 10


def test_flat_features_are_a_function_of_the_structured_observation():
    """The flat Box holds the structured observation's facts only (so the information regime's
    non-interference carries over), scaled into [0, 1]."""
    env = edge_cluster_v0.parallel_env("paper_synthetic", num_tasks=20, **FLAT)
    obs, _ = env.reset(seed=2)
    rng = np.random.default_rng(2)
    for _ in range(15):
        structured = env.structured_observations()
        for c, a in enumerate(env.possible_agents):
            box = obs[a]["observation"]
            assert np.array_equal(box, flat_features(structured[a], env.capacity[c]))
            assert box.min() >= 0.0 and box.max() <= 1.0
        acts = {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents}
        obs, _, _, _, _ = env.step(acts)
        if not env.agents:
            break
