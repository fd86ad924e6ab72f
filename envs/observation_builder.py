"""ObservationBuilder: every agent's observation, masks and facts, rebuilt part by part.

The simulator counts changes per cluster (windows, free resources, running sets) and per slot;
each part of the observation is rebuilt only when one of its inputs changed since the last build:

- clusters (every build): free resources, running and waiting counts of every cluster;
- windows (windows): which tasks each window shows, their raw facts and demands;
- pending (windows, free, slot): the window's task features, of which ``waited`` follows the
  slot and ``fits_here`` / ``rate_at_best`` the free resources;
- running (running sets, slot): per-task rows kept in a table; within a slot only the tasks that
  just started get a row (from a table of start rows), when a slot passed all are recomputed;
- masks (windows, free; running sets in elastic mode);
- state (every build).

A rebuilt part is a fresh array, an unchanged one is handed out again: handed-out arrays are
never written afterwards (kept observations stay as they were) and read-only (so writing into
one raises instead of corrupting later rounds). Task-index matrices are padded with
``NO_TASK`` (-1), which gathers the "no task" row of every table.
"""

from __future__ import annotations

import numpy as np

from envs.observation import CLUSTER_FEATURES, TASK_FEATURES, Dims, Exposure, columns, squash
from envs.observation_elastic import elastic_facts, elastic_masks
from envs.observation_tables import (
    CAP,
    DEMAND,
    INT,
    RunningRows,
    SquashTable,
    TaskTables,
    range_masks,
    rate_scale,
)
from envs.pending import NO_TASK
from envs.simulator import Simulator
from envs.speed_models import SpeedModel
from envs.trace import Trace

CLUSTER = columns(CLUSTER_FEATURES)
#: The order in which ``_clusters`` writes a cluster's row (checked against the layout).
CLUSTER_ROW = ("free_cpu", "free_gpu", "free_mem", "cap_cpu", "cap_gpu",
               "running", "waiting", "is_me")  # fmt: skip


HANDED_OUT = ("free", "pending", "pending_mask", "pending_visible", "running", "running_mask",
              "task_mask", "cpu_mask", "gpu_mask", "demand", "index",
              "ints", "attained", "task_alloc", "task_changed", "task_done", "task_progress",
              "remaining")  # fmt: skip


