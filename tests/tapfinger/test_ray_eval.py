"""Evaluation on Ray gives the serial run's results, reports a failed episode with its seed, and
says how to install Ray when it is missing."""

from __future__ import annotations

import copy
import sys

import pytest

from envs.errors import ConfigError
from tapfinger.eval_types import EpisodeFailed, EpisodeSpec
from tapfinger.evaluation import episode_specs, evaluate, resolve_request, run_episode


def comparable(results: dict) -> dict:
    """results.json without what may differ between runs: timing and how it ran."""
    out = copy.deepcopy(results)
    out.pop("run")
    return out


def test_ray_results_equal_the_serial_results(local_ray):
    args = dict(overrides=["scenario.num_tasks=12"], policies="random,optimus,fifo", episodes=3)
    serial = evaluate(resolve_request("quickstart", **args))
    seen = []
    on_ray = evaluate(resolve_request("quickstart", ray_address="local", **args), seen.append)
    assert comparable(on_ray.results) == comparable(serial.results)
    assert on_ray.results["run"]["ray"] == "local" and serial.results["run"]["ray"] is None
    assert len(seen) == 9  # the progress callback saw every episode


def test_a_failed_episode_is_reported_with_its_seed(local_ray):
    from tapfinger.ray_evaluation import run_episodes_on_ray

    request = resolve_request("quickstart", overrides=["scenario.num_tasks=8"], policies="random")
    good = episode_specs(request)[0]
    bad = EpisodeSpec(policy="no_such_policy", seed=7, scenario=good.scenario, trace=None)
    with pytest.raises(EpisodeFailed, match=r"episode of no_such_policy with seed 7 failed: .*"):
        run_episodes_on_ray([good, bad], run_episode)


def test_without_ray_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r'Ray is not installed: pip install -e "\.\[ray\]"'):
        resolve_request("quickstart", policies="random", ray_address="local")


def test_cli_flag(local_ray, tmp_path, capsys):
    import json

    import evaluate

    out = tmp_path / "ray"
    args = ["--config", "quickstart", "--set", "scenario.num_tasks=8", "--policies", "fifo"]
    assert evaluate.main([*args, "--episodes", "2", "--ray", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["run"]["ray"] == "local"
    assert "best baseline" in capsys.readouterr().out
