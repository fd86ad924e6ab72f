"""Tests of evaluate.py and tapfinger.evaluation: end to end on a tiny scenario, and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import evaluate
from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.trace import generate_trace, save_trace
from tapfinger import eval_types
from tapfinger.config import load_config
from tapfinger.eval_types import EpisodeResult, EpisodeSpec, EvalRequest
from tapfinger.evaluation import run_episode
from tapfinger.playing import play_episode
from tapfinger.policies import make_policy, registry
from tapfinger.statistics import bootstrap_ci, mean_summary, summarize
from tests import ROOT
from tests.conftest import one_error_line

TINY = ["--config", "quickstart", "--set", "scenario.num_tasks=12", "--episodes", "3"]


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = evaluate.main([*args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One serial evaluation of the tiny scenario, shared by the read-back tests."""
    out = tmp_path_factory.mktemp("eval") / "serial"
    assert evaluate.main([*TINY, "--policies", "random", "--seed", "5", "--out", str(out)]) == 0
    return out


def test_results_json_read_back(tiny_run: Path) -> None:
    for name in eval_types.OUTPUT_FILES:
        assert (tiny_run / name).stat().st_size > 0, name
    res = json.loads((tiny_run / "results.json").read_text())
    assert res["schema_version"] == eval_types.SCHEMA_VERSION
    assert res["seeds"] == [5, 6, 7]
    assert res["config"]["scenario"]["num_tasks"] == 12
    assert res["config"]["eval"]["episodes"] == 3
    assert res["config"]["eval"]["policies"] == ["random"]
    assert res["best_baseline"] == "random"
    p = res["policies"]["random"]
    assert p["episodes"] == 3
    per = p["per_episode"]
    assert per["seed"] == [5, 6, 7]
    assert per["tasks_finished"] == [12.0, 12.0, 12.0]
    # Headline numbers are the means of the per-episode metrics.
    for key in ("mean_jct", "p95_jct", "makespan", "lower_bound_ratio"):
        assert p[key] == pytest.approx(np.mean(per[key]))
    low, high = p["mean_jct_ci"]
    assert low <= p["mean_jct"] <= high
    assert min(per["mean_jct"]) <= low and high <= max(per["mean_jct"])
    assert p["p50_jct"] <= p["p95_jct"] <= p["p99_jct"]
    assert p["lower_bound_ratio"] >= 1.0
    for kind in ("cpu", "gpu"):
        assert 0.0 < p[f"utilization_{kind}"] <= 1.0
    # The best baseline's paired difference to itself is exactly zero.
    assert p["diff_to_best"] == 0.0 and p["diff_to_best_ci"] == [0.0, 0.0]
    with open(tiny_run / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["policy"] for r in rows] == ["random"]
    assert float(rows[0]["mean_jct"]) == pytest.approx(p["mean_jct"])
    with open(tiny_run / "episodes.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    report = (tiny_run / "report.md").read_text()
    assert "| random (best) |" in report and "mean_jct.png" in report


def test_plots_decode_at_their_figure_size(tiny_run: Path) -> None:
    """Each PNG decodes, and its pixel size is its figure size at 100 dpi (one policy, two
    resource kinds on quickstart), so a blank or truncated file cannot pass."""
    expected = {
        "mean_jct.png": (400, 400),
        "jct_cdf.png": (400, 600),
        "utilization.png": (480, 600),
    }
    for name, (height, width) in expected.items():
        pixels = imread(tiny_run / name)
        assert pixels.shape[:2] == (height, width), name
        assert pixels.std() > 0.01, f"{name} is blank"


def test_workers_give_the_serial_results(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "parallel"
    code, stdout, _ = run_cli(
        capsys, *TINY, "--policies", "random", "--seed", "5", "--workers", "2", "--out", str(out)
    )
    assert code == 0
    assert "| random (best) |" in stdout and "wall time" in stdout
    serial = json.loads((tiny_run / "results.json").read_text())
    parallel = json.loads((out / "results.json").read_text())
    assert parallel["run"]["workers"] == 2
    for key in ("policies", "best_baseline", "seeds", "config"):
        assert parallel[key] == serial[key], key


def test_trace_is_replayed_every_episode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = load_config("quickstart", ["scenario.num_tasks=10"])
    trace_file = tmp_path / "tiny.csv"
    save_trace(generate_trace(cfg.scenario, np.random.default_rng(3)), trace_file)
    out = tmp_path / "out"
    code, _, _ = run_cli(
        capsys, *TINY, "--policies", "random", "--trace", str(trace_file), "--out", str(out)
    )
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["trace"] == str(trace_file.resolve())
    assert res["config"]["scenario"]["trace"] == str(trace_file.resolve())
    per = res["policies"]["random"]["per_episode"]
    assert per["tasks"] == [10.0, 10.0, 10.0]
    # The same tasks in every episode: the per-task lower bound does not depend on the seed.
    assert len(set(per["lower_bound_mean_jct"])) == 1


def _episode(policy: str, seed: int, mean_jct: float) -> EpisodeResult:
    summary = {m: 1.0 for m in eval_types.EPISODE_METRICS}
    summary["mean_jct"] = mean_jct
    return EpisodeResult(policy, seed, summary, np.array([mean_jct]), False, 0.0)


def test_best_baseline_and_paired_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three policies of the test's own, in a copy of the registry that the test leaves behind.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register("a")(type("A", (), {}))
    registry.register("b")(type("B", (), {}))
    registry.register("seer", oracle=True)(type("Seer", (), {}))
    names = ["a", "b", "seer", "tapfinger"]
    request = EvalRequest(config=load_config("quickstart"), policies=names, seeds=[0, 1, 2, 3])
    jcts = {
        "a": [10.0, 12.0, 14.0, 16.0],
        "b": [9.0, 11.0, 12.0, 13.0],  # the best baseline
        "seer": [1.0, 1.0, 1.0, 1.0],  # better, but an oracle
        "tapfinger": [2.0, 2.0, 3.0, 3.0],  # better, but learned
    }
    results = [_episode(n, s, jcts[n][s]) for n in names for s in range(4)]
    out = summarize(request, results[::-1])  # the input order does not matter
    assert out["best_baseline"] == "b"
    pols = out["policies"]
    assert pols["a"]["mean_jct"] == pytest.approx(13.0)
    assert pols["a"]["diff_to_best"] == pytest.approx(1.75)  # mean of 1, 1, 2, 3
    low, high = pols["a"]["diff_to_best_ci"]
    assert 1.0 <= low <= 1.75 <= high <= 3.0
    assert pols["tapfinger"]["diff_to_best"] == pytest.approx(-8.75)
    assert pols["seer"]["oracle"] and pols["tapfinger"]["learned"]
    assert pols["b"]["diff_to_best_ci"] == (0.0, 0.0)


def test_bootstrap_ci_is_seeded_and_handles_small_samples() -> None:
    x = [3.0, 5.0, 4.0, 9.0, 7.0]
    assert bootstrap_ci(x, seed=1) == bootstrap_ci(x, seed=1)
    low, high = bootstrap_ci(x, seed=1)
    assert 3.0 <= low <= np.mean(x) <= high <= 9.0
    assert bootstrap_ci([4.0]) is None
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_ci([1.0, float("nan")]) is None


def test_play_episode_with_a_live_policy_matches_run_episode() -> None:
    """The training loop plays a policy it holds: the same episode as a spec's, under its name."""
    cfg = load_config("quickstart", ["scenario.num_tasks=12"])
    env = EdgeClusterEnv(cfg.scenario)
    policy = make_policy("fifo", env)
    first = play_episode(env, policy, 4, record_utilization=True)
    again = play_episode(env, policy, 4)  # the same env and policy, reset with the seed again
    spec = EpisodeSpec(policy="fifo", seed=4, scenario=cfg.scenario, record_utilization=True)
    fresh = run_episode(spec)
    assert first.policy == again.policy == fresh.policy == "fifo"
    assert first.summary == again.summary == fresh.summary
    assert first.summary["tasks_finished"] == 12 and not first.truncated
    np.testing.assert_array_equal(first.jct, fresh.jct)
    np.testing.assert_array_equal(first.util_alloc, fresh.util_alloc)
    assert again.util_slots is None
    assert play_episode(env, policy, 4, name="fifo-eval").policy == "fifo-eval"


def test_mean_summary_averages_each_key() -> None:
    out = mean_summary([{"mean_jct": 2.0, "tasks": 10}, {"mean_jct": 4.0, "tasks": 12}])
    assert out == {"mean_jct": 3.0, "tasks": 11.0}
    assert all(type(v) is float for v in out.values())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--policies", "random,nosuch"], "unknown policy 'nosuch' (known: "),
        (["--policies", "random", "--config", "no/such.yaml"], "config file not found"),
        (["--policies", "random", "--trace", "no/such.csv"], "trace file not found"),
        (["--policies", "random", "--checkpoint", "no/such.pt"], "checkpoint file not found"),
        (["--policies", "random", "--episodes", "0"], "--episodes must be at least 1"),
        (["--policies", "random", "--workers", "0"], "--workers must be at least 1"),
        (["--policies", "random", "--set", "scenario.nosuch=1"], "unknown key 'scenario.nosuch'"),
        (["--policies", "random", "--episodes", "two"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, *TINY, *args, "--out", str(out))
    assert code == 2
    line = one_error_line(err)
    assert needle in line
    if "unknown policy" in needle:
        assert "random" in line.split("known: ")[1]  # the known names are listed
    assert stdout == ""
    assert not out.exists()


def test_existing_results_are_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("keep me")
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, *TINY, "--policies", "random", "--out", str(out))
    assert code == 2
    assert "--overwrite" in one_error_line(err)
    assert (out / "results.json").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.json"]
    code, _, _ = run_cli(
        capsys, *TINY, "--policies", "random", "--episodes", "2", "--out", str(out), "--overwrite"
    )
    assert code == 0
    assert json.loads((out / "results.json").read_text())["episodes"] == 2
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_process_exit_code() -> None:
    proc = subprocess.run(
        [sys.executable, "evaluate.py", "--config", "quickstart", "--episodes", "0", "--out", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--episodes must be at least 1" in one_error_line(proc.stderr)


def test_identical_episodes_still_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A deterministic policy on a replayed trace gives the same JCT every episode: the
    interval is [v, v] (a rounding error away from the mean) and the plots must still draw."""
    cfg = load_config("quickstart", ["scenario.num_tasks=10"])
    trace_file = tmp_path / "tiny.csv"
    save_trace(generate_trace(cfg.scenario, np.random.default_rng(5)), trace_file)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, *TINY, "--policies", "fifo,optimus", "--trace", str(trace_file), "--out", str(out)
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    low, high = res["policies"]["fifo"]["mean_jct_ci"]
    assert low == pytest.approx(high)
    assert imread(out / "mean_jct.png").shape[:2] == (400, 400)
