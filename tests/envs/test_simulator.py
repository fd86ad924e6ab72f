"""The simulator alone (no env): rounds, conflicts, the slot end and pending windows by hand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from envs.simulator import Simulator, Status
from envs.speed_models import build_speed_model
from tests.conftest import TaskRow, tiny_scenario, tiny_trace

#: image tasks: min (2 cpu, 1 gpu), cap (4, 4); 0.25 progress per slot at any allocation.
IMAGE = ("image", 2, 1, 4, 4)


def world(
    clusters: tuple[tuple[int, int], ...], rows: list[TaskRow], seed: int = 0, **settings
) -> Simulator:
    """A simulator over hand-written image tasks, reset with a seeded tie-break generator."""
    speed = build_speed_model(tiny_scenario(clusters, [IMAGE], len(rows)), ["image"], 9, 9)
    capacity = np.array([[c, g, 0] for c, g in clusters])
    sim = Simulator(capacity, speed, window=settings.pop("window", 4), **settings)
    sim.reset(tiny_trace([IMAGE], rows, len(clusters)), rng=np.random.default_rng(seed))
    return sim


def claim(task: int, cpu: int = 2, gpu: int = 1) -> tuple[int, int, int, bool]:
    return (task, cpu, gpu, True)


# ---------------------------------------------------------------------- rounds
#: Clusters (4 cpu, 2 gpu) and (8, 4). Task 0 is seen by both, task 1 by cluster 0 only, task 2
#: by cluster 1 only; all arrive in slot 0. Spare capacity for (2, 1): cluster 0 two copies,
#: cluster 1 four, so cluster 1 wins every conflict.
ROUND_WORLD = ((4, 2), (8, 4))
ROUND_TASKS: list[TaskRow] = [
    (0, "image", 1.0, [0, 1]),
    (0, "image", 1.0, [0]),
    (0, "image", 1.0, [1]),
]


@dataclass(frozen=True)
class Round:
    """One row of the round table: the plans and the outcome worked out by hand."""

    name: str
    plans: list
    started: list[int]
    ended: bool
    lost: tuple[int, int] = (0, 0)
    invalid: tuple[int, int] = (0, 0)
    conflicts: int = 0
    max_rounds: int = 32


ROUNDS = [
    Round("no-op ends the slot", [[], []], [0, 0], ended=True),
    Round("one start", [[claim(1)], []], [1, 0], ended=False),
    Round("infeasible is no change", [[claim(1, cpu=8)], []], [0, 0], True, invalid=(1, 0)),
    Round(
        "infeasible voids the rest of the sequence",
        [[claim(1, cpu=8), claim(0)], []],
        [0, 0],
        ended=True,
        invalid=(1, 0),
    ),
    Round("a sequence of starts", [[claim(1), claim(0)], []], [2, 0], ended=False),
    Round(
        "conflict: the most spare capacity wins",
        [[claim(0)], [claim(0), claim(2)]],
        [0, 2],
        ended=False,
        lost=(1, 0),
        conflicts=1,
    ),
    Round(
        "a lost start alone is still a change",
        [[claim(0)], [claim(0)]],
        [0, 1],
        ended=False,
        lost=(1, 0),
        conflicts=1,
    ),
    Round(
        "the same task twice is no conflict",
        [[claim(1), claim(1)], []],
        [1, 0],
        ended=False,
        invalid=(1, 0),
    ),
    Round("the round limit ends the slot", [[claim(1)], []], [1, 0], ended=True, max_rounds=1),
]


@pytest.mark.parametrize("row", ROUNDS, ids=[row.name for row in ROUNDS])
def test_one_round(row: Round):
    sim = world(ROUND_WORLD, ROUND_TASKS, max_rounds=row.max_rounds)
    out = sim.play_round(row.plans)
    assert out.started == row.started
    assert (out.lost, out.invalid) == (list(row.lost), list(row.invalid))
    assert out.conflicts == row.conflicts
    assert out.slot_ended == row.ended
    # A slot end resets the round counter, and here the next slot has decisions to make.
    assert (sim.round, sim.slot) == ((0, 1) if row.ended else (1, 0))
    assert out.elapsed.slots == int(row.ended)
    sim.check_invariants()


def test_a_slot_end_charges_the_waiting_tasks_to_who_sees_them():
    sim = world(ROUND_WORLD, ROUND_TASKS)
    out = sim.play_round([[], []])
    # One slot with three waiting tasks; cluster 0 sees tasks 0 and 1, cluster 1 tasks 0 and 2.
    assert (out.elapsed.slots, out.elapsed.in_system) == (1, 3)
    assert out.elapsed.attributed == [2, 2]


def test_a_start_allocates_and_leaves_every_window():
    sim = world(ROUND_WORLD, ROUND_TASKS)
    assert sim.pending.windows() == [[0, 1], [0, 2]]
    out = sim.play_round([[], [claim(0, cpu=3, gpu=2)]])
    assert out.started == [0, 1]
    assert sim.status[0] == Status.RUNNING and sim.cluster[0] == 1
    assert sim.free.tolist() == [[4, 2, 0], [5, 2, 0]]
    assert sim.pending.windows() == [[1], [2]]


# ---------------------------------------------------------------------- conflicts
CONFLICTS = [
    # clusters, claimants, winner (spare capacity of a (2, 1) demand: min(cpu / 2, gpu / 1))
    (((2, 1), (4, 4)), [0, 1], 1),  # 1 copy vs 2
    (((4, 4), (2, 1)), [0, 1], 0),
    (((4, 2), (8, 1)), [0, 1], 0),  # 2 vs 1: the GPU binds
    (((2, 1), (6, 3), (4, 4)), [0, 1, 2], 1),  # 1, 3, 2
    (((2, 1), (6, 3), (4, 4)), [0, 2], 2),  # cluster 1 does not claim
]


@pytest.mark.parametrize("clusters, claimants, winner", CONFLICTS)
def test_spare_capacity_picks_the_winner(clusters, claimants, winner):
    everyone = list(range(len(clusters)))
    sim = world(clusters, [(0, "image", 1.0, everyone)])
    plans = [[claim(0)] if c in claimants else [] for c in everyone]
    out = sim.play_round(plans)
    assert int(sim.cluster[0]) == winner
    assert out.started == [int(c == winner) for c in everyone]
    assert out.lost == [int(c in claimants and c != winner) for c in everyone]
    assert out.conflicts == len(claimants) - 1


@pytest.mark.parametrize(
    "rule, clusters",
    [("spare_capacity", ((4, 4), (4, 4))), ("random", ((2, 1), (8, 8)))],
    ids=["spare-capacity tie", "random rule"],
)
def test_ties_and_the_random_rule_draw_from_the_seeded_generator(rule, clusters):
    def winner(seed: int) -> int:
        sim = world(clusters, [(0, "image", 1.0, [0, 1])], seed=seed, conflict_rule=rule)
        sim.play_round([[claim(0)], [claim(0)]])
        return int(sim.cluster[0])

    winners = [winner(seed) for seed in range(16)]
    assert set(winners) == {0, 1}  # either can win (even the one with less spare capacity)
    assert winners == [winner(seed) for seed in range(16)]  # the same seed, the same winner


# ---------------------------------------------------------------------- slots
@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_slot_end_runs_to_the_next_decision(fast_forward):
    """One task of 4 slots: after its start the slot ends, and nothing is left to decide until it
    finishes, so the simulator runs on to the end of slot 3 (all in one call, fast or not)."""
    sim = world(((4, 4),), [(0, "image", 1.0, [0])], fast_forward=fast_forward)
    assert not sim.play_round([[claim(0)]]).slot_ended
    out = sim.play_round([[]])
    assert out.slot_ended and sim.done
    assert (out.elapsed.slots, out.elapsed.in_system) == (4, 4)
    assert out.elapsed.attributed == [4]
    assert (int(sim.finish_slot[0]), sim.slot) == (4, 4)
    assert sim.free.tolist() == [[4, 4, 0]]


def test_an_arrival_stops_the_jump():
    """Task 1 arrives in slot 2: the jump stops there although task 0 still runs."""
    sim = world(((4, 4),), [(0, "image", 1.0, [0]), (2, "image", 1.0, [0])])
    sim.play_round([[claim(0)]])
    out = sim.play_round([[]])
    assert (out.elapsed.slots, sim.slot) == (2, 2)
    assert sim.pending.windows() == [[1]]
    assert sim.progress[0] == pytest.approx(0.5)


# ---------------------------------------------------------------------- windows
def test_windows_slide_and_count_changes():
    rows: list[TaskRow] = [(0, "image", 1.0, [0, 1])] * 3 + [(0, "image", 1.0, [1])]
    sim = world(((8, 8), (8, 8)), rows, window=2)
    assert sim.pending.windows() == [[0, 1], [0, 1]]
    assert sim.waiting_visible().tolist() == [3, 4]
    before = list(sim.pending.window_version)
    sim.play_round([[claim(1)], []])
    assert sim.pending.windows() == [[0, 2], [0, 2]]
    assert sim.waiting_visible().tolist() == [2, 3]
    assert [a - b for a, b in zip(sim.pending.window_version, before)] == [1, 1]
    assert sim.pending.window_matrix().tolist() == [[0, 2], [0, 2]]
    before = list(sim.pending.window_version)
    sim.play_round([[], [claim(3)]])  # task 3 is beyond cluster 1's window: no window changes
    assert sim.pending.windows() == [[0, 2], [0, 2]]
    assert sim.pending.window_version == before
    assert sim.waiting_visible().tolist() == [2, 2]
    sim.check_invariants()
