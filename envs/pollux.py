"""Pollux importer: measured throughput of six real training jobs as the ``pollux`` speed table.

Source: the simulator traces of Pollux (Qiao et al., "Pollux: Co-adaptive Cluster Scheduling for
Goodput-Optimized Deep Learning", OSDI 2021; github petuum/adaptdl, folder ``simulator/``), as
shipped in ``shared/data/pollux/``: per job (``bert``, ``cifar10``, ``deepspeech2``, ``imagenet``,
``ncf``, ``yolov3``) ``traces/<job>/placements.csv`` (``placement, local_bsz, step_time,
sync_time``: seconds per training step of data-parallel replicas on a placement written as GPUs
per node, e.g. ``44`` = two 4-GPU nodes) and ``validation-<batch>.csv`` (iterations per epoch).
``python -m envs.pollux [POLLUX_DIR]`` writes the vendored ``envs/data/pollux_throughput.csv``
(cite the OSDI'21 paper when publishing results on it).

Conversion rules (Pollux's own simulator rules, re-implemented):

- Batch size: each job keeps one global batch size B, the one its jobs use most in Pollux's
  ``workloads/`` (``JOBS`` below); data-parallel replicas share it (strong scaling), so on g GPUs
  each replica runs ``local = ceil(B / g)`` samples a step.
- Placement: an edge cluster's GPUs sit in 4-GPU nodes and a task's g GPUs are packed (g = 6 is
  ``4 + 2``, written ``24``: Pollux normalises a placement to its smallest rotation); 1..16 GPUs
  are all measured placements (16 = ``4444``).
- Step time: linear interpolation of ``step_time`` over ``local_bsz`` within the placement's
  rows; a local batch over the largest measured one (``yolov3``: 8, Pollux's memory limit) runs as
  gradient accumulation, ``a = ceil(local / max_local) - 1`` extra micro-steps of
  ``step - sync`` seconds each; a local batch under the smallest measured one is not allowed
  (Pollux's rule), so no GPU count past ``B / min_local`` is listed (``yolov3``: 16 at most).
- Output per (job, g): seconds per step, samples per second ``B / step``, and the speed-up
  ``samples_per_second(g) / samples_per_second(1)`` (the ``pollux`` speed model's GPU curve),
  plus, per job, the iterations of Pollux's training length (``EPOCHS``) at B and the hours that
  take on one GPU (``one_gpu_hours``: the jobs' relative sizes).

The CPU side is not in Pollux's data: the ``pollux`` speed model adds a data-loading term from
the scenario (:mod:`envs.speed_models`).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np

from envs.speed_models import POLLUX_TABLE

#: Global batch size per job: the one Pollux's workloads use most (workload-1..8.csv).
JOBS = {
    "bert": 384,
    "cifar10": 2048,
    "deepspeech2": 320,
    "imagenet": 3200,
    "ncf": 32768,
    "yolov3": 64,
}
#: Training length in epochs (Pollux's simulator/applications.py).
EPOCHS = {"bert": 2, "cifar10": 100, "deepspeech2": 80, "imagenet": 90, "ncf": 10, "yolov3": 50}
#: Largest local batch a replica holds, where Pollux sets one below the measured maximum.
MAX_LOCAL = {"yolov3": 8}
GPUS_PER_NODE = 4
MAX_GPUS = 16
COLUMNS = (
    "task_type",
    "gpu",
    "batch_size",
    "local_bsz",
    "accum_steps",
    "step_seconds",
    "samples_per_second",
    "speedup",
    "iterations",
    "one_gpu_hours",
)


def placement_id(gpus: int) -> str:
    """Pollux's name of ``gpus`` packed on 4-GPU nodes: GPUs per node, smallest rotation."""
    nodes: list[int] = []
    while sum(nodes) < gpus:
        nodes.append(min(gpus - sum(nodes), GPUS_PER_NODE))
    rotations = [tuple(nodes[i:] + nodes[:i]) for i in range(len(nodes))]
    return "".join(map(str, min(rotations)))


def read_placements(path: Path) -> dict[str, np.ndarray]:
    """Placement -> float [rows, 3] of (local_bsz, step_time, sync_time), by local_bsz."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with open(path, encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["placement"], []).append(
                (float(r["local_bsz"]), float(r["step_time"]), float(r["sync_time"]))
            )
    return {p: np.array(sorted(v)) for p, v in rows.items()}


def step_seconds(job: str, table: np.ndarray, batch: int, gpus: int) -> tuple[int, int, float]:
    """(local batch, extra accumulation steps, seconds a step) of ``job`` on ``gpus`` GPUs."""
    local_bsz, step, sync = table[:, 0], table[:, 1], table[:, 2]
    max_local = MAX_LOCAL.get(job, local_bsz.max())
    local = math.ceil(batch / gpus - 1e-8)
    accum = math.ceil(local / max_local - 1e-8) - 1
    atomic = math.ceil(local / (accum + 1) - 1e-8)
    s = float(np.interp(atomic, local_bsz, step))
    y = float(np.interp(atomic, local_bsz, sync))
    return local, accum, s + accum * (s - y)


def iterations(trace_dir: Path, job: str, batch: int) -> float:
    """Iterations after Pollux's last epoch of ``job`` at global batch ``batch``."""
    with open(trace_dir / f"validation-{batch}.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return float(rows[EPOCHS[job] - 1]["iteration"])


def convert(pollux_dir: Path) -> list[dict[str, object]]:
    """The rows of ``pollux_throughput.csv`` from Pollux's ``traces/`` folder."""
    out: list[dict[str, object]] = []
    for job, batch in JOBS.items():
        trace_dir = pollux_dir / "traces" / job
        placements = read_placements(trace_dir / "placements.csv")
        its = iterations(trace_dir, job, batch)
        one = None
        for g in range(1, MAX_GPUS + 1):
            table = placements[placement_id(g)]
            if math.ceil(batch / g - 1e-8) < table[:, 0].min():
                break
            local, accum, step = step_seconds(job, table, batch, g)
            rate = batch / step
            one = rate if one is None else one
            out.append(
                {
                    "task_type": job,
                    "gpu": g,
                    "batch_size": batch,
                    "local_bsz": local,
                    "accum_steps": accum,
                    "step_seconds": f"{step:.6g}",
                    "samples_per_second": f"{rate:.6g}",
                    "speedup": f"{rate / one:.4f}",
                    "iterations": f"{its:.6g}",
                    "one_gpu_hours": f"{its * batch / one / 3600:.4g}",
                }
            )
    return out


def main(argv: list[str]) -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "pollux"
    pollux_dir = Path(argv[0]) if argv else default
    rows = convert(pollux_dir)
    with open(POLLUX_TABLE, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {POLLUX_TABLE} ({len(rows)} rows)")


if __name__ == "__main__":
    main(sys.argv[1:])
