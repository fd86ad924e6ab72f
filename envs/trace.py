"""Trace: a concrete list of tasks (arrival, type, work, visibility, demand), with its file format.

File format ``tapfinger-trace v1`` (CSV, one task a row, arrival order not required):

    # tapfinger-trace v1
    task_id,arrival_slot,task_type,work,visible_clusters,min_cpu,min_gpu,mem,max_cpu,max_gpu
    0,0,image,1.0,0|2,2,1,0,16,16

- ``task_id``: unique non-negative integer.
- ``arrival_slot``: non-negative integer slot in which the task arrives.
- ``task_type``: type name (the scenario's types, unless the speed model is ``trace``).
- ``work``: positive progress units (the speed model's rate is per slot).
- ``visible_clusters``: ``|``-separated cluster indices that can run the task.
- ``min_cpu``, ``min_gpu``, ``mem``: minimum demand (``mem`` is allocated automatically).
- ``max_cpu``, ``max_gpu``: per-task cap on the allocation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import TraceError, file_errors
from envs.scenario import ScenarioConfig, TaskTypeSpec

TRACE_MAGIC = "# tapfinger-trace v1"
TRACE_COLUMNS = (
    "task_id",
    "arrival_slot",
    "task_type",
    "work",
    "visible_clusters",
    "min_cpu",
    "min_gpu",
    "mem",
    "max_cpu",
    "max_gpu",
)


@dataclass
class Trace:
    """Tasks as parallel arrays, sorted by arrival slot (ties by task id)."""

    type_names: list[str]
    task_id: np.ndarray  # int64 [T]
    arrival: np.ndarray  # int64 [T]
    type_idx: np.ndarray  # int64 [T]
    work: np.ndarray  # float64 [T]
    visible: np.ndarray  # bool [T, N]
    min_demand: np.ndarray  # int64 [T, 3] (cpu, gpu, mem)
    cap: np.ndarray  # int64 [T, 2] (cpu, gpu)

    def __len__(self) -> int:
        return len(self.task_id)

    @property
    def num_clusters(self) -> int:
        return self.visible.shape[1]

    def sorted(self) -> Trace:
        order = np.lexsort((self.task_id, self.arrival))
        return Trace(
            list(self.type_names),
            self.task_id[order],
            self.arrival[order],
            self.type_idx[order],
            self.work[order],
            self.visible[order],
            self.min_demand[order],
            self.cap[order],
        )

    def window(self, start: int, count: int) -> Trace:
        """Tasks ``start .. start + count - 1`` (in arrival order), arrivals re-based so the
        first arrives in slot 0."""
        if not 0 <= start <= start + count <= len(self) or count < 1:
            raise ValueError(f"window [{start}, {start + count}) is not within {len(self)} tasks")
        part = slice(start, start + count)
        arrival = self.arrival[part]
        return Trace(
            list(self.type_names),
            self.task_id[part].copy(),
            arrival - arrival.min(),
            self.type_idx[part].copy(),
            self.work[part].copy(),
            self.visible[part].copy(),
            self.min_demand[part].copy(),
            self.cap[part].copy(),
        )

    def check_fits(self, scenario: ScenarioConfig, source: str = "trace") -> None:
        """Every task must fit at least one cluster that can see it (else it never runs)."""
        if self.num_clusters != scenario.num_clusters:
            raise TraceError(
                f"{source}: has {self.num_clusters} clusters, scenario has {scenario.num_clusters}"
            )
        capacity = np.array([[c.cpu, c.gpu, c.mem] for c in scenario.clusters])
        need = self.min_demand[:, None, :]
        mem_ok = (capacity[None, :, 2] == 0) | (capacity[None, :, 2] >= need[:, :, 2])
        fits = (capacity[None, :, 0] >= need[:, :, 0]) & (capacity[None, :, 1] >= need[:, :, 1])
        ok = (fits & mem_ok & self.visible).any(axis=1)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise TraceError(
                f"{source}: task {int(self.task_id[i])}: minimum demand "
                f"{self.min_demand[i].tolist()} fits no cluster that can see it"
            )


def arrival_counts(scenario: ScenarioConfig, rng: np.random.Generator) -> list[int]:
    """Arrivals per slot from slot 0 until ``num_tasks`` have arrived (the last slot may hold
    more; the caller keeps the first ``num_tasks``).

    ``poisson``: a Poisson count of mean ``arrival_rate`` every slot. ``bursty``: a two-state
    Markov-modulated Poisson process. A burst's rate is ``burst_factor`` times the calm rate,
    both set so that the long-run mean is ``arrival_rate`` with ``burst_fraction`` of the slots
    in bursts; the first slot's state is drawn from that stationary share, a slot's count from
    its state's rate, then the state changes (a burst ends with probability ``1 /
    burst_slots``, a calm spell with ``1 / calm_slots``, ``calm_slots = burst_slots (1 - f) /
    f``), so spells are geometric with those means.
    """
    n = scenario.num_tasks
    counts: list[int] = []
    total = 0
    if scenario.arrivals == "poisson":
        while total < n:
            counts.append(int(rng.poisson(scenario.arrival_rate)))
            total += counts[-1]
        return counts
    f, factor = scenario.burst_fraction, scenario.burst_factor
    calm_rate = scenario.arrival_rate / (1 - f + factor * f)
    rates = (calm_rate, factor * calm_rate)
    leave = (f / (scenario.burst_slots * (1 - f)), 1 / scenario.burst_slots)
    state = int(rng.random() < f)
    while total < n:
        counts.append(int(rng.poisson(rates[state])))
        total += counts[-1]
        if rng.random() < leave[state]:
            state = 1 - state
    return counts


def bounded_pareto_low(alpha: float, spread: float, mean: float) -> float:
    """Lower bound L of the bounded Pareto on [L, spread x L] with tail index ``alpha`` whose
    mean is ``mean``."""
    s = spread
    if math.isclose(alpha, 1.0):
        factor = s * math.log(s) / (s - 1)
    else:
        factor = alpha / (alpha - 1) * (1 - s ** (1 - alpha)) / (1 - s**-alpha)
    return mean / factor


def sample_work(t: TaskTypeSpec, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` work sizes of type ``t`` (mean ``t.work_mean``, see ``TaskTypeSpec.work_dist``)."""
    mean, shape = t.work_mean, t.work_shape
    if t.work_dist == "fixed":
        return np.full(m, mean)
    if t.work_dist == "exponential":
        return np.maximum(rng.exponential(mean, m), 1e-3 * mean)
    if t.work_dist == "uniform":
        return rng.uniform(0.5 * mean, 1.5 * mean, m)
    if t.work_dist == "lognormal":
        return rng.lognormal(math.log(mean) - shape**2 / 2, shape, m)
    if t.work_dist == "pareto":
        return mean * (shape - 1) / shape * (1.0 + rng.pareto(shape, m))
    low = bounded_pareto_low(shape, t.work_spread, mean)
    u = rng.random(m)
    return low * (1.0 - u * (1.0 - t.work_spread**-shape)) ** (-1.0 / shape)


