"""End-to-end tests of train.py and evaluate.py with a checkpoint, on configs/smoke.yaml.

Two training iterations into a temporary run folder, resume, determinism on the CPU, evaluation
of the checkpoint against a baseline, one iteration of every mode and ablation, and bad input:
unknown config keys, checkpoints of another scenario or of another network, files that are no
checkpoint, and run folders that already hold a run. Every bad input is one ``error: ...`` line
and exit code 2, and nothing on disk changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import evaluate
import train
from envs import edge_cluster_v0
from tapfinger.checkpoint import load_checkpoint
from tapfinger.config import config_to_dict, load_config
from tapfinger.eval_types import TRAIN_SEED_BASE
from tapfinger.export import export
from tapfinger.export import main as export_main
from tapfinger.policies import make_policy
from tapfinger.training import Trainer
from tests import ROOT
from tests.conftest import one_error_line

SMOKE = str(ROOT / "configs" / "smoke.yaml")
STEPS_PER_ITERATION = 64  # smoke: num_envs 2 x rollout_steps 32


def run_train(*args: str) -> int:
    """train.py in this process, quiet and on the CPU."""
    return train.main([*args, "--no-progress", "--device", "cpu"])


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two iterations of train.py on the smoke config (read-only for the tests below)."""
    run_dir = tmp_path_factory.mktemp("train") / "smoke"
    assert run_train("--config", SMOKE, "--run-dir", str(run_dir)) == 0
    return run_dir


def test_run_folder_holds_config_events_checkpoints_summary(smoke_run: Path) -> None:
    saved = yaml.safe_load((smoke_run / "config.yaml").read_text())
    assert saved == config_to_dict(load_config(SMOKE))
    assert load_config(smoke_run / "config.yaml") == load_config(SMOKE)

    latest = load_checkpoint(smoke_run / "checkpoints" / "latest.pt")
    best = load_checkpoint(smoke_run / "checkpoints" / "best.pt")
    assert latest["counters"]["global_step"] == 2 * STEPS_PER_ITERATION
    assert latest["counters"]["iteration"] == 2
    assert best["counters"]["global_step"] == 2 * STEPS_PER_ITERATION  # the only evaluation
    assert latest["config"] == saved

    summary = json.loads((smoke_run / "summary.json").read_text())
    assert summary["scenario"] == "smoke"
    assert summary["global_step"] == 2 * STEPS_PER_ITERATION
    assert summary["best_step"] == 2 * STEPS_PER_ITERATION
    assert set(summary["last_eval_mean_jct"]) == {"tapfinger", "random"}
    assert summary["best_eval_mean_jct"] == summary["last_eval_mean_jct"]["tapfinger"]

    assert len(list(smoke_run.glob("events.out.tfevents.*"))) == 1
    sps = scalars(smoke_run, "charts/SPS")
    assert [s for s, _ in sps] == [STEPS_PER_ITERATION, 2 * STEPS_PER_ITERATION]
    for tag in (
        "losses/policy_loss",
        "losses/value_loss",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
        "eval/tapfinger/avg_jct",
        "eval/random/avg_jct",
        "sched/avg_jct",
    ):
        assert all(np.isfinite(v) for _, v in scalars(smoke_run, tag)), tag


