"""Hand-computed small scenarios: exact start and finish slots and JCTs, both modes, a conflict."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.trace import Trace
from tests.conftest import tiny_scenario, tiny_trace


def lm_slots(gpus: int) -> int:
    """Slots an lm task needs alone with ``gpus`` GPUs: tanh(g/16)*sqrt(1.2 - p) per slot."""
    p, slots = 0.0, 0
    while p < 1.0 - 1e-9:
        p += math.tanh(gpus / 16) * math.sqrt(1.2 - p)
        slots += 1
    return slots


TYPES = [("image", 2, 1, 4, 4), ("lm", 2, 1, 4, 4)]


def tiny(mode: str = "single", clusters=((2, 1), (4, 4))) -> tuple[EdgeClusterEnv, Trace]:
    """Two images at slot 0 (one seen by cluster 0, one by both), an lm at slot 1 (cluster 1)."""
    scenario = tiny_scenario(
        clusters, TYPES, 3, mode=mode, max_starts=2, reward="team", conflict_rule="spare_capacity"
    )
    rows = [(0, "image", 1.0, [0]), (0, "image", 1.0, [0, 1]), (1, "lm", 1.0, [1])]
    trace = tiny_trace(TYPES, rows, len(clusters))
    return EdgeClusterEnv(scenario, trace), trace


def act(env, **per_agent):
    noop = np.zeros(3 * env.dims.max_starts, dtype=np.int64)
    out = {a: noop.copy() for a in env.possible_agents}
    for agent, triples in per_agent.items():
        flat = [v for t in triples for v in t]
        out[agent][: len(flat)] = flat
    return out


def test_lm_alone_with_three_gpus_finishes_in_seven_slots():
    """tanh(3/16) * sqrt(1.2 - p) per slot reaches 1 after 7 slots (0.203, 0.388, 0.555, 0.704,
    0.834, 0.946, 1.040): the env and the helper the other tests use agree on it."""
    scenario = tiny_scenario([(4, 4)], TYPES, 1, reward="team")
    env = EdgeClusterEnv(scenario, tiny_trace(TYPES, [(0, "lm", 1.0, [0])], 1))
    env.reset(seed=0)
    env.step(act(env, cluster_0=[(1, 2, 3)]))
    while env.agents:
        env.step(act(env))
    rec = env.task_records()
    assert (rec.start.tolist(), rec.finish.tolist(), rec.jct.tolist()) == ([0], [7], [7])
    assert lm_slots(3) == 7


def test_single_mode_with_a_conflict():
    env, _ = tiny("single")
    obs, infos = env.reset(seed=0)
    # Slot 0: cluster_0 sees tasks 0 and 1; cluster_1 sees task 1. Both pick task 1.
    assert infos["cluster_0"]["task_id"][1:3].tolist() == [0, 1]
    assert infos["cluster_1"]["task_id"][1] == 1
    obs, r, *_, infos = env.step(act(env, cluster_0=[(2, 2, 1)], cluster_1=[(1, 2, 1)]))
    # Spare capacity: cluster_1 fits 2 copies of (2, 1), cluster_0 only 1: cluster_1 wins.
    assert infos["cluster_0"]["conflicts_lost"] == 1
    assert infos["cluster_1"]["started"] == 1
    assert infos["cluster_0"]["slots_elapsed"] == 0 and r["cluster_0"] == 0
    obs, r, *_, infos = env.step(act(env, cluster_0=[(1, 2, 1)]))
    assert infos["cluster_0"]["started"] == 1
    # A round with no starts ends slot 0; task 2 (lm) arrives in slot 1 for cluster_1.
    obs, r, *_, infos = env.step(act(env))
    assert infos["cluster_0"]["slots_elapsed"] == 1 and r["cluster_0"] == -2
    assert infos["cluster_1"]["task_id"][1] == 2
    assert obs["cluster_1"]["cpu_mask"][1].tolist() == [0, 0, 1, 0, 0]
    assert obs["cluster_1"]["gpu_mask"][1].tolist() == [0, 1, 1, 1, 0]
    obs, r, *_, infos = env.step(act(env, cluster_1=[(1, 2, 3)]))
    total = r["cluster_0"] - 2
    while env.agents:
        obs, r, *_, infos = env.step(act(env))
        total += r["cluster_0"]
    rec = env.task_records()
    assert rec.start.tolist() == [0, 0, 1]
    assert rec.finish.tolist() == [4, 4, 8]
    assert rec.jct.tolist() == [4, 4, 7]
    assert rec.cluster.tolist() == [0, 1, 1]
    assert total == -15  # Little's law: minus the sum of JCTs
    assert infos["cluster_0"]["episode"]["mean_jct"] == pytest.approx(5.0)
    # Lower bound: image alone takes 4 slots, lm alone at 4 GPUs on cluster_1.
    assert rec.lower_bound.tolist() == [4, 4, lm_slots(4)]


def test_multi_mode_starts_a_sequence_in_one_round():
    env, _ = tiny("multi", clusters=((4, 2), (4, 4)))
    obs, infos = env.reset(seed=0)
    obs, _, *_, infos = env.step(act(env, cluster_0=[(1, 2, 1), (2, 2, 1)]))
    assert infos["cluster_0"]["started"] == 2
    assert obs["cluster_0"]["free"].tolist() == [0, 0, 0]
    obs, _, *_, infos = env.step(act(env))  # ends slot 0
    obs, _, *_, infos = env.step(act(env, cluster_1=[(1, 2, 3)]))
    while env.agents:
        obs, _r, *_, infos = env.step(act(env))
    rec = env.task_records()
    assert rec.finish.tolist() == [4, 4, 8]
    assert rec.jct.tolist() == [4, 4, 7]
    assert rec.cluster.tolist() == [0, 0, 1]


def test_the_same_task_twice_in_one_sequence_is_no_conflict():
    """A sequence naming one task twice starts it once; the repeat is an invalid action, not a
    conflict of the agent with itself (which would also change the tie-break odds)."""
    env, _ = tiny("multi", clusters=((4, 2), (4, 4)))
    env.reset(seed=0)
    _obs, _r, *_, infos = env.step(act(env, cluster_0=[(1, 2, 1), (1, 2, 1)]))
    assert infos["cluster_0"]["started"] == 1
    assert infos["cluster_0"]["invalid_actions"] == 1
    assert infos["cluster_0"]["conflicts_lost"] == 0
    assert env.episode_summary()["conflicts"] == 0
    env.check_invariants()


def test_infeasible_choice_is_a_reported_noop():
    env, _ = tiny("single")
    env.reset(seed=0)
    # Cluster_0 has 2 CPU: asking for 4 is infeasible, so nothing starts and the slot ends.
    _obs, _r, *_, infos = env.step(act(env, cluster_0=[(1, 4, 1)]))
    assert infos["cluster_0"]["invalid_actions"] == 1
    assert infos["cluster_0"]["started"] == 0
    assert infos["cluster_0"]["slots_elapsed"] == 1
    env.check_invariants()


def test_elastic_pause_and_resume_pays_the_switch_penalty():
    env, _ = tiny("single")
    env.scenario.elastic = True
    env.sim.elastic = True
    env.reset(seed=0)
    sim = env.sim
    sim.start(0, 0, 2, 1)
    sim.end_slot()  # slot 0: progress 0.25
    assert sim.progress[0] == pytest.approx(0.25)
    sim.resize(0, 0, 0, 0)  # pause
    assert sim.free[0].tolist() == [2, 1, 0]
    sim.start(0, 0, 2, 1)  # resume: this slot's progress is halved
    sim.end_slot()
    assert sim.progress[0] == pytest.approx(0.25 + 0.125)
    sim.check_invariants()


def test_elastic_changed_flag_marks_this_slots_starts_resizes_and_pauses():
    """``changed`` (observation) and ``task_changed`` (infos) flag a task index whose allocation
    changed in the current slot, and clear when the slot ends."""
    scenario = tiny_scenario(((2, 1), (4, 4)), TYPES, 3, mode="single", reward="team", elastic=True)
    rows = [(0, "image", 4.0, [0]), (0, "image", 4.0, [0, 1]), (1, "lm", 1.0, [1])]
    env = EdgeClusterEnv(scenario, tiny_trace(TYPES, rows, 2))
    w = env.dims.window
    running0 = w + 1  # the first running task's action index

    def flags(obs, infos, agent):
        assert (obs[agent]["changed"] == infos[agent]["task_changed"]).all()
        return obs[agent]["changed"].tolist()

    obs, infos = env.reset(seed=0)
    assert not any(flags(obs, infos, a).count(1) for a in env.possible_agents)
    # Round 0 of slot 0: cluster_1 starts task 1 at (2, 1).
    obs, _, _, _, infos = env.step(act(env, cluster_1=[(1, 2, 1)]))
    assert infos["cluster_1"]["task_index"][running0] == 1
    assert flags(obs, infos, "cluster_1")[running0] == 1
    assert flags(obs, infos, "cluster_0")[running0] == 0  # cluster_0 runs nothing
    # A round without changes ends slot 0: the flag clears.
    obs, _, _, _, infos = env.step(act(env))
    assert infos["cluster_1"]["slot"] == 1
    assert flags(obs, infos, "cluster_1")[running0] == 0
    # Slot 1: cluster_1 grows task 1 to (4, 4); flagged for the rest of the slot.
    obs, _, _, _, infos = env.step(act(env, cluster_1=[(running0, 4, 4)]))
    assert infos["cluster_1"]["task_alloc"][running0].tolist() == [4, 4]
    assert flags(obs, infos, "cluster_1")[running0] == 1
    # Then it pauses it: task 1 waits again, flagged at its pending index.
    obs, _, _, _, infos = env.step(act(env, cluster_1=[(running0, 0, 0)]))
    pending = int(np.flatnonzero(infos["cluster_1"]["task_index"][: w + 1] == 1)[0])
    assert flags(obs, infos, "cluster_1")[pending] == 1
    assert infos["cluster_1"]["slot"] == 1
    env.check_invariants()
