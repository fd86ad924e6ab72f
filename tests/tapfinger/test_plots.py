"""Tests of the evaluation plots (tapfinger.plots) and the learning curves (tapfinger.curves):
what is drawn in which order and style is checked as data, and every PNG is written and decodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from tapfinger import curves, eval_types
from tapfinger.config import config_to_dict, load_config
from tapfinger.eval_types import EpisodeResult, EvalRequest, Evaluation
from tapfinger.plots import CLIP_FACTOR, axis_limit, diff_rows, jct_bars, write_plots
from tapfinger.statistics import summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Per-episode mean JCTs of a hand-made evaluation over seeds 0..3: optimus is the best fair
#: baseline, sjf an oracle, tapfinger learned, random a floor far beyond 2x the best.
JCTS = {
    "random": [50.0, 60.0, 55.0, 65.0],
    "fifo": [10.0, 12.0, 14.0, 16.0],
    "optimus": [9.0, 11.0, 12.0, 13.0],
    "sjf": [8.0, 10.0, 11.0, 12.0],
    "tapfinger": [9.0, 10.0, 12.0, 12.0],
}


def _episode(policy: str, seed: int, mean_jct: float) -> EpisodeResult:
    summary = {m: 1.0 for m in eval_types.EPISODE_METRICS}
    summary["mean_jct"] = mean_jct
    result = EpisodeResult(policy, seed, summary, np.array([mean_jct, mean_jct + 1]), False, 0.0)
    if seed == 0:  # the first seed records utilisation, as in an evaluation
        result.util_slots = np.array([0, 4, 9])
        result.util_alloc = np.array([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    return result


def evaluation(jcts: dict[str, list[float]]) -> Evaluation:
    """An evaluation of ``jcts`` through the real statistics (no env is played)."""
    cfg = load_config("quickstart")
    seeds = list(range(len(next(iter(jcts.values())))))
    request = EvalRequest(config=cfg, policies=list(jcts), seeds=seeds)
    episodes = [_episode(n, s, jcts[n][s]) for n in jcts for s in seeds]
    results = {
        "scenario": cfg.scenario.name,
        "episodes": len(seeds),
        "seeds": seeds,
        "confidence": cfg.eval.confidence,
        **summarize(request, episodes),
        "config": config_to_dict(cfg),
    }
    return Evaluation(results, episodes)


@pytest.fixture(scope="module")
def full() -> Evaluation:
    return evaluation(JCTS)


def test_bars_sorted_by_mean_with_roles(full: Evaluation) -> None:
    bars = jct_bars(full.results)
    # Means: sjf 10.25, tapfinger 10.75, optimus 11.25, fifo 13.0, random 57.5.
    assert [b.name for b in bars] == ["sjf", "tapfinger", "optimus", "fifo", "random"]
    assert [b.value for b in bars] == pytest.approx([10.25, 10.75, 11.25, 13.0, 57.5])
    assert [b.role for b in bars] == ["oracle", "learned", "best", "baseline", "baseline"]
    assert [b.label for b in bars] == [
        "sjf (oracle)",
        "tapfinger (learned)",
        "optimus (best baseline)",
        "fifo",
        "random",
    ]
    assert all(b.low <= b.value <= b.high for b in bars)


def test_diff_rows_are_the_paired_differences(full: Evaluation) -> None:
    rows = diff_rows(full.results)
    best = JCTS["optimus"]
    by_hand = {n: float(np.mean(np.subtract(v, best))) for n, v in JCTS.items()}
    # sjf -1.0, tapfinger -0.5, optimus 0, fifo +1.75, random +46.25, lowest first.
    assert [r.name for r in rows] == ["sjf", "tapfinger", "optimus", "fifo", "random"]
    assert [r.value for r in rows] == pytest.approx([by_hand[r.name] for r in rows])
    assert by_hand["fifo"] == 1.75 and by_hand["sjf"] == -1.0
    pols = full.results["policies"]
    for r in rows:
        assert (r.low, r.high) == tuple(pols[r.name]["diff_to_best_ci"])
    assert rows[2].role == "best" and (rows[2].low, rows[2].high) == (0.0, 0.0)


def test_axis_is_cut_only_when_a_value_lies_beyond() -> None:
    ref = 11.25
    assert axis_limit([10.25, 11.25, 57.5], CLIP_FACTOR * ref) == 22.5
    assert axis_limit([10.25, 11.25, 13.0], CLIP_FACTOR * ref) is None
    # The difference plot cuts at (CLIP_FACTOR - 1) x the best, on either side.
    assert axis_limit([-1.0, 0.0, 46.25], (CLIP_FACTOR - 1) * ref) == 11.25
    assert axis_limit([-12.0, 0.0], (CLIP_FACTOR - 1) * ref) == 11.25
    assert axis_limit([float("nan"), 1.0], 2.0) is None
    assert axis_limit([1.0, 5.0], None) is None


def _assert_pngs(out: Path, written: list[Path]) -> None:
    names = {p.name for p in written}
    assert names == {"mean_jct.png", "jct_diff_to_best.png", "jct_cdf.png", "utilization.png"}
    for path in written:
        assert path.parent == out
        assert path.read_bytes()[:8] == PNG_MAGIC, path.name
        pixels = imread(path)
        assert pixels.std() > 0.01, f"{path.name} is blank"


def test_plots_are_written(full: Evaluation, tmp_path: Path) -> None:
    _assert_pngs(tmp_path, write_plots(tmp_path, full))
    # 5 policies: the bar plot is 0.8 in per bar + 2 in wide, 4 in high, at 100 dpi.
    assert imread(tmp_path / "mean_jct.png").shape[:2] == (400, 600)


def test_plots_with_a_single_policy(tmp_path: Path) -> None:
    single = evaluation({"fifo": [10.0, 12.0, 11.0]})
    assert [r.value for r in diff_rows(single.results)] == [0.0]
    _assert_pngs(tmp_path, write_plots(tmp_path, single))


def test_plots_with_only_oracles_and_one_episode(tmp_path: Path) -> None:
    """No fair baseline: no difference rows (the plot says so); one episode: no intervals."""
    only = evaluation({"sjf": [7.0]})
    assert only.results["best_baseline"] is None
    assert diff_rows(only.results) == []
    (bar,) = jct_bars(only.results)
    assert (bar.role, bar.low, bar.high) == ("oracle", None, None)
    _assert_pngs(tmp_path, write_plots(tmp_path, only))


# ------------------------------------------------------------------------ learning curves
def test_steps_label_is_plain() -> None:
    labels = [curves.steps_label(x) for x in (0, 500, 2500, 20_000, 100_000, 1_500_000)]
    assert labels == ["0", "500", "2.5k", "20k", "100k", "1.5M"]


def test_curve_axes_have_plain_tick_labels() -> None:
    """No ``2x10^4`` step labels, no offset or exponent on a JCT axis spanning 90-95."""
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 20_000], [90.0, 95.0])
    curves._plain_axes(ax)
    fig.canvas.draw()
    xs = [t.get_text() for t in ax.get_xticklabels()]
    ys = [t.get_text() for t in ax.get_yticklabels()]
    assert "20k" in xs and "10k" in xs
    assert "92" in ys or "92.0" in ys
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert not any("10^" in t or "×" in t or "e+" in t for t in xs + ys)


def test_spread_keeps_labels_apart() -> None:
    assert curves.spread([31.2, 10.0, 30.9], 1.0) == [31.9, 10.0, 30.9]
    assert curves.spread([5.0, 1.0], 1.0) == [5.0, 1.0]


def _fake_run(run: Path, bc_updates: int, bc_env_steps: int | None) -> None:
    """Events with the tags and text training writes (DESIGN §5.3)."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(run))
    w.add_text(
        "hyperparameters",
        f"|section|key|value|\n|-|-|-|\n|train|bc_steps|{bc_updates}|\n|train|bc_policy|sjf|",
    )
    for u in range(bc_updates):
        w.add_scalar("losses/bc_loss", 1.0 / (u + 1), u)
    for step, jct in ((0, 12.0), (2048, 11.0), (4096, 10.5)):
        w.add_scalar("eval/tapfinger/avg_jct", jct, step)
        for name, value in (("random", 60.0), ("optimus", 11.0), ("sjf", 10.0)):
            w.add_scalar(f"eval/{name}/avg_jct", value, step)
    for step in (1024, 2048, 3072, 4096):
        w.add_scalar("sched/avg_jct", 11.0, step)
    w.close()
    if bc_env_steps is not None:
        (run / "summary.json").write_text(json.dumps({"bc_env_steps": bc_env_steps}))


def test_read_run_finds_the_warm_start(tmp_path: Path) -> None:
    _fake_run(tmp_path / "bc", 5, 640)
    run = curves.read_run(tmp_path / "bc")
    assert (run.bc_updates, run.bc_policy, run.bc_env_steps, run.offset) == (5, "sjf", 640, 640)
    assert run.eval == [(0, 12.0), (2048, 11.0), (4096, 10.5)]
    assert run.baselines == {"random": 60.0, "optimus": 11.0, "sjf": 10.0}
    assert len(run.train) == 4
    _fake_run(tmp_path / "ppo", 0, None)
    plain = curves.read_run(tmp_path / "ppo")
    assert (plain.bc_updates, plain.bc_env_steps, plain.offset) == (0, None, 0)
    # Cloned, but the folder does not say how many steps: PPO's step 0 stays at 0.
    _fake_run(tmp_path / "bc_unknown", 3, None)
    assert curves.read_run(tmp_path / "bc_unknown").offset == 0
    out = tmp_path / "plots" / "curves.png"
    code = curves.main([str(tmp_path / "bc"), str(tmp_path / "ppo"), "--out", str(out)])
    assert code == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert imread(out).shape[:2] == (420, 1200)