def test_resume_continues_the_counters(smoke_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "resumed"
    shutil.copytree(smoke_run, run_dir)
    before = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    more = 4 * STEPS_PER_ITERATION
    cfg = load_config(SMOKE)
    assert run_train("--resume", str(run_dir), "--set", f"train.total_steps={more}") == 0
    after = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    c0, c1 = before["counters"], after["counters"]
    assert c1["global_step"] == more
    assert c1["iteration"] == 4
    # Every training episode takes the next seed: the run's first seed, one per env at each
    # (re)start, one per finished episode. Resuming draws fresh seeds, never replayed ones.
    first_seed = TRAIN_SEED_BASE + 100_000 * cfg.train.seed
    assert c0["next_seed"] == first_seed + cfg.train.num_envs + c0["episodes"]
    assert c1["next_seed"] == c0["next_seed"] + cfg.train.num_envs + c1["episodes"] - c0["episodes"]
    assert c1["episodes"] == json.loads((run_dir / "summary.json").read_text())["episodes"]
    assert c1["episodes"] > c0["episodes"] > 0
    # The optimizer was restored, not restarted: Adam's step count keeps growing.
    steps_before = {float(s["step"]) for s in before["optimizer"]["state"].values()}
    steps_after = {float(s["step"]) for s in after["optimizer"]["state"].values()}
    assert len(steps_before) == 1 and steps_after == {2 * steps_before.pop()}
    assert any(not torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == more
    steps = [s for s, _ in scalars(run_dir, "charts/SPS")]
    assert steps == [STEPS_PER_ITERATION * i for i in (1, 2, 3, 4)]


def test_same_seed_gives_the_same_weights(smoke_run: Path, tmp_path: Path) -> None:
    assert run_train("--config", SMOKE, "--run-dir", str(tmp_path / "again")) == 0
    first = load_checkpoint(smoke_run / "checkpoints" / "latest.pt")["model"]
    again = load_checkpoint(tmp_path / "again" / "checkpoints" / "latest.pt")["model"]
    assert first.keys() == again.keys()
    for key in first:
        assert torch.equal(first[key], again[key]), key
    other = tmp_path / "other"
    assert run_train("--config", SMOKE, "--set", "train.seed=2", "--run-dir", str(other)) == 0
    changed = load_checkpoint(other / "checkpoints" / "latest.pt")["model"]
    assert any(not torch.equal(first[k], changed[k]) for k in first)


def test_evaluate_the_checkpoint(
    smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "eval"
    code = evaluate.main(
        [
            "--config",
            SMOKE,
            "--policies",
            "tapfinger,random",
            "--checkpoint",
            str(smoke_run / "checkpoints" / "latest.pt"),
            "--episodes",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert set(results["policies"]) == {"tapfinger", "random"}
    for name in ("tapfinger", "random"):
        per = results["policies"][name]["per_episode"]
        assert per["seed"] == [0, 1]
        assert per["tasks_finished"] == [12.0, 12.0], name
    assert "tapfinger" in capsys.readouterr().out

    # Worker processes (spawned: they load the policy registry and the checkpoint themselves)
    # give exactly the serial results.
    par = tmp_path / "eval_workers"
    code = evaluate.main(
        [
            "--config",
            SMOKE,
            "--policies",
            "tapfinger",
            "--checkpoint",
            str(smoke_run / "checkpoints" / "latest.pt"),
            "--episodes",
            "2",
            "--workers",
            "2",
            "--out",
            str(par),
        ]
    )
    assert code == 0, capsys.readouterr().err
    parallel = json.loads((par / "results.json").read_text())["policies"]["tapfinger"]
    assert parallel["per_episode"] == results["policies"]["tapfinger"]["per_episode"]


VARIANTS = {
    "multi-task": ["scenario.mode=multi", "scenario.max_starts=3"],
    "elastic": ["scenario.elastic=true"],
    "han": ["model.backbone=han"],
    "no-graph": ["model.backbone=mlp"],
    "no-pointer": ["model.pointer=false"],
    "no-bayes": ["model.bayes=false"],
    "local-critic": ["model.critic=local"],
    "critic-extras": ["model.critic_extras=true"],
    "entropy-schedule": ["train.ent_coef=0.02", "train.ent_coef_final=0.0"],
    "rollout-worker-overlap": ["train.rollout_workers=1", "train.overlap=true"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_and_reloads(variant: str, tmp_path: Path) -> None:
    """One iteration of each ablation / mode, and its checkpoint rebuilds the same network."""
    overrides = [f"train.total_steps={STEPS_PER_ITERATION}", *VARIANTS[variant]]
    args = [arg for o in overrides for arg in ("--set", o)]
    run_dir = tmp_path / variant
    assert run_train("--config", SMOKE, *args, "--run-dir", str(run_dir)) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == STEPS_PER_ITERATION
    assert np.isfinite(summary["last_eval_mean_jct"]["tapfinger"])
    cfg = load_config(SMOKE, overrides)
    env = edge_cluster_v0.EdgeClusterEnv(cfg.scenario)
    policy = make_policy("tapfinger", env, checkpoint=str(run_dir / "checkpoints" / "latest.pt"))
    assert policy.net.cfg == cfg.model
    assert all(np.isfinite(v) for _, v in scalars(run_dir, "losses/policy_loss"))


# ---------------------------------------------------------------------------------- bad input
def test_unknown_config_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "bad"
    assert run_train("--config", SMOKE, "--set", "train.lrr=1", "--run-dir", str(run_dir)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'train.lrr'" in line
    assert not run_dir.exists()

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(Path(SMOKE).read_text().replace("backbone: hgt", "backbone: gcn"))
    assert run_train("--config", str(bad_yaml), "--run-dir", str(run_dir)) == 2
    assert "model.backbone" in one_error_line(capsys.readouterr().err)
    assert not run_dir.exists()


def test_cli_process_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "train.py", "--config", SMOKE, "--set", "train.lrr=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "'train.lrr'" in one_error_line(proc.stderr)
    assert "Traceback" not in proc.stderr


def eval_checkpoint(tmp_path: Path, config: str, checkpoint: Path) -> int:
    return evaluate.main(
        [
            "--config",
            config,
            "--policies",
            "tapfinger",
            "--checkpoint",
            str(checkpoint),
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "eval"),
        ]
    )


def test_checkpoint_of_another_scenario(
    smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    latest = smoke_run / "checkpoints" / "latest.pt"
    assert eval_checkpoint(tmp_path, "paper_synthetic", latest) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "does not match scenario 'paper_synthetic'" in line
    assert not (tmp_path / "eval" / "results.json").exists()

    # Resuming a run with a scenario its checkpoint was not trained on is refused too.
    run_dir = tmp_path / "resumed"
    shutil.copytree(smoke_run, run_dir)
    assert run_train("--resume", str(run_dir), "--set", "scenario.window=5") == 2
    assert "does not match scenario" in one_error_line(capsys.readouterr().err)


def test_checkpoint_of_another_network(
    smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = load_checkpoint(smoke_run / "checkpoints" / "latest.pt")
    ckpt["model"]["key.weight"] = torch.zeros(3, 3)
    path = tmp_path / "other_net.pt"
    torch.save(ckpt, path)
    assert eval_checkpoint(tmp_path, SMOKE, path) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "weights do not fit" in line and "key.weight" in line

    # Resuming with another model section: the same refusal, and the run is left as it was.
    run_dir = tmp_path / "resumed"
    shutil.copytree(smoke_run, run_dir)
    before = (run_dir / "checkpoints" / "latest.pt").read_bytes()
    assert run_train("--resume", str(run_dir), "--set", "model.hidden=48") == 2
    assert "weights do not fit" in one_error_line(capsys.readouterr().err)
    assert (run_dir / "checkpoints" / "latest.pt").read_bytes() == before


@pytest.mark.parametrize("content", ["text", "foreign"])
def test_file_that_is_no_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str
) -> None:
    path = tmp_path / "model.pt"
    if content == "text":
        path.write_text("these are not the weights you are looking for\n")
    else:  # a valid torch file, but not one of ours
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    assert eval_checkpoint(tmp_path, SMOKE, path) == 2
    assert "not a TapFinger checkpoint" in one_error_line(capsys.readouterr().err)


def test_existing_run_folder_is_not_overwritten(
    smoke_run: Path, capsys: pytest.CaptureFixture
) -> None:
    files = sorted(p for p in smoke_run.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    assert run_train("--config", SMOKE, "--run-dir", str(smoke_run)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "already holds a run" in line and "--resume" in line
    assert sorted(p for p in smoke_run.rglob("*") if p.is_file()) == files
    assert all(p.read_bytes() == data for p, data in before.items())


def test_resume_of_a_folder_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_train("--resume", str(tmp_path / "nothing")) == 2
    assert "no checkpoints/latest.pt" in one_error_line(capsys.readouterr().err)


def test_exported_policy_is_small_evaluates_and_refuses_resume(
    smoke_run: Path, tmp_path: Path
) -> None:

    dst = tmp_path / "shipped.pt"
    assert export_main([str(smoke_run / "checkpoints" / "best.pt"), str(dst)]) == 0
    shipped = load_checkpoint(dst)
    assert "optimizer" not in shipped and "rng" not in shipped
    full = load_checkpoint(smoke_run / "checkpoints" / "best.pt")
    for k, v in full["model"].items():
        assert torch.equal(v, shipped["model"][k])
    # A second export to the same file is refused without --overwrite.
    before = dst.read_bytes()
    assert export_main([str(smoke_run / "checkpoints" / "best.pt"), str(dst)]) == 2
    assert dst.read_bytes() == before
    out = tmp_path / "eval"
    rc = evaluate.main(
        [
            "--config",
            SMOKE,
            "--policies",
            "tapfinger,random",
            "--checkpoint",
            str(dst),
            "--episodes",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    run_dir = tmp_path / "resume"
    shutil.copytree(smoke_run, run_dir)
    shutil.copy(dst, run_dir / "checkpoints" / "latest.pt")
    assert run_train("--resume", str(run_dir)) == 2


def test_init_from_starts_with_the_checkpoint_weights(
    smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:

    shipped = export(smoke_run / "checkpoints" / "best.pt", tmp_path / "shipped.pt")
    source = load_checkpoint(shipped)
    assert "value_norm" in source  # the critic's statistics travel with the weights
    cfg = load_config(SMOKE, [f"train.init_from={shipped}"])
    trainer = Trainer(cfg, tmp_path / "run", torch.device("cpu"), show_progress=False)
    for k, v in trainer.net.state_dict().items():
        assert torch.equal(v, source["model"][k]), k
    assert trainer.norm.state_dict() == source["value_norm"]
    assert trainer.global_step == 0  # a fresh run, not a resumed one

    # A checkpoint of another scenario is refused in one line; no checkpoint is written.
    run_dir = tmp_path / "other"
    rc = run_train(
        "--config",
        "paper_synthetic",
        "--set",
        f"train.init_from={shipped}",
        "--run-dir",
        str(run_dir),
    )
    assert rc == 2
    assert "does not match scenario 'paper_synthetic'" in one_error_line(capsys.readouterr().err)
    assert not (run_dir / "checkpoints" / "latest.pt").exists()


def test_elastic_tapfinger_beside_the_non_elastic_one(
    smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An elastic-mode training is evaluated as ``tapfinger@elastic`` on the same arrivals as
    the non-elastic checkpoint and the baselines of both modes; a mix-up is one clear line."""
    elastic_run = tmp_path / "elastic"
    assert (
        run_train(
            "--config",
            SMOKE,
            "--run-dir",
            str(elastic_run),
            "--set",
            "scenario.elastic=true",
            "--set",
            "train.total_steps=64",
        )
        == 0
    )
    elastic = str(elastic_run / "checkpoints" / "latest.pt")
    plain = str(smoke_run / "checkpoints" / "latest.pt")
    out = tmp_path / "eval"
    # An untrained elastic policy resizes and pauses at random: short caps keep it quick.
    caps = ["--set", "scenario.max_slots=40", "--set", "scenario.max_rounds_per_slot=4"]
    code = evaluate.main(
        [
            "--config",
            SMOKE,
            *caps,
            "--policies",
            "tapfinger,optimus,optimus@elastic",
            "--checkpoint",
            plain,
            "--elastic-checkpoint",
            elastic,
            "--episodes",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    policies = results["policies"]
    assert list(policies) == ["tapfinger", "optimus", "optimus@elastic", "tapfinger@elastic"]
    assert policies["tapfinger@elastic"]["learned"]
    assert results["elastic_checkpoint"] == str(Path(elastic).resolve())
    assert results["config"]["scenario"]["elastic"] is False
    for name in ("optimus", "optimus@elastic"):
        assert policies[name]["per_episode"]["tasks_finished"] == [12.0, 12.0], name
    # The same arrivals for every policy and mode: the paired differences are defined.
    for p in policies.values():
        assert p["per_episode"]["seed"] == [0, 1]

    bad = [
        (["--policies", "tapfinger@elastic"], "needs --elastic-checkpoint PATH"),
        (
            ["--policies", "tapfinger", "--checkpoint", elastic],
            "evaluate it with --elastic-checkpoint",
        ),
        (["--policies", "tapfinger@elastic", "--elastic-checkpoint", plain], "does not match"),
        (
            ["--policies", "random", "--elastic-checkpoint", str(tmp_path / "no.pt")],
            "--elastic-checkpoint: checkpoint file not found",
        ),
    ]
    for args, needle in bad:
        code = evaluate.main(
            ["--config", SMOKE, *args, "--episodes", "1", "--out", str(tmp_path / "bad")]
        )
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (args, err)


def test_entropy_schedule_is_linear_over_the_ppo_steps(tmp_path: Path) -> None:
    cfg = load_config(SMOKE, ["train.ent_coef=0.02", "train.ent_coef_final=0.0"])
    trainer = Trainer(cfg, tmp_path / "run", torch.device("cpu"), show_progress=False)
    try:
        for step, want in ((0, 0.02), (32, 0.015), (64, 0.01), (128, 0.0), (500, 0.0)):
            trainer.global_step = step
            assert trainer.entropy_coefficient() == pytest.approx(want)
    finally:
        trainer.writer.close()


def test_critic_features_along_an_episode() -> None:
    """The critic's privileged facts by their definitions, at the start, while tasks run, and
    after the last task finished."""
    from tapfinger.critic_features import CRITIC_FEATURES, critic_features

    env = edge_cluster_v0.parallel_env("smoke", infos="full")
    obs, infos = env.reset(seed=0)
    sim, trace = env.sim, env.sim.trace
    total, tasks = trace.work.sum(), len(trace)
    feats = critic_features(env)
    assert feats.shape == (len(CRITIC_FEATURES),) and feats.dtype == np.float32
    arrived = sim.next_arrival
    assert feats[0] == 0.0
    assert feats[1] == pytest.approx((tasks - arrived) / tasks)
    assert feats[3] == pytest.approx(trace.work[:arrived].sum() / total)
    assert feats[4] == pytest.approx(trace.work[arrived:].sum() / total)
    assert feats[5] == 0.0  # nothing runs yet
    policy = make_policy("optimus", env)
    policy.reset(0)
    seen_running = False
    while env.agents:
        obs, _, _, _, infos = env.step(policy.act(obs, infos))
        feats = critic_features(env)
        assert ((feats >= 0) & (feats <= 1)).all()
        assert feats[5] <= feats[3] + 1e-6  # running work is part of the work in the system
        unfinished = (sim.finish_slot[: sim.next_arrival] < 0).sum()
        assert feats[2] == pytest.approx(unfinished / tasks)
        seen_running |= bool(feats[5] > 0)
    assert seen_running
    np.testing.assert_allclose(feats[1:], 0.0, atol=1e-7)  # nothing left to arrive or to do
    assert feats[0] > 0.5