def generate_trace(scenario: ScenarioConfig, rng: np.random.Generator) -> Trace:
    """The synthetic workload: arrivals (Poisson or bursty), a type mix, work sizes, visibility.

    Everything is drawn from ``rng`` and the scenario's workload settings alone (never from the
    rules the policies play by, e.g. ``elastic``), in a fixed order: arrivals, types, work per
    type, visibility per task.
    """
    n = scenario.num_tasks
    types = scenario.task_types
    weights = np.array([t.weight for t in types], dtype=float)
    counts = arrival_counts(scenario, rng)
    arrival = np.repeat(np.arange(len(counts)), counts)[:n]
    type_idx = rng.choice(len(types), size=n, p=weights / weights.sum())
    work = np.empty(n)
    for k, t in enumerate(types):
        sel = type_idx == k
        work[sel] = sample_work(t, int(sel.sum()), rng)
    n_clusters = scenario.num_clusters
    capacity = np.array([[c.cpu, c.gpu, c.mem] for c in scenario.clusters])
    min_demand = np.array([[t.min_cpu, t.min_gpu, t.mem] for t in types])[type_idx]
    cap = np.array([[t.max_cpu, t.max_gpu] for t in types])[type_idx]
    visible = np.zeros((n, n_clusters), dtype=bool)
    for i in range(n):
        d = min_demand[i]
        fits = np.flatnonzero(
            (capacity[:, 0] >= d[0])
            & (capacity[:, 1] >= d[1])
            & ((capacity[:, 2] == 0) | (capacity[:, 2] >= d[2]))
        )
        if scenario.visibility == "all":
            chosen = fits
        elif scenario.visibility == "one":
            chosen = rng.choice(fits, size=1)
        else:
            k = int(rng.integers(1, len(fits) + 1))
            chosen = rng.choice(fits, size=k, replace=False)
        visible[i, chosen] = True
    return Trace(
        [t.name for t in types],
        np.arange(n, dtype=np.int64),
        arrival.astype(np.int64),
        type_idx.astype(np.int64),
        work,
        visible,
        min_demand.astype(np.int64),
        cap.astype(np.int64),
    )


