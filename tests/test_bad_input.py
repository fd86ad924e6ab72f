"""Bad scenarios, traces and config files raise one clear error naming the key, row or file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import evaluate
import train
from envs import ConfigError, TraceError, edge_cluster_v0
from envs.scenario import load_scenario
from envs.trace import TRACE_COLUMNS, TRACE_MAGIC, generate_trace, load_trace, save_trace
from tapfinger.config import load_config
from tests.conftest import one_error_line


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


# ------------------------------------------------------------------ files a new user might pass
def write_bad_file(path: Path, content: bytes | None) -> Path:
    """``content`` at ``path``; ``None`` makes ``path`` a folder instead."""
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


BAD_TRACES = {
    "binary": (bytes(range(128, 256)) * 4, "not a text file"),
    "garbage": (b"hello, world\n\x01 ;;; 3\n", "first line must be"),
    "empty": (b"", "empty file"),
    "folder": (None, "is a folder"),
    "missing-column": (
        f"{TRACE_MAGIC}\n{HEADER.replace(',max_gpu', '')}\n0,0,image,1.0,0|1,2,1,0,16\n".encode(),
        "(missing: max_gpu)",
    ),
    "bad-csv": (f"{TRACE_MAGIC}\n{'x' * 200_000}\n".encode(), "line 2: not valid CSV"),
    "huge-number": (
        f"{TRACE_MAGIC}\n{HEADER}\n0,0,image,1.0,0,2,1,0,{10**30},16\n".encode(),
        "column 'max_cpu': too large",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TRACES))
def test_unreadable_trace_file(tmp_path, case):
    content, message = BAD_TRACES[case]
    path = write_bad_file(tmp_path / "t.csv", content)
    with pytest.raises(TraceError, match=re.escape(str(path))) as err:
        load_trace(path, num_clusters=2, type_names=["image", "lm"])
    assert message in str(err.value)


@pytest.mark.parametrize("case", sorted(BAD_TRACES))
def test_evaluate_bad_trace_is_one_line(tmp_path, capsys, case):
    path = write_bad_file(tmp_path / "t.csv", BAD_TRACES[case][0])
    out = tmp_path / "out"
    argv = ["--config", "quickstart", "--policies", "random", "--episodes", "1"]
    code = evaluate.main([*argv, "--trace", str(path), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    one_error_line(captured.err, path)
    assert captured.out == "" and not out.exists()


BAD_CONFIGS = {
    "empty": (b"", "empty config"),
    "comments-only": (b"# scenario: quickstart\n\n   # nothing else\n", "empty config"),
    "empty-mapping": (b"{}\n", "empty config"),
    "list": (b"- scenario\n- train\n", "expected a mapping"),
    "scalar": (b"42\n", "expected a mapping"),
    "binary": (bytes(range(128, 256)) * 4, "not a text file"),
    "folder": (None, "is a folder"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_file(tmp_path, case):
    content, message = BAD_CONFIGS[case]
    path = write_bad_file(tmp_path / "exp.yaml", content)
    with pytest.raises(ConfigError, match=re.escape(str(path))) as err:
        load_config(path)
    assert message in str(err.value)


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_env_refuses_a_bad_scenario_file(tmp_path, case):
    """The env reads a scenario YAML through the same reader: the same one-line errors."""
    content, message = BAD_CONFIGS[case]
    path = write_bad_file(tmp_path / "scenario.yaml", content)
    with pytest.raises(ConfigError, match=re.escape(str(path))) as err:
        edge_cluster_v0.parallel_env(scenario=str(path))
    assert message in str(err.value)


def test_presets_and_no_file_still_load():
    assert load_config("quickstart").scenario.name == "quickstart"
    assert load_config(None) == load_config(None, [])


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_evaluate_bad_config_is_one_line(tmp_path, capsys, case):
    path = write_bad_file(tmp_path / "exp.yaml", BAD_CONFIGS[case][0])
    out = tmp_path / "out"
    code = evaluate.main(["--config", str(path), "--policies", "random", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    one_error_line(captured.err, path)
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_train_bad_config_is_one_line(tmp_path, capsys, case):
    path = write_bad_file(tmp_path / "exp.yaml", BAD_CONFIGS[case][0])
    run_dir = tmp_path / "run"
    argv = ["--config", str(path), "--run-dir", str(run_dir), "--no-progress", "--device", "cpu"]
    code = train.main(argv)
    captured = capsys.readouterr()
    assert code == 2
    one_error_line(captured.err, path)
    assert captured.out == "" and not run_dir.exists()
