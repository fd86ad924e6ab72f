"""Workloads: heavy-tailed work, bursty arrivals, the pollux speed table, the headroom presets.

Hand-checked numbers: the bounded Pareto's lower bound, Pollux's raw step times (copied from
``shared/data/pollux/traces/<job>/placements.csv``) turned into speed-ups by Pollux's rules, and
digests of the existing presets' traces computed before these options existed.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from envs import edge_cluster_v0
from envs.errors import ConfigError
from envs.observation import random_actions
from envs.pollux import POLLUX_TABLE, convert, placement_id
from envs.scenario import TaskTypeSpec, load_scenario, scenario_from_dict
from envs.speed_models import build_speed_model, load_pollux_speedups
from envs.trace import Trace, arrival_counts, bounded_pareto_low, generate_trace, sample_work

NEW_PRESETS = ("pollux_edge", "diverse_bursty")
POLLUX_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "pollux"


def digest(trace: Trace) -> str:
    h = hashlib.sha256()
    tr = trace
    for a in (tr.arrival, tr.type_idx, tr.work, tr.visible, tr.min_demand, tr.cap):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def heavy(dist: str, shape: float | None, **more) -> TaskTypeSpec:
    return TaskTypeSpec("t", work_mean=3.0, work_dist=dist, work_shape=shape, **more)


# ----------------------------------------------------------------------------- work sizes
def test_bounded_pareto_lower_bound_by_hand() -> None:
    # alpha 2, spread 4: mean = L * 2/1 * (1 - 1/4) / (1 - 1/16) = 1.6 L.
    assert bounded_pareto_low(2.0, 4.0, 1.6) == pytest.approx(1.0)
    # alpha 1, spread e: mean = L * e * ln(e) / (e - 1).
    assert bounded_pareto_low(1.0, math.e, math.e / (math.e - 1)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("spec", "tolerance"),
    [
        (heavy("lognormal", 1.0), 0.02),
        (heavy("pareto", 3.0), 0.02),
        (heavy("bounded_pareto", 1.1, work_spread=1000.0), 0.03),
        (heavy("bounded_pareto", 1.0, work_spread=50.0), 0.02),
        (heavy("bounded_pareto", 2.5, work_spread=10.0), 0.01),
    ],
)
def test_heavy_tailed_means_are_work_mean(spec: TaskTypeSpec, tolerance: float) -> None:
    spec.validate("t")
    work = sample_work(spec, 400_000, np.random.default_rng(7))
    assert work.min() > 0
    assert work.mean() == pytest.approx(spec.work_mean, rel=tolerance)


def test_bounded_pareto_stays_in_its_support_and_pareto_has_its_floor() -> None:
    spec = heavy("bounded_pareto", 1.1, work_spread=1000.0)
    low = bounded_pareto_low(1.1, 1000.0, 3.0)
    work = sample_work(spec, 100_000, np.random.default_rng(1))
    assert low <= work.min() and work.max() <= 1000.0 * low
    assert work.max() > 100 * low  # the tail is reached
    pareto = sample_work(heavy("pareto", 3.0), 10_000, np.random.default_rng(1))
    assert pareto.min() >= 3.0 * 2 / 3


def test_lognormal_spread_follows_sigma() -> None:
    work = sample_work(heavy("lognormal", 1.0), 400_000, np.random.default_rng(3))
    assert np.std(np.log(work)) == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"work_dist": "lognormal"}, "scenario.task_types[0].work_shape"),
        ({"work_dist": "lognormal", "work_shape": 0.0}, "scenario.task_types[0].work_shape"),
        ({"work_dist": "pareto", "work_shape": 1.0}, "scenario.task_types[0].work_shape"),
        ({"work_dist": "bounded_pareto", "work_shape": -1}, "scenario.task_types[0].work_shape"),
        (
            {"work_dist": "bounded_pareto", "work_shape": 1.5, "work_spread": 1.0},
            "scenario.task_types[0].work_spread",
        ),
        ({"work_dist": "weibull", "work_shape": 1.0}, "scenario.task_types[0].work_dist"),
    ],
)
def test_bad_work_shape_names_the_key(settings: dict, key: str) -> None:
    data = {"task_types": [{"name": "image", **settings}]}
    with pytest.raises(ConfigError, match=re_key(key)):
        scenario_from_dict(data)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"burst_factor": 0.5}, "scenario.burst_factor"),
        ({"burst_fraction": 0.0}, "scenario.burst_fraction"),
        ({"burst_fraction": 1.0}, "scenario.burst_fraction"),
        ({"burst_slots": 0.5}, "scenario.burst_slots"),
        ({"burst_fraction": 0.9, "burst_slots": 2.0}, "scenario.burst_fraction"),
        ({"arrivals": "hawkes"}, "scenario.arrivals"),
    ],
)
def test_bad_burst_settings_name_the_key(settings: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=re_key(key)):
        scenario_from_dict({"arrivals": "bursty", **settings})


def re_key(key: str) -> str:
    return "^" + key.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")


# ----------------------------------------------------------------------------- arrivals
def test_bursty_arrivals_keep_the_mean_rate_and_are_overdispersed() -> None:
    sc = scenario_from_dict(
        {
            "arrival_rate": 2.0,
            "num_tasks": 60_000,
            "arrivals": "bursty",
            "burst_factor": 10.0,
            "burst_fraction": 0.1,
            "burst_slots": 5.0,
        }
    )
    counts = np.array(arrival_counts(sc, np.random.default_rng(5)))
    assert counts.mean() == pytest.approx(2.0, rel=0.05)
    # Poisson has variance = mean; the mixture of a 1.05 and a 10.5 rate is far wider.
    assert counts.var() / counts.mean() > 3.0
    plain = np.array(arrival_counts(dataclasses.replace(sc, arrivals="poisson"), rng(5)))
    assert plain.var() / plain.mean() == pytest.approx(1.0, abs=0.05)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", NEW_PRESETS)
def test_traces_are_deterministic_and_ignore_the_rules(name: str) -> None:
    sc = load_scenario(name)
    a = generate_trace(sc, rng(11))
    assert digest(a) == digest(generate_trace(sc, rng(11)))
    assert digest(a) != digest(generate_trace(sc, rng(12)))
    # The arrivals come from the workload settings alone, never from the rules policies play by.
    ruled = dataclasses.replace(sc, elastic=True, mode="multi", reward="agent", window=3)
    assert digest(generate_trace(ruled, rng(11))) == digest(a)


#: Digests of generate_trace(preset, default_rng(0)) before heavy tails and bursts existed:
#: (tasks, sum of arrival slots, sum of type indices, sum of work, visible pairs, sha256 prefix).
BEFORE = {
    "paper_hetero6": (384, 11361, 183, 384.0, 1315, "7dfd110ef0bfc64b"),
    "paper_synthetic": (192, 8459, 107, 192.0, 386, "1c1cc3c72a9596df"),
    "quickstart": (48, 751, 29, 48.0, 71, "2997575be5d7c51b"),
    "smoke": (12, 53, 8, 12.0, 21, "32923aa77da92de6"),
    "testbed": (200, 16107, 208, 200.0, 406, "68b3b206ee8a827d"),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_existing_presets_traces_are_unchanged(name: str) -> None:
    tr = generate_trace(load_scenario(name), rng(0))
    got = (
        len(tr),
        int(tr.arrival.sum()),
        int(tr.type_idx.sum()),
        float(tr.work.sum()),
        int(tr.visible.sum()),
        digest(tr),
    )
    assert got == BEFORE[name]


def test_paper_synthetic_episode_trace_and_old_distributions_are_unchanged() -> None:
    sc = load_scenario("paper_synthetic")
    workload, _ = np.random.SeedSequence(0).spawn(2)  # the env's workload generator for seed 0
    assert digest(generate_trace(sc, np.random.default_rng(workload))) == "f67044ef43b7af73"
    expected = {
        "exponential": ("913dbc44fcbf7841", 185.26623011763928),
        "uniform": ("047cdb8de54f7b8c", 189.6267466370135),
    }
    for dist, (sha, total) in expected.items():
        types = [dataclasses.replace(t, work_dist=dist) for t in sc.task_types]
        tr = generate_trace(dataclasses.replace(sc, task_types=types), rng(0))
        assert (digest(tr), float(tr.work.sum())) == (sha, total)


# ----------------------------------------------------------------------------- pollux speeds
# Raw rows of Pollux's placements.csv: (placement, local_bsz) -> (step_time, sync_time).
CIFAR_1_1024 = (0.7020925283432007, 0.0005468864023685456)
CIFAR_2_1024 = (0.8379724740982055, 0.0011728127837181094)
YOLO_1_8 = (0.3261484205722809, 0.0024901360273361208)
YOLO_4_8 = (0.5009251087903976, 0.11896183347702027)
YOLO_4444_4 = (1.174428179860115, 0.8398707008361816)


def with_accumulation(row: tuple[float, float], extra: int) -> float:
    step, sync = row
    return step + extra * (step - sync)


def test_pollux_placements_are_packed_4_gpu_nodes_in_pollux_order() -> None:
    assert [placement_id(g) for g in (1, 4, 5, 6, 9, 16)] == ["1", "4", "14", "24", "144", "4444"]


def test_pollux_speedups_match_hand_computed_step_times() -> None:
    curves = load_pollux_speedups()
    # cifar10, B = 2048: one GPU holds 1024 (one accumulation step), two GPUs 1024 each.
    one = with_accumulation(CIFAR_1_1024, 1)
    assert curves["cifar10"][2] == pytest.approx(one / CIFAR_2_1024[0], abs=1e-4)
    # yolov3, B = 64, at most 8 a replica: 1 GPU = 8 x 8, 4 GPUs = 2 x 8 each, 16 GPUs = 4 each.
    one = with_accumulation(YOLO_1_8, 7)
    assert curves["yolov3"][4] == pytest.approx(one / with_accumulation(YOLO_4_8, 1), abs=1e-4)
    assert curves["yolov3"][16] == pytest.approx(one / YOLO_4444_4[0], abs=1e-4)
    assert curves["yolov3"][4] == pytest.approx(2.9355, abs=1e-4)
    assert curves["yolov3"][5] < curves["yolov3"][4]  # a second node slows it down
    assert curves["ncf"][16] < 1.0  # NCF is fastest on few GPUs
    assert curves["imagenet"][16] > 14.0  # ImageNet scales
    assert all(c[0] == 0 and c[1] == 1 for c in curves.values())


def pollux_scenario(**cpu_work: float):
    types = [
        {"name": n, "min_cpu": 1, "min_gpu": 1, "speed": {"cpu_work": w}}
        for n, w in cpu_work.items()
    ]
    return scenario_from_dict({"task_types": types, "speed_model": "pollux"})


def test_pollux_model_takes_the_slower_of_gpus_and_input_cores() -> None:
    sc = pollux_scenario(yolov3=2.0, ncf=0.0)
    speed = build_speed_model(sc, ["yolov3", "ncf"], 17, 21)
    yolo4 = load_pollux_speedups()["yolov3"][4]
    assert speed.base[0, 1, 4] == pytest.approx(0.5)  # 1 core feeds half a GPU-speed
    assert speed.base[0, 8, 4] == pytest.approx(yolo4)  # 8 cores feed 4 GPUs (2.94 < 4)
    assert speed.base[0, 5, 4] == pytest.approx(2.5)  # 5 cores: input-bound (2.5 < 2.94)
    assert speed.base[0, 6, 4] == pytest.approx(yolo4)  # 6 cores: GPU-bound (3 > 2.94)
    assert speed.base[0, 5, 20] == speed.base[0, 5, 16]  # past 16 GPUs the last value holds
    assert (speed.base[:, 0, :] == 0).all() and (speed.base[:, :, 0] == 0).all()
    assert speed.base[1, 1, 16] == pytest.approx(load_pollux_speedups()["ncf"][16])


@pytest.mark.parametrize(
    ("types", "match"),
    [
        ([{"name": "mnist"}], "has no pollux measurements"),
        ([{"name": "ncf", "speed": {"comm": 1.0}}], r"speed: unknown parameter 'comm'"),
        ([{"name": "ncf", "speed": {"cpu_work": -1.0}}], r"speed\.cpu_work: must be >= 0"),
    ],
)
def test_pollux_model_rejects_bad_types(types: list, match: str) -> None:
    sc = scenario_from_dict({"task_types": types, "speed_model": "pollux"})
    with pytest.raises(ConfigError, match=match):
        build_speed_model(sc, [t["name"] for t in types], 17, 17)


@pytest.mark.skipif(not POLLUX_DIR.exists(), reason="shared/data/pollux is not here")
def test_vendored_pollux_table_is_the_conversion_of_the_shared_data() -> None:
    with open(POLLUX_TABLE, encoding="utf-8") as fh:
        vendored = list(csv.DictReader(fh))
    fresh = [{k: str(v) for k, v in row.items()} for row in convert(POLLUX_DIR)]
    assert vendored == fresh


# ----------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", NEW_PRESETS)
def test_new_presets_play_a_random_episode_with_invariants(name: str) -> None:
    sc = dataclasses.replace(load_scenario(name), num_tasks=40)
    env = edge_cluster_v0.parallel_env(sc, infos="full")
    obs, _ = env.reset(seed=3)
    generator = rng(3)
    steps = 0
    while env.agents:
        obs, _, _, _, _ = env.step(random_actions(env, obs, generator))
        env.check_invariants()
        steps += 1
        assert steps < 20_000
    records = env.task_records()
    assert (records.finish >= 0).all()
    assert (records.jct >= records.lower_bound).all()