class ObservationBuilder:
    """Builds every agent's observation, masks and facts, reusing what did not change."""

    def __init__(
        self, dims: Dims, capacity: np.ndarray, speed: SpeedModel, exposure: Exposure
    ) -> None:
        d = self.d = dims
        self.exposure = exposure
        n = d.clusters
        if CLUSTER_ROW != CLUSTER_FEATURES:
            raise RuntimeError("ObservationBuilder._clusters writes an outdated cluster layout")
        self.capacity = capacity
        self.speed = speed
        self.scale = (
            max(int(capacity[:, 0].max()), 1),
            max(int(capacity[:, 1].max()), 1),
            max(int(capacity[:, 2].max()), 1),
        )
        self.rate_norm = speed.base / rate_scale(speed)[:, None, None]
        self.task = columns(TASK_FEATURES, d.types)
        self.cap_cpu = (capacity[:, 0] / self.scale[0]).tolist()
        self.cap_gpu = (capacity[:, 1] / self.scale[1]).tolist()
        self.is_me = np.zeros((n, n, len(CLUSTER_FEATURES)), dtype=np.float32)
        self.is_me[np.arange(n), np.arange(n), CLUSTER["is_me"]] = 1.0
        self.range_cpu = range_masks(d.cpu_levels)
        self.range_gpu = range_masks(d.gpu_levels)
        self.running_rows = RunningRows(d, exposure, self.scale[:2])
        self.start_rows = self.running_rows.at_start(len(speed.base))
        self.no_memory = capacity[:, 2] == 0
        # The no-op's column of the action-aligned arrays.
        self.noop_index = np.full((n, 1), NO_TASK, dtype=np.int64)
        self.noop_task = np.ones((n, 1), dtype=np.int8)
        self.noop_cpu = np.zeros((n, 1, d.cpu_levels), dtype=np.int8)
        self.noop_cpu[:, 0, 0] = 1
        self.noop_gpu = np.zeros((n, 1, d.gpu_levels), dtype=np.int8)
        self.noop_gpu[:, 0, 0] = 1
        self.agent = np.eye(n, dtype=np.int8)
        self.capacity_rows = capacity.copy()
        self.capacity_rows.flags.writeable = self.agent.flags.writeable = False  # handed out
        self.squash8 = SquashTable(8.0)  # time waited and slots run, scale 8

    # ------------------------------------------------------------------ per trace
    def prepare(self, trace: Trace) -> None:
        """Per-trace tables; forgets everything built for the last episode."""
        d, n = self.d, self.d.clusters
        self.tables = TaskTables(d, trace, self.scale[:2], self.rate_norm, self.exposure)
        self.mem_demands = bool(trace.min_demand[:, 2].any() and self.no_memory.any())
        self.run = np.full((n, d.running), NO_TASK, dtype=np.int64)
        self.run_lists: list[list[int]] = [[] for _ in range(n)]
        self.run_facts: list[dict] = [{} for _ in range(n)]
        if not d.elastic:  # without pauses a waiting task has no allocation, service, progress
            self.attained = np.zeros((n, d.actions))
            self.task_alloc = np.zeros((n, d.actions, 2), dtype=np.int64)
            self.task_changed = np.zeros((n, d.actions), dtype=np.int8)
            self.task_done = np.zeros((n, d.actions))
            self.task_progress = np.zeros((n, d.actions))
        self.seen, self.frozen = None, {}  # last build's change counters; parts made read-only

    # ------------------------------------------------------------------ building
    def build(self, sim: Simulator) -> tuple[list[dict], list[dict], np.ndarray]:
        """Observations and facts for every cluster, plus the global state vector."""
        d = self.d
        n = d.clusters
        seen = (
            list(sim.pending.window_version),
            list(sim.free_version),
            list(sim.running_version),
            sim.slot,
        )
        last, self.seen = self.seen, seen
        if last is None or seen[3] != last[3]:
            windows = free = new_slot = True
            changed = list(range(n))
            same: list[int] = []
        else:
            windows, free, new_slot = seen[0] != last[0], seen[1] != last[1], False
            changed = [c for c in range(n) if seen[2][c] != last[2][c]]
            # Agents whose window, free resources and running set all stayed as they were.
            same = [
                c
                for c in range(n)
                if seen[0][c] == last[0][c]
                and seen[1][c] == last[1][c]
                and seen[2][c] == last[2][c]
            ]
        clusters = self._clusters(sim)
        if free:
            self.free = sim.free.copy()
        if windows:
            self._windows(sim)
        if changed:
            self._running(sim, changed, new_slot)
        if windows or free:
            self._pending(sim, windows, new_slot)
        if windows or free or (d.elastic and changed):
            self._masks(sim)
        if d.elastic and (windows or changed):
            elastic_facts(self, sim)
        state = np.concatenate(
            [
                clusters[0, :, : CLUSTER["is_me"]].ravel(),  # every feature but is_me (last)
                self.pending.ravel(),
                self.running.ravel(),
                [len(sim.waiting) / (len(sim.waiting) + d.window)],
            ]
        ).astype(np.float32)
        self._freeze(clusters)
        obs, facts = self._package(clusters, same)
        return obs, facts, state

    def _freeze(self, clusters: np.ndarray) -> None:
        """Make the handed-out parts rebuilt since the last build read-only (the running facts
        are views of arrays that ``_running`` makes read-only)."""
        clusters.flags.writeable = False
        for name in HANDED_OUT:
            if (part := getattr(self, name)) is not self.frozen.get(name):
                part.flags.writeable = False
                self.frozen[name] = part

    def _clusters(self, sim: Simulator) -> np.ndarray:
        """[N, N, F]: every agent's view of all clusters (they differ only in ``is_me``).

        Tiny, so computed in Python floats, one row per cluster in CLUSTER_ROW order (their
        float32 rounding equals numpy's).
        """
        d = self.d
        cmax, gmax, mmax = self.scale
        nr, w = d.running, d.window
        rows = [
            (
                f[0] / cmax,  # free_cpu
                f[1] / gmax,  # free_gpu
                f[2] / mmax,  # free_mem
                cap_c,  # cap_cpu
                cap_g,  # cap_gpu
                min(len(r) / nr, 1.0),  # running
                # waiting = squash(k, w): for integers, float32(k / (k + w)) in double precision
                # equals the float32 division.
                k / (k + w),
                0.0,  # is_me (set per agent below)
            )
            for f, cap_c, cap_g, r, k in zip(
                sim.free.tolist(),
                self.cap_cpu,
                self.cap_gpu,
                sim.running,
                sim.pending.visible_counts(),
            )
        ]
        return np.add(np.array(rows, dtype=np.float32), self.is_me)

    def _windows(self, sim: Simulator) -> None:
        """What follows from the pending windows alone, action-aligned where it can be."""
        tb = self.tables
        win = self.win = sim.pending.window_matrix()  # never written: a new one on changes
        self.index = np.concatenate((self.noop_index, win), axis=1)
        self.ints = tb.ints[self.index]
        self.window_ints = self.ints[:, 1:]
        self.pending_mask = tb.valid[win]
        self.pending_visible = tb.visible[win]
        self.demand = tb.demand[self.index]
        if self.mem_demands:
            self.demand[self.no_memory, :, 2] = 0  # memory is not modelled on those clusters
        self.remaining = tb.work[self.index]

    def _running(self, sim: Simulator, changed: list[int], new_slot: bool) -> None:
        """Rows and facts of the running tasks of the ``changed`` clusters."""
        d, tb = self.d, self.tables
        # Within a slot and without pauses, a cluster's running set only grows at its end.
        quick = not new_slot and not d.elastic
        nr, work_known = d.running, self.exposure.work
        remaining = self.running_rows.col["remaining"]
        pending = self.task["remaining"]
        recompute = []
        if len(changed) == d.clusters and not quick:  # every running set anew
            recompute = changed
            self.run_lists = [sim.running[c][:nr] for c in changed]
            rows = [r + [NO_TASK] * (nr - len(r)) for r in self.run_lists]
            self.run = np.array(rows, dtype=np.int64).reshape(d.clusters, nr)
        else:
            for c in changed:
                old, new = self.run_lists[c], sim.running[c][:nr]
                if quick and new[: len(old)] == old:
                    for k in range(len(old), len(new)):
                        task = new[k]
                        cpu, gpu, _ = sim.alloc[task].tolist()
                        tb.running_rows[task] = self.start_rows[tb.types[task], cpu, gpu]
                        if work_known:  # the task's own remaining work, as it waited
                            tb.running_rows[task, remaining] = tb.pending_rows[task, pending]
                        tb.alloc[task] = (cpu, gpu)
                        self.run[c, k] = task
                else:
                    recompute.append(c)
                    self.run[c, : len(new)] = new
                    self.run[c, len(new) :] = NO_TASK
                self.run_lists[c] = new
        ids = None
        if recompute:
            ids = np.array([t for c in recompute for t in self.run_lists[c]], dtype=np.int64)
            tr = sim.trace
            alloc, done, rate = sim.alloc[ids], sim.progress[ids], sim.last_rate[ids]
            run_slots = sim.run_slots[ids]
            squash8 = self.squash8.upto(sim.slot)  # a task has run at most every slot so far
            rows = self.running_rows(
                tr.type_idx[ids], alloc, done, tr.work[ids], rate, run_slots, squash8
            )
            tb.running_rows[ids] = rows
            tb.alloc[ids] = alloc[:, :2]
            tb.run_slots[ids] = run_slots
            tb.done[ids], tb.rate[ids] = done, rate
        self.running = tb.running_rows[self.run]
        self.rm = self.run != NO_TASK
        self.running_mask = self.rm.view(np.int8)  # a fresh bool array, read as 0 / 1
        lists = [self.run_lists[c] for c in changed]
        if recompute is not changed:  # else the tasks recomputed are those of every cluster
            ids = np.array([t for part in lists for t in part], dtype=np.int64)
        # Separate gathers, so that the facts are contiguous arrays as they always were.
        facts = {
            "running_index": ids,
            "running_type": sim.trace.type_idx[ids],
            "running_alloc": tb.alloc[ids],
            "running_min_demand": tb.ints[ids, DEMAND],
            "running_cap": tb.ints[ids, CAP],
            "running_done": tb.done[ids],
            "running_rate": tb.rate[ids],
            "running_run_slots": tb.run_slots[ids],
        }
        if work_known:
            work = tb.work[ids]
            facts["running_progress"] = np.minimum(facts["running_done"] / work, 1.0)
            facts["running_remaining_work"] = np.maximum(work - facts["running_done"], 0.0)
        for part in facts.values():  # the facts are views of these (handed out: ``_freeze``)
            part.flags.writeable = False
        start = 0
        for c, part in zip(changed, lists):
            sl = slice(start, start + len(part))
            start += len(part)
            self.run_facts[c] = {key: value[sl] for key, value in facts.items()}

    def _pending(self, sim: Simulator, windows: bool, new_slot: bool) -> None:
        """[N, W, F] pending task features: copied from the last build where still valid."""
        f = self.task
        if windows:
            out = self.tables.pending_rows[self.win]
            if self.d.elastic:  # a paused task keeps its service and progress while it waits
                pm = self.win != NO_TASK
                safe = np.where(pm, self.win, 0)
                attained = sim.attained_gpu[safe] / self.scale[1]
                out[..., f["attained"]] = squash(attained, 8.0) * pm
                if self.exposure.work:
                    done, work = sim.progress[safe], sim.trace.work[safe]
                    out[..., f["progress"]] = np.minimum(done / work, 1.0) * pm
                    left = np.maximum(work - done, 0.0) / self.exposure.work_unit
                    out[..., f["remaining"]] = squash(left, 1.0) * pm
        else:
            out = self.pending.copy()
        if windows or new_slot:
            # by_arrival[a] = squash(slot - a): "no task" arrives at -1 and reads squash(0) = 0.
            by_arrival = self.squash8.upto(sim.slot)[sim.slot :: -1]
            out[..., f["waited"]] = by_arrival[self.window_ints[..., INT["arrival"]]]
        st = sim.window_starts()
        out[..., f["fits_here"]] = st.fits
        if self.exposure.speeds:
            # 0 <= hi <= levels - 1: free never exceeds capacity, caps never exceed the grid.
            best = self.rate_norm[self.window_ints[..., INT["type"]], st.hi_cpu, st.hi_gpu]
            out[..., f["rate_at_best"]] = np.where(st.fits, best, 0.0)
        self.pending = out

    def _masks(self, sim: Simulator) -> None:
        """Task and task-conditional allocation masks and their per-dimension unions."""
        d = self.d
        st = sim.window_starts()
        wi = self.window_ints
        lo_cpu = np.where(st.fits, wi[..., INT["min_cpu"]], d.cpu_levels)
        lo_gpu = np.where(st.fits, wi[..., INT["min_gpu"]], d.gpu_levels)
        task = [self.noop_task, st.fits]
        cpu = [self.noop_cpu, self.range_cpu[lo_cpu, st.hi_cpu]]
        gpu = [self.noop_gpu, self.range_gpu[lo_gpu, st.hi_gpu]]
        if d.elastic:
            for part, extra in zip((task, cpu, gpu), elastic_masks(self, sim)):
                part.append(extra)
        self.task_mask = np.concatenate(task, axis=1, dtype=np.int8)
        self.cpu_mask = np.concatenate(cpu, axis=1, dtype=np.int8)
        self.gpu_mask = np.concatenate(gpu, axis=1, dtype=np.int8)

    # ------------------------------------------------------------------ packaging
    def _package(self, clusters: np.ndarray, same: list[int]) -> tuple[list[dict], list[dict]]:
        """Per agent: the observation and the facts, row views of the parts (the last ones
        again, but for ``clusters``, for the agents in ``same``)."""
        exposure = self.exposure
        obs, facts = [], []
        for c in range(self.d.clusters):
            if same and c in same:
                obs.append({**self.obs[c], "clusters": clusters[c]})
                facts.append(self.facts[c])
                continue
            task_mask, free, ints = self.task_mask[c], self.free[c], self.ints[c]
            obs.append(
                {
                    "clusters": clusters[c],
                    "pending": self.pending[c],
                    "pending_mask": self.pending_mask[c],
                    "pending_visible": self.pending_visible[c],
                    "running": self.running[c],
                    "running_mask": self.running_mask[c],
                    "agent": self.agent[c],
                    "task_mask": task_mask,
                    "cpu_mask": self.cpu_mask[c],
                    "gpu_mask": self.gpu_mask[c],
                    "free": free,
                    "demand": self.demand[c],
                    "alloc": self.task_alloc[c],
                    "changed": self.task_changed[c],
                }
            )
            facts.append(
                {
                    "task_index": self.index[c],
                    "task_id": ints[:, INT["task_id"]],
                    "task_arrival": ints[:, INT["arrival"]],
                    "task_type": ints[:, INT["type"]],
                    "task_attained_gpu": self.attained[c],
                    "task_cap": ints[:, CAP],
                    "task_alloc": self.task_alloc[c],
                    "task_changed": self.task_changed[c],
                    "task_done": self.task_done[c],
                    **self.run_facts[c],
                    "free": free,
                    "capacity": self.capacity_rows[c],
                }
            )
            if exposure.work:
                left = self.remaining[c]
                facts[-1]["task_remaining_work"] = left
                facts[-1]["task_progress"] = self.task_progress[c]
            if exposure.oracle:
                facts[-1]["oracle_remaining_work"] = self.remaining[c]
        self.obs, self.facts = obs, facts
        return obs, facts
