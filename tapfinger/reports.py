"""Evaluation reports: results.json, results.csv, episodes.csv and report.md (plus the plots)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tapfinger.eval_types import EPISODE_METRICS, Evaluation, reported_kinds, write_atomic
from tapfinger.plots import write_plots


def _json_safe(obj: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_ci(ci: Sequence[float] | None, digits: int = 2) -> str:
    if ci is None:
        return "n/a"
    return f"[{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"


def markdown_table(results: dict[str, Any]) -> str:
    """The per-policy table of the report (also printed by the CLI)."""
    kinds = reported_kinds(results)
    level = round(100 * results["confidence"])
    header = [
        "policy",
        "mean JCT",
        f"{level}% CI",
        "p50",
        "p95",
        "p99",
        "makespan",
        *[f"util {k}" for k in kinds],
        "JCT / bound",
        "Δ vs best",
        f"Δ {level}% CI",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    best = results["best_baseline"]
    for name, p in results["policies"].items():
        label = name
        if name == best:
            label += " (best)"
        elif p["oracle"]:
            label += " (oracle)"
        row = [
            label,
            _fmt(p["mean_jct"]),
            _fmt_ci(p["mean_jct_ci"]),
            _fmt(p["p50_jct"]),
            _fmt(p["p95_jct"]),
            _fmt(p["p99_jct"]),
            _fmt(p["makespan"], 1),
            *[_fmt(p[f"utilization_{k}"], 3) for k in kinds],
            _fmt(p["lower_bound_ratio"]),
            _fmt(p["diff_to_best"]),
            _fmt_ci(p["diff_to_best_ci"]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def report_markdown(results: dict[str, Any]) -> str:
    """The whole report.md: settings, the table, how to read it, and the plots."""
    sc = results["config"]["scenario"]
    level = round(100 * results["confidence"])
    seeds = results["seeds"]
    workload = (
        f"replayed trace `{results['trace']}`"
        if results["trace"]
        else f"{sc['num_tasks']} synthetic tasks per episode (arrival rate {sc['arrival_rate']})"
    )
    clusters = ", ".join(f"{c['cpu']} CPU / {c['gpu']} GPU" for c in sc["clusters"])
    best = results["best_baseline"]
    parts = [
        f"# Evaluation: {results['scenario']}",
        "",
        f"- clusters: {clusters}",
        f"- workload: {workload}; speed model `{sc['speed_model']}`",
        f"- {results['episodes']} paired episodes per policy (seeds {seeds[0]}..{seeds[-1]})",
        f"- best baseline (lowest mean JCT, oracles and learned policies excluded): "
        f"{best if best else 'n/a'}",
        *[f"- note: {n}" for n in results.get("notes", [])],
        "",
        markdown_table(results),
        "",
        f"JCTs are in slots ({results['slot_seconds']} s each). Every column is the mean over "
        f"episodes of the per-episode metric; the {level}% confidence intervals are percentile "
        f"bootstraps ({results['bootstrap_resamples']} resamples) over episodes. Δ vs best is "
        "the paired difference of mean JCT to the best baseline (positive: slower than it). "
        "JCT / bound is, per episode, the mean JCT over a lower bound on it: the larger of the "
        "mean per-task bound (each task alone at its best allocation on the best cluster that "
        "can see it, no waiting) and the pooled-capacity bound (all clusters as one, "
        "preemptive shortest-remaining-first; `envs/jct_bounds.py`).",
        "",
        "![mean JCT per policy](mean_jct.png)",
        "",
        "![paired difference to the best fair baseline](jct_diff_to_best.png)",
        "",
        "![JCT distribution](jct_cdf.png)",
        "",
        f"![utilisation over time, seed {seeds[0]}](utilization.png)",
        "",
    ]
    return "\n".join(parts)


def results_csv(results: dict[str, Any]) -> str:
    """One row per policy: the headline numbers of results.json."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = [
        "policy",
        "episodes",
        "mean_jct",
        "mean_jct_ci_low",
        "mean_jct_ci_high",
        "p50_jct",
        "p95_jct",
        "p99_jct",
        "mean_waiting",
        "makespan",
        "utilization_cpu",
        "utilization_gpu",
        "utilization_mem",
        "lower_bound_ratio",
        "diff_to_best",
        "diff_to_best_ci_low",
        "diff_to_best_ci_high",
        "oracle",
        "best_baseline",
    ]
    w.writerow(header)
    for name, p in results["policies"].items():
        ci = p["mean_jct_ci"] or (None, None)
        dci = p["diff_to_best_ci"] or (None, None)
        row = {
            **p,
            "policy": name,
            "mean_jct_ci_low": ci[0],
            "mean_jct_ci_high": ci[1],
            "diff_to_best_ci_low": dci[0],
            "diff_to_best_ci_high": dci[1],
            "best_baseline": name == results["best_baseline"],
        }
        w.writerow(["" if row[k] is None else row[k] for k in header])
    return buf.getvalue()


def episodes_csv(results: dict[str, Any]) -> str:
    """One row per policy and episode: the env's per-episode metrics."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["policy", "seed", *EPISODE_METRICS])
    for name, p in results["policies"].items():
        ep = p["per_episode"]
        for i, seed in enumerate(ep["seed"]):
            w.writerow(
                [name, seed, *("" if ep[m][i] is None else ep[m][i] for m in EPISODE_METRICS)]
            )
    return buf.getvalue()


def write_outputs(out: str | Path, evaluation: Evaluation) -> list[Path]:
    """Write results.json, results.csv, episodes.csv, report.md and the PNG plots."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = _json_safe(evaluation.results)
    evaluation.results = results
    texts = {
        "results.json": json.dumps(results, indent=2, allow_nan=False) + "\n",
        "results.csv": results_csv(results),
        "episodes.csv": episodes_csv(results),
        "report.md": report_markdown(results),
    }
    written = []
    for name, text in texts.items():
        write_atomic(out / name, text.encode("utf-8"))
        written.append(out / name)
    written += write_plots(out, evaluation)
    return written


__all__ = ["episodes_csv", "markdown_table", "report_markdown", "results_csv", "write_outputs"]
