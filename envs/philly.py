"""Philly trace importer: Microsoft's Philly GPU-cluster jobs as a TapFinger trace.

Source: ``philly.csv`` as packaged in the Pollux artifact (github petuum/adaptdl, commit
de25dcc, ``simulator/traces/philly.csv``, Apache-2.0), derived from msr-fiddle/philly-traces
(Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN Training Workloads",
USENIX ATC 2019; cite it when publishing results on it). Columns: ``timestamp, duration,
num_gpus, gpu_time, cluster``: submission time (2017-09 .. 2017-12), run time in seconds, GPUs
requested, GPU-seconds, and an anonymised *virtual* cluster (a tenant, not a physical site).
``python -m envs.philly`` writes a ``tapfinger-trace v1`` file and prints the clusters for a
config (``configs/philly_103959.yaml`` is the documented replay).

Every rule, in one place (defaults in brackets):

Window [the whole trace]: jobs submitted in ``[start, end)`` (ISO dates or times, local to the
    trace's timestamps). Tenants [all]: only the jobs of the given virtual clusters. Arrival:
    ``floor((timestamp - first kept timestamp) / slot_seconds)`` [300 s], so the first kept job
    arrives in slot 0.
Layout: the edge clusters are the options' own, since Philly has no sites:
    ``gpus_per_cluster`` [8, 8, 4] GPUs each, and ``cpus_per_gpu`` [4] cores per GPU, both as
    capacity and as demand (Philly records no CPU or memory requests; memory is not modelled).
Jobs into tasks: ``task_id`` = the job's 0-based data row; ``min_gpu = num_gpus``, ``min_cpu
    = cpus_per_gpu * num_gpus``, caps equal to the minimum (the job ran at its request: rigid,
    so a scheduler decides where and when, not how much); work = ``max(1, ceil(duration /
    slot_seconds))`` slots at that allocation (speed model ``trace``: 1 per slot); types by
    size: ``gpu_1``, ``gpu_2_4``, ``gpu_5_8``, ``gpu_9_plus``; visible to every cluster large
    enough to run it. A job larger than every cluster is an error naming its row
    [``oversized="error"``], or dropped and counted with ``oversized="drop"``.
Validation: a missing column (every missing one is named), an unparsable timestamp, a negative
    or non-numeric duration, or ``num_gpus`` that is not a positive integer raises
    :class:`~envs.errors.TraceError` naming the file, the row (1 = first data row) and the
    column; so does a window with no job.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

from envs.errors import InputError, TraceError, file_errors
from envs.scenario import ClusterSpec
from envs.trace import Trace, import_report, save_trace

PHILLY_COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
TASK_TYPES = ("gpu_1", "gpu_2_4", "gpu_5_8", "gpu_9_plus")


@dataclass
class PhillyImport:
    """What :func:`import_philly` returns: the clusters, the trace and what was done."""

    clusters: list[ClusterSpec]
    trace: Trace
    stats: dict[str, int] = field(default_factory=dict)


def task_type(gpus: int) -> str:
    if gpus == 1:
        return "gpu_1"
    if gpus <= 4:
        return "gpu_2_4"
    return "gpu_5_8" if gpus <= 8 else "gpu_9_plus"


def _time(text: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise TraceError(f"{what}: not an ISO date or time: {text!r}") from None


def read_jobs(path: Path) -> list[tuple[int, datetime, float, int, str]]:
    """The validated rows: (row, submission time, duration in s, GPUs, virtual cluster)."""
    jobs = []
    with (
        file_errors(path, TraceError, "Philly trace"),
        open(path, newline="", encoding="utf-8") as fh,
    ):
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader, None) or []]
            missing = [c for c in PHILLY_COLUMNS if c not in header]
            if missing:
                names = ", ".join(f"'{c}'" for c in missing)
                raise TraceError(f"{path}: header: missing column(s) {names}")
            pos = {c: header.index(c) for c in PHILLY_COLUMNS}
            for r, row in enumerate(reader, start=1):
                if not row:
                    continue
                where = f"{path}: row {r}"
                if len(row) < len(header):
                    raise TraceError(f"{where}: {len(row)} of {len(header)} columns")
                ts = _time(row[pos["timestamp"]], f"{where}, column 'timestamp'")
                try:
                    duration = float(row[pos["duration"]])
                except ValueError:
                    raise TraceError(
                        f"{where}, column 'duration': not a number: {row[pos['duration']]!r}"
                    ) from None
                if not (duration >= 0 and math.isfinite(duration)):
                    raise TraceError(f"{where}, column 'duration': must be >= 0, got {duration}")
                text = row[pos["num_gpus"]].strip()
                if not text.isdigit() or int(text) < 1:
                    raise TraceError(
                        f"{where}, column 'num_gpus': must be a positive integer, got {text!r}"
                    )
                jobs.append((r, ts, duration, int(text), row[pos["cluster"]].strip()))
        except csv.Error as exc:
            raise TraceError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    return jobs


def import_philly(
    path: str | Path,
    *,
    start: str | None = None,
    end: str | None = None,
    tenants: list[str] | None = None,
    gpus_per_cluster: list[int] | None = None,
    cpus_per_gpu: int = 4,
    slot_seconds: float = 300.0,
    oversized: Literal["error", "drop"] = "error",
) -> PhillyImport:
    """Convert the Philly job list into edge clusters and a trace (rules: module docstring).

    Raises:
        TraceError: A malformed row (file, row, column), an oversized job, an empty window.
        ValueError: An option out of range.
    """
    gpus = list(gpus_per_cluster or [8, 8, 4])
    if not gpus or min(gpus) < 1:
        raise ValueError(f"gpus_per_cluster must be positive integers, got {gpus}")
    if cpus_per_gpu < 1:
        raise ValueError(f"cpus_per_gpu must be >= 1, got {cpus_per_gpu}")
    if not slot_seconds > 0:
        raise ValueError(f"slot_seconds must be > 0, got {slot_seconds}")
    if oversized not in ("error", "drop"):
        raise ValueError(f"oversized must be 'error' or 'drop', got {oversized!r}")
    lo = _time(start, "start") if start else None
    hi = _time(end, "end") if end else None
    path = Path(path)
    jobs = read_jobs(path)
    stats: Counter[str] = Counter(jobs_read=len(jobs))
    kept = []
    for job in jobs:
        _, ts, _, n, tenant = job
        if (lo is not None and ts < lo) or (hi is not None and ts >= hi):
            continue
        if tenants and tenant not in tenants:
            continue
        if n > max(gpus):
            stats["oversized"] += 1
            if oversized == "drop":
                stats["dropped_oversized"] += 1
                continue
            raise TraceError(
                f"{path}: row {job[0]}: {n} GPUs, more than any cluster has ({max(gpus)}); "
                "oversized='drop' (--oversized drop) drops such jobs and counts them"
            )
        kept.append(job)
    if not kept:
        raise TraceError(f"{path}: no job in the window {start or 'start'} .. {end or 'end'}")
    first = min(j[1] for j in kept)
    cap = np.array(gpus)
    rows = []
    for r, ts, duration, n, _ in kept:
        arrival = math.floor((ts - first).total_seconds() / slot_seconds)
        work = max(1, math.ceil(duration / slot_seconds))
        rows.append((r - 1, arrival, TASK_TYPES.index(task_type(n)), work, cap >= n, n))
        stats[f"type_{task_type(n)}"] += 1
    stats["tasks"] = len(rows)
    n_gpu = np.array([r[5] for r in rows], dtype=np.int64)
    demand = np.stack([cpus_per_gpu * n_gpu, n_gpu, np.zeros_like(n_gpu)], axis=1)
    trace = Trace(
        list(TASK_TYPES),
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=float),
        np.array([r[4] for r in rows], dtype=bool),
        demand,
        demand[:, :2].copy(),
    ).sorted()
    clusters = [ClusterSpec(cpu=cpus_per_gpu * g, gpu=g) for g in gpus]
    return PhillyImport(clusters, trace, dict(stats))


def main(argv: list[str] | None = None) -> int:
    """``python -m envs.philly``: convert, write the trace, print the clusters."""
    ap = argparse.ArgumentParser(prog="python -m envs.philly", description=__doc__.split("\n")[0])
    ap.add_argument("--csv", required=True, help="philly.csv (timestamp,duration,num_gpus,...)")
    ap.add_argument("--out", required=True, help="trace file to write (tapfinger-trace v1)")
    ap.add_argument("--start", help="first submission time kept (ISO, e.g. 2017-10-01)")
    ap.add_argument("--end", help="submission times before this are kept (ISO)")
    ap.add_argument("--tenant", action="append", help="a virtual cluster to keep (repeatable)")
    ap.add_argument("--gpus-per-cluster", default="8,8,4", help="comma-separated GPUs per site")
    ap.add_argument("--cpus-per-gpu", type=int, default=4)
    ap.add_argument("--slot-seconds", type=float, default=300.0)
    ap.add_argument("--oversized", choices=("error", "drop"), default="error")
    args = ap.parse_args(argv)
    try:
        gpus = [int(g) for g in args.gpus_per_cluster.split(",")]
        result = import_philly(
            args.csv,
            start=args.start,
            end=args.end,
            tenants=args.tenant,
            gpus_per_cluster=gpus,
            cpus_per_gpu=args.cpus_per_gpu,
            slot_seconds=args.slot_seconds,
            oversized=args.oversized,
        )
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_trace(result.trace, args.out)
    print("\n".join(import_report(result.trace, result.stats, args.out)))
    print("clusters:")
    for spec in result.clusters:
        print(f"    - {{cpu: {spec.cpu}, gpu: {spec.gpu}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
