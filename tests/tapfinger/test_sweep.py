"""Sweeps: the grid, one folder per run, resumable, a summary over seeds; on Ray or serially."""

from __future__ import annotations

import json

import pytest

from envs.errors import ConfigError
from tapfinger.sweep import main, parse_grid, parse_seeds, t_interval
from tests.tapfinger.algorithms.test_mappo import SMOKE


def test_grid_seeds_and_interval():
    assert parse_grid(["a=x,y", "b=1"]) == [["a=x", "b=1"], ["a=y", "b=1"]]
    assert parse_grid([]) == [[]]
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_grid(["a"])
    assert parse_seeds("1, 2,3") == [1, 2, 3]
    with pytest.raises(ConfigError, match="distinct integers"):
        parse_seeds("1,1")
    low, high = t_interval([1.0, 2.0, 3.0])
    assert low == pytest.approx(2 - 4.302653 / 3**0.5) and high == pytest.approx(
        2 + 4.302653 / 3**0.5
    )
    assert t_interval([1.0]) is None


def sweep(tmp_path, *extra):
    out = tmp_path / "sweep"
    args = ["--config", str(SMOKE), "--seeds", "1,2", "--set", "train.lr=0.001,0.0003"]
    args += ["--set", "train.total_steps=64", "--out", str(out), *extra]
    return main(args), out


def test_serial_sweep_folders_summary_and_resume(tmp_path, capsys):
    code, out = sweep(tmp_path, "--serial")
    assert code == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == [
        f"train.lr={lr},train.total_steps=64__s{s}" for lr in ("0.0003", "0.001") for s in (1, 2)
    ]
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["setting"]: r for r in summary["rows"]}
    assert len(rows) == 2
    for folder in folders:
        run = json.loads((out / folder / "summary.json").read_text())
        setting, seed = folder.rsplit("__s", 1)
        assert run["seed"] == int(seed) and run["global_step"] >= 64
        assert run["best_eval_mean_jct"] in rows[setting]["best_eval_mean_jct"]
    printed = capsys.readouterr().out
    assert "| setting |" in printed and "summary.md" in printed
    before = {f: (out / f / "summary.json").stat().st_mtime for f in folders}
    assert sweep(tmp_path, "--serial")[0] == 0  # finished runs are reused, not redone
    assert before == {f: (out / f / "summary.json").stat().st_mtime for f in folders}
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]


def test_sweep_on_ray_matches_serial(tmp_path):
    ray = pytest.importorskip("ray")
    code, out = sweep(tmp_path / "serial", "--serial")
    assert code == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code, on_ray = sweep(tmp_path / "ray")
    finally:
        ray.shutdown()
    assert code == 0
    a = json.loads((out / "summary.json").read_text())["rows"]
    b = json.loads((on_ray / "summary.json").read_text())["rows"]
    for x, y in zip(a, b):
        assert x["setting"] == y["setting"] and x["best_eval_mean_jct"] == y["best_eval_mean_jct"]


def test_bad_key_fails_before_any_run(tmp_path, capsys):
    out = tmp_path / "bad"
    code = main(["--config", str(SMOKE), "--set", "train.nope=1,2", "--out", str(out), "--serial"])
    assert code == 2 and "train.nope" in capsys.readouterr().err and not out.exists()
