"""The Alibaba pod and node lists: reading and validating the two CSV files, in simulator units.

The columns, units and checks are those of :mod:`envs.alibaba` (see "Units" and "Validation" in
its docstring); every error names the file, the row (1 = first data row) and the column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from envs.errors import TraceError, file_errors

#: GPU units per physical GPU: capacities and demands count tenths of a GPU.
GPU_UNITS_PER_GPU = 10

POD_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


@dataclass
class Node:
    """One node of the node list, in simulator units."""

    sn: str
    cpu: int
    """CPU cores (``cpu_milli // 1000``)."""
    gpu: int
    """GPU units (tenths of a GPU)."""
    mem: int
    """Memory in GiB (``memory_mib // 1024``)."""
    model: str
    """GPU model; empty for CPU-only nodes."""


@dataclass
class Pod:
    """One pod of the pod list, as parsed (times in seconds, requests in the file's units)."""

    row: int
    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...]
    phase: str
    creation: int
    deletion: int
    scheduled: int | None


#: The pod columns a replay reads (``qos`` is not used).
POD_REPLAY_COLUMNS = tuple(c for c in POD_COLUMNS if c != "qos")
#: Why a pod list needs them: said when some are missing.
POD_COLUMNS_WHY = (
    "a replay needs each pod's request (cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec), "
    "its creation and deletion times (arrival and lifetime), and its pod_phase and "
    "scheduled_time (pending pods and long-running services); a list without the times, like "
    "the request snapshots openb_pod_list_multigpu*.csv, can be packed but not replayed"
)


def _read_rows(
    path: Path, columns: tuple[str, ...], why: str = ""
) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header, as (row number, cells); checks the columns exist (naming
    every missing one, and ``why`` they are needed)."""
    rows = []
    with file_errors(path, TraceError, "file"), open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise TraceError(f"{path}: empty file (expected a header: {', '.join(columns)})")
            header = [h.strip() for h in header]
            missing = [col for col in columns if col not in header]
            if missing:
                names = ", ".join(f"'{c}'" for c in missing)
                plural = "s" if len(missing) > 1 else ""
                raise TraceError(
                    f"{path}: header: missing column{plural} {names}" + (f"; {why}" if why else "")
                )
            pos = {col: header.index(col) for col in columns}
            for r, row in enumerate(reader, start=1):
                if not row:
                    continue
                cells = {}
                for col in columns:
                    if pos[col] >= len(row):
                        raise TraceError(
                            f"{path}: row {r}, column '{col}': missing "
                            f"(the row has {len(row)} of {len(header)} columns)"
                        )
                    cells[col] = row[pos[col]].strip()
                rows.append((r, cells))
        except csv.Error as exc:
            raise TraceError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    return rows


def _int_cell(cells: dict[str, str], col: str, where: str) -> int:
    text = cells[col]
    try:
        v = int(text)
    except ValueError:
        raise TraceError(f"{where}, column '{col}': expected an integer, got {text!r}") from None
    if v < 0:
        raise TraceError(f"{where}, column '{col}': must be >= 0, got {v}")
    return v


def read_nodes(path: str | Path) -> list[Node]:
    """Parse and validate the node list (``sn, cpu_milli, memory_mib, gpu, model``)."""
    path = Path(path)
    nodes = []
    seen: set[str] = set()
    for r, cells in _read_rows(path, NODE_COLUMNS):
        where = f"{path}: row {r}"
        sn = cells["sn"]
        if not sn:
            raise TraceError(f"{where}, column 'sn': empty")
        if sn in seen:
            raise TraceError(f"{where}, column 'sn': duplicate node {sn!r}")
        seen.add(sn)
        cpu = _int_cell(cells, "cpu_milli", where)
        mem = _int_cell(cells, "memory_mib", where)
        gpu = _int_cell(cells, "gpu", where)
        model = cells["model"]
        if gpu > 0 and not model:
            raise TraceError(f"{where}, column 'model': empty for a node with {gpu} GPUs")
        nodes.append(Node(sn, cpu // 1000, gpu * GPU_UNITS_PER_GPU, mem // 1024, model))
    if not nodes:
        raise TraceError(f"{path}: holds no nodes")
    return nodes


def read_pods(path: str | Path) -> list[Pod]:
    """Parse and validate the pod list (see "Validation" in :mod:`envs.alibaba`)."""
    path = Path(path)
    pods = []
    for r, cells in _read_rows(path, POD_REPLAY_COLUMNS, POD_COLUMNS_WHY):
        where = f"{path}: row {r}"
        cpu = _int_cell(cells, "cpu_milli", where)
        mem = _int_cell(cells, "memory_mib", where)
        num_gpu = _int_cell(cells, "num_gpu", where)
        gpu_milli = _int_cell(cells, "gpu_milli", where)
        creation = _int_cell(cells, "creation_time", where)
        deletion = _int_cell(cells, "deletion_time", where)
        scheduled = _int_cell(cells, "scheduled_time", where) if cells["scheduled_time"] else None
        phase = cells["pod_phase"]
        if phase not in POD_PHASES:
            raise TraceError(
                f"{where}, column 'pod_phase': {phase!r} is not one of {', '.join(POD_PHASES)}"
            )
        if num_gpu == 0 and gpu_milli > 0:
            raise TraceError(f"{where}, column 'gpu_milli': {gpu_milli} with num_gpu 0")
        if num_gpu > 0 and not 1 <= gpu_milli <= 1000:
            raise TraceError(
                f"{where}, column 'gpu_milli': must be in 1..1000 for a GPU pod, got {gpu_milli}"
            )
        if deletion < creation:
            raise TraceError(
                f"{where}, column 'deletion_time': {deletion} is before creation_time {creation}"
            )
        spec = tuple(s.strip() for s in cells["gpu_spec"].split("|") if s.strip())
        pods.append(
            Pod(
                r,
                cells["name"],
                cpu,
                mem,
                num_gpu,
                gpu_milli,
                spec,
                phase,
                creation,
                deletion,
                scheduled,
            )
        )
    if not pods:
        raise TraceError(f"{path}: holds no pods")
    return pods
