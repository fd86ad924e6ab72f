"""The report says what its numbers cannot: nothing ever waited (no best baseline), and exact
ties, explained when the requests are rigid."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

import evaluate
from envs.trace import generate_trace
from tapfinger import eval_types
from tapfinger.config import load_config
from tapfinger.eval_types import EpisodeResult, EvalRequest
from tapfinger.report_notes import exact_ties, rigid_requests
from tapfinger.statistics import summarize


def episode(policy: str, seed: int, mean_jct: float, waiting: float) -> EpisodeResult:
    summary = {m: 1.0 for m in eval_types.EPISODE_METRICS}
    summary.update(mean_jct=mean_jct, mean_waiting=waiting)
    return EpisodeResult(policy, seed, summary, np.array([mean_jct]), False, 0.0)


def test_exact_ties_group_in_table_order():
    jct = {
        "fifo": np.array([3.0, 4.0]),
        "tiresias": np.array([3.0, 4.0]),
        "random": np.array([5.0, 6.0]),
        "drf": np.array([3.0, 4.0]),
        "min": np.array([5.0, 6.0]),
        "sjf": np.array([3.0, 4.5]),
    }
    assert exact_ties(jct) == [["fifo", "tiresias", "drf"], ["random", "min"]]
    assert exact_ties({"a": np.array([1.0]), "b": np.array([2.0])}) == []


def test_rigid_requests_from_types_or_trace():
    cfg = load_config("quickstart").scenario
    assert not rigid_requests(cfg, None)
    trace = generate_trace(cfg, np.random.default_rng(0))
    assert not rigid_requests(cfg, trace)
    rigid = replace(trace, cap=trace.min_demand[:, :2].copy())
    assert rigid_requests(cfg, rigid)


def test_rigid_ties_are_explained_and_a_best_is_named():
    cfg = load_config("quickstart")
    trace = generate_trace(cfg.scenario, np.random.default_rng(0))
    trace = replace(trace, cap=trace.min_demand[:, :2].copy())
    names = ["fifo", "tiresias", "random", "min", "optimus"]
    request = EvalRequest(config=cfg, policies=names, seeds=[0, 1], trace=trace)
    jct = {"fifo": 3.0, "tiresias": 3.0, "random": 5.0, "min": 5.0, "optimus": 2.5}
    out = summarize(request, [episode(n, s, jct[n] + s, 1.0) for n in names for s in (0, 1)])
    assert out["best_baseline"] == "optimus" and not out["nothing_waited"]
    assert out["rigid_requests"] and out["ties"] == [["fifo", "tiresias"], ["random", "min"]]
    (note,) = out["notes"]
    assert "fifo = tiresias; random = min" in note and "rigid" in note


def test_nothing_waited_names_no_best(tmp_path: Path, capsys):
    """Two tasks far apart on idle clusters: nobody waits, so no policy is 'best'."""
    out = tmp_path / "idle"
    args = ["--config", "quickstart", "--set", "scenario.num_tasks=2"]
    args += ["--set", "scenario.arrival_rate=0.01", "--policies", "fifo,random,optimus"]
    assert evaluate.main([*args, "--episodes", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["nothing_waited"] and res["best_baseline"] is None
    assert all(p["diff_to_best"] is None for p in res["policies"].values())
    assert "best baseline: n/a" in printed and "note: No task waited" in printed
    assert "note: No task waited" in (out / "report.md").read_text()
