"""The Philly importer's rules on a hand-written job list, its errors, and the trace window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs import ConfigError, edge_cluster_v0
from envs.errors import TraceError
from envs.philly import import_philly, main
from tests import ROOT

HEADER = "timestamp,duration,num_gpus,gpu_time,cluster"
JOBS = [
    "2017-10-01 00:10:00,600.0,1,600.0,aa",  # slot 0 (first kept), 2 slots of 300 s
    "2017-10-01 00:25:00,1.0,4,4.0,aa",  # slot 3, 1 slot, 4 GPUs: too big for the 2-GPU site
    "2017-10-01 01:00:00,0.0,2,0.0,bb",  # tenant bb
    "2017-09-30 23:59:59,100.0,1,100.0,aa",  # before the window
    "2017-10-02 00:00:00,100.0,1,100.0,aa",  # at the window's end: excluded
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "philly.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_rules_by_hand(tmp_path):
    path = write(tmp_path, JOBS)
    out = import_philly(
        path, start="2017-10-01", end="2017-10-02", gpus_per_cluster=[8, 2], cpus_per_gpu=3
    )
    tr = out.trace
    assert [c.gpu for c in out.clusters] == [8, 2] and [c.cpu for c in out.clusters] == [24, 6]
    assert tr.task_id.tolist() == [0, 1, 2]  # data rows, 0-based
    assert tr.arrival.tolist() == [0, 3, 10]  # (00:10 -> 00:25 = 900 s = 3 slots; 50 min = 10)
    assert tr.work.tolist() == [2.0, 1.0, 1.0]  # ceil(600/300); a 1-s job and a 0-s job: 1 slot
    assert tr.min_demand.tolist() == [[3, 1, 0], [12, 4, 0], [6, 2, 0]]
    assert np.array_equal(tr.cap, tr.min_demand[:, :2])  # rigid
    assert tr.visible.tolist() == [[True, True], [True, False], [True, True]]
    assert [tr.type_names[i] for i in tr.type_idx] == ["gpu_1", "gpu_2_4", "gpu_2_4"]
    assert out.stats["tasks"] == 3 and out.stats["jobs_read"] == 5
    only_aa = import_philly(path, start="2017-10-01", end="2017-10-02", tenants=["aa"])
    assert only_aa.trace.task_id.tolist() == [0, 1]


def test_oversized_jobs_error_or_drop(tmp_path):
    path = write(tmp_path, JOBS)
    with pytest.raises(TraceError, match=r"row 2: 4 GPUs, more than any cluster has \(2\)"):
        import_philly(path, gpus_per_cluster=[2, 2])
    out = import_philly(path, gpus_per_cluster=[2, 2], oversized="drop")
    assert out.stats["dropped_oversized"] == 1 and 1 not in out.trace.task_id


@pytest.mark.parametrize(
    "rows,header,message",
    [
        (JOBS, "timestamp,duration,gpus", r"missing column\(s\) 'num_gpus', 'gpu_time', 'cluster'"),
        (["yesterday,1.0,1,1.0,aa"], HEADER, r"row 1, column 'timestamp': not an ISO date"),
        (["2017-10-01 00:00:00,-5,1,1.0,aa"], HEADER, r"row 1, column 'duration': must be >= 0"),
        (["2017-10-01 00:00:00,abc,1,1.0,aa"], HEADER, r"row 1, column 'duration': not a number"),
        (["2017-10-01 00:00:00,1,0,1.0,aa"], HEADER, r"row 1, column 'num_gpus': must be a pos"),
        (["2017-10-01 00:00:00,1,1.5,1.0,aa"], HEADER, r"column 'num_gpus'"),
        (["2017-10-01 00:00:00,1"], HEADER, r"row 1: 2 of 5 columns"),
    ],
)
def test_malformed_input_names_row_and_column(tmp_path, rows, header, message):
    with pytest.raises(TraceError, match=message):
        import_philly(write(tmp_path, rows, header))


def test_empty_window_and_binary_file(tmp_path, capsys):
    with pytest.raises(TraceError, match="no job in the window 2018-01-01"):
        import_philly(write(tmp_path, JOBS), start="2018-01-01")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    out = tmp_path / "t.csv"
    assert main(["--csv", str(binary), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and not out.exists()


def test_cli_writes_a_replayable_trace(tmp_path, capsys):
    out = tmp_path / "t.csv"
    code = main(
        ["--csv", str(write(tmp_path, JOBS)), "--out", str(out), "--gpus-per-cluster", "8,4"]
    )
    assert code == 0 and "wrote 5 tasks" in capsys.readouterr().out
    env = edge_cluster_v0.parallel_env(
        {
            "clusters": [{"cpu": 32, "gpu": 8}, {"cpu": 16, "gpu": 4}],
            "task_types": [],
            "speed_model": "trace",
            "trace": str(out),
        }
    )
    env.reset(seed=0)
    assert len(env.trace) == 5


def test_trace_window_cuts_seeded_runs_of_consecutive_tasks():
    env = edge_cluster_v0.parallel_env("philly_103959")
    full = env._fixed_trace
    env.reset(seed=3)
    a = env.trace
    assert len(a) == 200 and a.arrival.min() == 0
    start = int(np.flatnonzero(full.task_id == a.task_id[0])[0])
    assert np.array_equal(a.task_id, full.task_id[start : start + 200])
    assert np.array_equal(a.arrival, full.arrival[start : start + 200] - full.arrival[start])
    env.reset(seed=3)
    assert np.array_equal(env.trace.task_id, a.task_id)  # the seed decides
    env.reset(seed=4)
    assert not np.array_equal(env.trace.task_id, a.task_id)
    with pytest.raises(ConfigError, match="trace_window: 5000 tasks, but the trace has 1250"):
        edge_cluster_v0.parallel_env("philly_103959", trace_window=5000)  # at construction


def test_train_and_test_presets_share_shapes_and_never_share_jobs():
    """A policy trained on the early part plays the later part, which it never saw."""
    train = edge_cluster_v0.parallel_env("philly_103959_train")
    test = edge_cluster_v0.parallel_env("philly_103959")
    assert train.dims == test.dims
    assert train._fixed_trace.type_names == test._fixed_trace.type_names
    assert not set(train._fixed_trace.task_id) & set(test._fixed_trace.task_id)
    assert (ROOT / "envs" / "data" / "philly_103959_test.trace.csv").exists()