def save_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` in the ``tapfinger-trace v1`` format."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        fh.write(TRACE_MAGIC + "\n")
        w = csv.writer(fh)
        w.writerow(TRACE_COLUMNS)
        for i in range(len(trace)):
            w.writerow(
                [
                    int(trace.task_id[i]),
                    int(trace.arrival[i]),
                    trace.type_names[int(trace.type_idx[i])],
                    repr(float(trace.work[i])),
                    "|".join(str(c) for c in np.flatnonzero(trace.visible[i])),
                    *(int(v) for v in trace.min_demand[i]),
                    *(int(v) for v in trace.cap[i]),
                ]
            )
    tmp.replace(path)


def import_report(trace: Trace, stats: dict[str, int], out: str | Path) -> list[str]:
    """What an importer's command line prints after writing ``trace`` to ``out``: the count,
    its conversion counts, and the last arrival and finish without waiting."""
    last = int((trace.arrival + trace.work.astype(np.int64)).max())
    return [
        f"wrote {len(trace)} tasks to {out}",
        *(f"  {key}: {stats[key]}" for key in sorted(stats)),
        f"  last arrival slot: {int(trace.arrival.max())}; latest finish without waiting: {last}",
    ]


_INT_MAX = np.iinfo(np.int64).max


def _int(value: str, where: str, minimum: int = 0) -> int:
    try:
        v = int(value)
    except ValueError:
        raise TraceError(f"{where}: expected an integer, got {value!r}") from None
    if v < minimum:
        raise TraceError(f"{where}: must be >= {minimum}, got {v}")
    if v > _INT_MAX:  # the trace's arrays are int64
        raise TraceError(f"{where}: too large, got {v}")
    return v


def _read_tasks(
    path: Path,
    reader: Iterator[list[str]],
    num_clusters: int | None,
    type_names: list[str] | None,
) -> tuple[list[tuple], list[list[int]], list[str]]:
    """The header and task rows of a trace file, validated: (rows, visible clusters, type names)."""
    got = tuple(h.strip() for h in next(reader, None) or ())
    if got != TRACE_COLUMNS:
        missing = [c for c in TRACE_COLUMNS if c not in got]
        detail = f" (missing: {', '.join(missing)})" if 0 < len(missing) < len(got) else ""
        raise TraceError(f"{path}: header must be {','.join(TRACE_COLUMNS)}{detail}")
    names = list(type_names) if type_names is not None else []
    rows: list[tuple] = []
    vis_rows: list[list[int]] = []
    seen: set[int] = set()
    for r, row in enumerate(reader, start=1):
        if not row:
            continue
        if len(row) != len(TRACE_COLUMNS):
            raise TraceError(
                f"{path}: row {r}: expected {len(TRACE_COLUMNS)} columns, got {len(row)}"
            )
        cell = dict(zip(TRACE_COLUMNS, (c.strip() for c in row)))

        def at(col: str, _r: int = r) -> str:
            return f"{path}: row {_r}, column '{col}'"

        tid = _int(cell["task_id"], at("task_id"))
        if tid in seen:
            raise TraceError(f"{at('task_id')}: duplicate task id {tid}")
        seen.add(tid)
        arrival = _int(cell["arrival_slot"], at("arrival_slot"))
        tname = cell["task_type"]
        if not tname:
            raise TraceError(f"{at('task_type')}: empty")
        if tname not in names:
            if type_names is not None:
                raise TraceError(
                    f"{at('task_type')}: unknown type {tname!r} "
                    f"(scenario types: {', '.join(type_names)})"
                )
            names.append(tname)
        try:
            work = float(cell["work"])
        except ValueError:
            raise TraceError(f"{at('work')}: expected a number, got {cell['work']!r}") from None
        if not (work > 0 and math.isfinite(work)):
            raise TraceError(f"{at('work')}: must be a positive number, got {work}")
        vis_text = cell["visible_clusters"]
        if not vis_text:
            raise TraceError(f"{at('visible_clusters')}: empty (a task needs a cluster)")
        vis = [_int(v, at("visible_clusters")) for v in vis_text.split("|")]
        if num_clusters is not None and max(vis) >= num_clusters:
            raise TraceError(
                f"{at('visible_clusters')}: cluster {max(vis)} does not exist "
                f"({num_clusters} clusters)"
            )
        nums = [_int(cell[c], at(c)) for c in ("min_cpu", "min_gpu", "mem", "max_cpu", "max_gpu")]
        if nums[0] + nums[1] == 0:
            raise TraceError(f"{at('min_cpu')}: a task needs a positive minimum demand")
        if nums[3] < nums[0]:
            raise TraceError(f"{at('max_cpu')}: smaller than min_cpu")
        if nums[4] < nums[1]:
            raise TraceError(f"{at('max_gpu')}: smaller than min_gpu")
        rows.append((tid, arrival, names.index(tname), work, *nums))
        vis_rows.append(vis)
    return rows, vis_rows, names


def load_trace(
    path: str | Path, num_clusters: int | None = None, type_names: list[str] | None = None
) -> Trace:
    """Read and validate a trace file; errors name the row (1 = first task) and column."""
    path = Path(path)
    with (
        file_errors(path, TraceError, "trace file"),
        open(path, newline="", encoding="utf-8") as fh,
    ):
        first = fh.readline()
        if not first:
            raise TraceError(f"{path}: empty file (a trace starts with '{TRACE_MAGIC}')")
        first = first.strip()
        if first != TRACE_MAGIC:
            raise TraceError(f"{path}: first line must be '{TRACE_MAGIC}', got {first[:40]!r}")
        reader = csv.reader(fh)
        try:
            rows, vis_rows, names = _read_tasks(path, reader, num_clusters, type_names)
        except csv.Error as exc:
            raise TraceError(f"{path}: line {reader.line_num + 1}: not valid CSV ({exc})") from None
    if not rows:
        raise TraceError(f"{path}: holds no tasks")
    n_clusters = num_clusters if num_clusters is not None else max(max(v) for v in vis_rows) + 1
    visible = np.zeros((len(rows), n_clusters), dtype=bool)
    for i, v in enumerate(vis_rows):
        visible[i, v] = True
    arr = np.array([r[:3] + r[4:] for r in rows], dtype=np.int64)
    trace = Trace(
        names,
        arr[:, 0],
        arr[:, 1],
        arr[:, 2],
        np.array([r[3] for r in rows], dtype=float),
        visible,
        arr[:, 3:6],
        arr[:, 6:8],
    )
    return trace.sorted()
