"""Bad scenarios and traces raise one clear error naming the key, or the row and column."""

from __future__ import annotations

import numpy as np
import pytest

from envs import ConfigError, TraceError, edge_cluster_v0
from envs.scenario import load_scenario
from envs.trace import TRACE_COLUMNS, TRACE_MAGIC, generate_trace, load_trace, save_trace


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown scenario 'nope'.*paper_synthetic"):
        load_scenario("nope")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"windw": 3}, "unknown key 'scenario.windw'"),
        ({"window": "ten"}, "scenario.window: expected an integer"),
        ({"window": 0}, "scenario.window: out of range"),
        ({"arrival_rate": -1.0}, "scenario.arrival_rate"),
        ({"clusters": [{"cpu": -4, "gpu": 2}]}, r"scenario.clusters\[0\].cpu: capacity"),
        ({"clusters": [{"cpu": 4}]}, r"missing key 'scenario.clusters\[0\].gpu'"),
        ({"mode": "both"}, "scenario.mode: 'both' is not one of"),
        ({"elastic": "yes"}, "scenario.elastic: expected true or false"),
        (
            {
                "clusters": [{"cpu": 1, "gpu": 1}],
                "task_types": [{"name": "image", "min_cpu": 2, "min_gpu": 1}],
            },
            "minimum demand fits no cluster",
        ),
    ],
)
def test_bad_scenario_keys(data, match):
    with pytest.raises(ConfigError, match=match):
        load_scenario({"scenario": data})


def test_unknown_override_key():
    with pytest.raises(ConfigError, match="unknown scenario key 'speed'"):
        edge_cluster_v0.parallel_env("quickstart", speed="fast")


def test_trace_round_trip(tmp_path):
    scenario = load_scenario("paper_hetero6")
    trace = generate_trace(scenario, np.random.default_rng(3))
    path = tmp_path / "t.csv"
    save_trace(trace, path)
    back = load_trace(path, num_clusters=6, type_names=["image", "lm"])
    for field in ("task_id", "arrival", "type_idx", "work", "visible", "min_demand", "cap"):
        assert np.array_equal(getattr(trace, field), getattr(back, field)), field
    # The replayed trace gives the same episode as the generated one.
    env = edge_cluster_v0.parallel_env("paper_hetero6", trace=str(path))
    _obs, _ = env.reset(seed=0)
    assert np.array_equal(env.trace.arrival, trace.arrival)


GOOD_ROW = "0,0,image,1.0,0|1,2,1,0,16,16"


HEADER = ",".join(TRACE_COLUMNS)


def write(tmp_path, rows, magic=TRACE_MAGIC, header=HEADER):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([magic, header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("0,x,image,1.0,0,2,1,0,16,16", r"row 1, column 'arrival_slot': expected an integer"),
        ("0,-3,image,1.0,0,2,1,0,16,16", r"row 1, column 'arrival_slot': must be >= 0"),
        ("0,0,image,-1,0,2,1,0,16,16", r"row 1, column 'work': must be a positive"),
        ("0,0,image,abc,0,2,1,0,16,16", r"row 1, column 'work': expected a number"),
        ("0,0,image,1.0,,2,1,0,16,16", r"row 1, column 'visible_clusters': empty"),
        ("0,0,image,1.0,7,2,1,0,16,16", r"row 1, column 'visible_clusters': cluster 7"),
        ("0,0,video,1.0,0,2,1,0,16,16", r"row 1, column 'task_type': unknown type 'video'"),
        ("0,0,image,1.0,0,2,1,0,1,16", r"row 1, column 'max_cpu': smaller than min_cpu"),
        ("0,0,image,1.0,0,2,1", r"row 1: expected 10 columns, got 7"),
    ],
)
def test_malformed_trace_rows(tmp_path, row, match):
    with pytest.raises(TraceError, match=match):
        load_trace(write(tmp_path, [row]), num_clusters=2, type_names=["image", "lm"])


def test_duplicate_task_id_names_the_second_row(tmp_path):
    with pytest.raises(TraceError, match="row 2, column 'task_id': duplicate"):
        load_trace(write(tmp_path, [GOOD_ROW, GOOD_ROW]), num_clusters=2)


def test_trace_header_and_magic_are_checked(tmp_path):
    with pytest.raises(TraceError, match="first line must be"):
        load_trace(write(tmp_path, [GOOD_ROW], magic="task_id"))
    with pytest.raises(TraceError, match="header must be"):
        load_trace(write(tmp_path, [GOOD_ROW], header="a,b,c"))
    with pytest.raises(TraceError, match="trace file not found"):
        load_trace(tmp_path / "missing.csv")


def test_task_that_fits_no_visible_cluster(tmp_path):
    # Cluster 0 of quickstart has 8 CPU: a task needing 12 CPU that only cluster 0 sees.
    path = write(tmp_path, ["0,0,image,1.0,0,12,1,0,16,16"])
    with pytest.raises(TraceError, match="task 0: minimum demand .* fits no cluster"):
        edge_cluster_v0.parallel_env("quickstart", trace=str(path))
