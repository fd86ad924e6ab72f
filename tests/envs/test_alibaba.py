"""The Alibaba GPU trace importer (envs/alibaba*.py) and the ``alibaba_openb`` preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs import edge_cluster_v0
from envs.alibaba import TASK_TYPES, import_alibaba, main, read_nodes, select_nodes
from envs.errors import TraceError
from envs.scenario import ClusterSpec, load_scenario
from envs.trace import load_trace
from tests import ROOT

VENDORED = ROOT / "envs" / "data" / "alibaba_openb.trace.csv"
SHARED = ROOT.parent / "shared" / "data" / "alibaba-gpu-v2023"

POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time"
)
# Sorted by (model, sn): n-cpu, n-g2, n-t4 -> clusters 0, 1, 0 with num_clusters=2.
NODES = """sn,cpu_milli,memory_mib,gpu,model
n-t4,16000,32768,2,T4
n-cpu,32000,65536,0,
n-g2,96000,393216,8,G2
"""
# The trace's end is the largest deletion_time: 10000.
PODS = [
    "p0,4000,8192,0,0,,BE,Succeeded,120,300,120",  # cpu, slot 2
    "p1,2500,1500,1,470,,LS,Running,185,186,185",  # gpu_share, 1 s lifetime
    "p2,12000,40000,1,1000,,LS,Failed,600,600,600",  # 40 GiB: only the G2 node hosts it
    "p3,8000,16384,2,1000,,LS,Pending,1000,1090,",  # never scheduled
    "p4,1000,1024,1,1000,,LS,Running,60,10000,60",  # long-running service (earliest pod)
    "p5,1000,1024,1,1000,G2,LS,Succeeded,5000,10000,5000",  # gpu_spec G2
    "p6,0,0,1,50,,BE,Running,150,9000,150",  # Running but deleted before the end
]


def write(tmp_path: Path, pods: list[str], nodes: str = NODES, header: str = POD_HEADER):
    pod_csv, node_csv = tmp_path / "pods.csv", tmp_path / "nodes.csv"
    pod_csv.write_text(header + "\n" + "\n".join(pods) + "\n")
    node_csv.write_text(nodes)
    return pod_csv, node_csv


def by_id(trace, task_id: int) -> int:
    return int(np.flatnonzero(trace.task_id == task_id)[0])


def first_fit(obs: dict) -> np.ndarray:
    """The first startable task of the window at its minimum allocation (else the no-op)."""
    valid = np.flatnonzero(obs["cpu_mask"][1:].any(axis=1)) + 1
    i = int(valid[0]) if len(valid) else 0
    return np.array([i, int(np.argmax(obs["cpu_mask"][i])), int(np.argmax(obs["gpu_mask"][i]))])


def run_import(tmp_path: Path, pods: list[str] = PODS, **kw):
    pod_csv, node_csv = write(tmp_path, pods)
    kw = {"num_clusters": 2, "node_fraction": 1.0, **kw}
    return import_alibaba(pod_csv, node_csv, **kw)


def test_clusters_pool_their_nodes(tmp_path):
    res = run_import(tmp_path)
    assert res.nodes == [["n-cpu", "n-t4"], ["n-g2"]]
    assert res.clusters == [ClusterSpec(cpu=48, gpu=20, mem=96), ClusterSpec(96, 80, 384)]


def test_pods_become_tasks_exactly(tmp_path):
    res = run_import(tmp_path)
    tr = res.trace
    assert sorted(tr.task_id.tolist()) == [0, 1, 2, 3, 5, 6]  # p4 dropped (long-running)
    expect = {
        # task: (arrival, work, (min_cpu, min_gpu, mem), type, visible clusters)
        0: (0, 3, (4, 0, 8), "cpu", [0, 1]),
        1: (1, 1, (3, 5, 2), "gpu_share", [0, 1]),
        2: (8, 1, (12, 10, 40), "gpu_1", [1]),
        3: (14, 2, (8, 20, 16), "gpu_multi", [0, 1]),
        5: (81, 84, (1, 10, 1), "gpu_1", [1]),
        6: (0, 148, (1, 1, 0), "gpu_share", [0, 1]),
    }
    for tid, (arrival, work, demand, ttype, vis) in expect.items():
        i = by_id(tr, tid)
        assert int(tr.arrival[i]) == arrival, tid
        assert float(tr.work[i]) == work, tid
        assert tuple(tr.min_demand[i].tolist()) == demand, tid
        assert tuple(tr.cap[i].tolist()) == demand[:2], tid  # rigid: max = min
        assert tr.type_names[int(tr.type_idx[i])] == ttype, tid
        assert np.flatnonzero(tr.visible[i]).tolist() == vis, tid
    assert tr.arrival.tolist() == sorted(tr.arrival.tolist())
    assert res.stats["long_running"] == 1 and res.stats["dropped_long_running"] == 1
    assert res.stats["tasks"] == 6 and res.stats["pending"] == 1


def test_long_running_cap_keeps_them_capped(tmp_path):
    res = run_import(tmp_path, long_running="cap", max_lifetime_s=600)
    tr = res.trace
    assert len(tr) == 7 and res.stats["capped_long_running"] == 1
    i = by_id(tr, 4)
    assert float(tr.work[i]) == 10  # 600 s cap, not the 9,940 s to the trace's end
    # p4 is now the first arrival (slot 1), so the re-basing moves by one slot less.
    assert int(tr.arrival[i]) == 0
    assert int(tr.arrival[by_id(tr, 0)]) == 1


def test_pending_pods_keep_or_drop(tmp_path):
    kept = run_import(tmp_path)
    assert 3 in kept.trace.task_id
    dropped = run_import(tmp_path, pending="drop")
    assert 3 not in dropped.trace.task_id
    assert dropped.stats["dropped_pending"] == 1


def test_slot_seconds_changes_units(tmp_path):
    tr = run_import(tmp_path, slot_seconds=120.0).trace
    assert int(tr.arrival[by_id(tr, 5)]) == 5000 // 120 - 1
    assert float(tr.work[by_id(tr, 5)]) == 42  # ceil(5000 / 120)


def test_unhostable_pod_names_its_row(tmp_path):
    pods = [*PODS, "big,200000,1024,0,0,,BE,Succeeded,10,20,10"]
    with pytest.raises(TraceError, match=r"row 8 \(big\), cpu 200 cores.*no node of the node list"):
        run_import(tmp_path, pods)
    with pytest.raises(TraceError, match=r"row 6 \(p5\).*gpu_spec G2"):
        # With the 8-GPU node of another model, p5 (gpu_spec G2) has nowhere to go.
        pod_csv, node_csv = write(tmp_path, PODS, NODES.replace(",8,G2", ",8,V100"))
        import_alibaba(pod_csv, node_csv, num_clusters=2, node_fraction=1.0)


@pytest.mark.parametrize(
    ("row", "column", "bad", "message"),
    [
        (2, "cpu_milli", "2.5", "expected an integer"),
        (3, "memory_mib", "-5", "must be >= 0"),
        (1, "creation_time", "", "expected an integer"),
        (4, "pod_phase", "Sleeping", "is not one of"),
        (5, "deletion_time", "1", "before creation_time"),
        (6, "gpu_milli", "0", "must be in 1..1000"),
    ],
)
def test_malformed_pod_row_names_file_row_and_column(tmp_path, row, column, bad, message):
    columns = POD_HEADER.split(",")
    pods = list(PODS)
    cells = pods[row - 1].split(",")
    cells[columns.index(column)] = bad
    pods[row - 1] = ",".join(cells)
    with pytest.raises(TraceError) as err:
        run_import(tmp_path, pods)
    text = str(err.value)
    assert "pods.csv" in text and f"row {row}, column '{column}'" in text and message in text


def test_missing_columns_are_all_named_with_the_reason(tmp_path):
    # The request snapshots (openb_pod_list_multigpu*.csv) have only these five columns.
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli"
    pods = [",".join(p.split(",")[:5]) for p in PODS]
    with pytest.raises(TraceError) as err:
        import_alibaba(*write(tmp_path, pods, header=header), num_clusters=2, node_fraction=1.0)
    text = str(err.value)
    missing = "'gpu_spec', 'pod_phase', 'creation_time', 'deletion_time', 'scheduled_time'"
    assert f"pods.csv: header: missing columns {missing}" in text
    assert "arrival and lifetime" in text and "can be packed but not replayed" in text
    # qos is not read: a list without it replays.
    header = POD_HEADER.replace(",qos", "")
    pods = [",".join(p.split(",")[:6] + p.split(",")[7:]) for p in PODS]
    assert len(
        import_alibaba(
            *write(tmp_path, pods, header=header), num_clusters=2, node_fraction=1.0
        ).trace
    )


def test_short_row(tmp_path):
    short = [*PODS[:2], "p2,12000,40000,1"]
    with pytest.raises(TraceError, match=r"row 3, column 'gpu_milli': missing"):
        run_import(tmp_path, short)


def test_malformed_node_row(tmp_path):
    nodes = NODES.replace("n-cpu,32000,65536,0,", "n-cpu,32000,lots,0,")
    pod_csv, node_csv = write(tmp_path, PODS, nodes)
    with pytest.raises(TraceError, match=r"nodes\.csv: row 2, column 'memory_mib'"):
        import_alibaba(pod_csv, node_csv, num_clusters=2, node_fraction=1.0)


def test_node_subsample_is_stratified_and_deterministic(tmp_path):
    lines = ["sn,cpu_milli,memory_mib,gpu,model"]
    lines += [f"a{i:03d},8000,8192,1,A" for i in range(100)]
    lines += [f"b{i:03d},8000,8192,2,B" for i in range(3)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    nodes = read_nodes(path)
    kept = select_nodes(nodes, 0.05, seed=0)
    assert [n.model for n in kept].count("A") == 5
    assert [n.model for n in kept].count("B") == 1  # every model keeps at least one node
    assert [n.sn for n in kept] == [n.sn for n in select_nodes(nodes, 0.05, seed=0)]
    assert [n.sn for n in kept] != [n.sn for n in select_nodes(nodes, 0.05, seed=1)]
    with pytest.raises(ValueError, match="node_fraction"):
        select_nodes(nodes, 0.0, seed=0)


def test_cli_writes_a_loadable_trace(tmp_path, capsys):
    pod_csv, node_csv = write(tmp_path, PODS)
    out = tmp_path / "t.csv"
    args = ["--pods", str(pod_csv), "--nodes", str(node_csv), "--out", str(out)]
    assert main([*args, "--num-clusters", "2", "--node-fraction", "1"]) == 0
    assert "{cpu: 48, gpu: 20, mem: 96}" in capsys.readouterr().out
    assert len(load_trace(out, num_clusters=2)) == 6
    assert main([*args, "--num-clusters", "9", "--node-fraction", "1"]) == 2
    assert "raise node_fraction" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(128, 256)), "not a text file"),
        (None, "is a folder, not a file"),
        (b"", "empty file"),
        (b"name," + b"x" * 200_000, "not valid CSV"),  # past csv's field size limit
    ],
    ids=["binary", "folder", "empty", "bad-csv"],
)
def test_cli_unreadable_file_is_one_line(tmp_path, capsys, content, message):
    _pod_csv, node_csv = write(tmp_path, PODS)
    bad = tmp_path / "bad.csv"
    if content is None:
        bad.mkdir()
    else:
        bad.write_bytes(content)
    out = tmp_path / "t.csv"
    assert main(["--pods", str(bad), "--nodes", str(node_csv), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and message in err, err
    assert not out.exists()


def test_vendored_trace_fits_the_preset():
    scenario = load_scenario("alibaba_openb")
    assert scenario.speed_model == "trace" and scenario.num_clusters == 8
    assert Path(scenario.trace).resolve() == VENDORED.resolve()
    assert VENDORED.stat().st_size < 1_000_000
    trace = load_trace(VENDORED, num_clusters=scenario.num_clusters)
    assert len(trace) == 8118
    assert set(trace.type_names) <= set(TASK_TYPES)
    trace.check_fits(scenario, "alibaba_openb")
    assert (trace.cap == trace.min_demand[:, :2]).all()
    assert int((trace.arrival + trace.work).max()) < scenario.max_slots


def test_preset_env_starts_tasks():
    env = edge_cluster_v0.parallel_env(scenario="alibaba_openb", infos="full")
    obs, _ = env.reset(seed=0)
    started = 0
    for _ in range(50):
        actions = {agent: first_fit(obs[agent]) for agent in env.agents}
        obs, _, _, _, infos = env.step(actions)
        env.check_invariants()
        started += sum(info["started"] for info in infos.values())
    assert started > 0 and env.sim.slot > 0


@pytest.mark.skipif(not SHARED.exists(), reason=f"real Alibaba data not found at {SHARED}")
def test_reimport_reproduces_vendored_trace_and_preset(tmp_path):
    out = tmp_path / "alibaba_openb.trace.csv"
    pods = SHARED / "openb_pod_list_default.csv"
    nodes = SHARED / "openb_node_list_all_node.csv"
    res = import_alibaba(pods, nodes)
    assert main(["--pods", str(pods), "--nodes", str(nodes), "--out", str(out)]) == 0
    assert out.read_bytes() == VENDORED.read_bytes()
    assert res.clusters == load_scenario("alibaba_openb").clusters
    assert res.stats["dropped_long_running"] == 34 and res.stats["pending"] == 897


@pytest.mark.slow
def test_full_replay_finishes_every_task():
    env = edge_cluster_v0.parallel_env(scenario="alibaba_openb", infos="full")
    obs, _ = env.reset(seed=0)
    infos: dict = {}
    while env.agents:
        actions = {agent: first_fit(obs[agent]) for agent in env.agents}
        obs, _, _, _, infos = env.step(actions)
    assert env.sim.done
    assert infos["cluster_0"]["episode"]["tasks_finished"] == 8118


def test_pods_no_node_can_host_get_the_right_advice_and_can_be_dropped(tmp_path):
    # 64 GiB on a T4: the only T4 node has 32 GiB, so no node_fraction can help.
    pods = [*PODS, "p7,4000,65536,1,1000,T4,LS,Succeeded,700,900,700"]
    with pytest.raises(TraceError) as err:
        run_import(tmp_path, pods)
    text = str(err.value)
    assert "row 8 (p7)" in text and "gpu_spec T4" in text
    assert "no node of the node list can host it, at any node_fraction" in text
    assert "--unhostable drop" in text and "raise node_fraction" not in text
    result = run_import(tmp_path, pods, unhostable="drop")
    assert result.stats["unhostable"] == result.stats["dropped_unhostable"] == 1
    assert 7 not in result.trace.task_id and len(result.trace) == len(run_import(tmp_path).trace)
    code = main(
        [
            "--pods",
            str(tmp_path / "pods.csv"),
            "--nodes",
            str(tmp_path / "nodes.csv"),
            "--out",
            str(tmp_path / "t.csv"),
            "--num-clusters",
            "2",
            "--node-fraction",
            "1.0",
            "--unhostable",
            "drop",
        ]
    )
    assert code == 0


def test_a_pod_only_the_subsample_cannot_host_says_raise_node_fraction():
    from envs.alibaba_csv import Node, Pod
    from envs.alibaba_tasks import pods_to_trace

    small = Node("small", 8, 10, 16, "T4")
    big = Node("big", 64, 20, 256, "T4")
    pod = Pod(1, "p", 32000, 8192, 1, 1000, ("T4",), "Succeeded", 0, 60, 0)
    kw = dict(source=Path("pods.csv"), slot_seconds=60.0, long_running="drop")
    kw.update(max_lifetime_s=1e9, pending="keep")
    with pytest.raises(TraceError, match=r"no kept node can host it; 1 node\(s\) of the node "):
        pods_to_trace([pod], [[small]], all_nodes=[small, big], unhostable="drop", **kw)
    trace, _ = pods_to_trace([pod], [[big]], all_nodes=[small, big], **kw)
    assert len(trace) == 1
