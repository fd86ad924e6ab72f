"""The elastic-mode parts of the observation: running tasks' masks and the action-aligned facts
over the window and the running tasks (built by :class:`~envs.observation_builder.
ObservationBuilder`, which passes itself in)."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.observation_tables import CAP, DEMAND
from envs.simulator import Simulator


def elastic_masks(b: Any, sim: Simulator) -> tuple[np.ndarray, ...]:
    """Running tasks' rows of the task, cpu and gpu masks: resize within [min, min(cap, free +
    own)], or pause with cpu level 0."""
    rm, run_ints = b.rm, b.tables.ints[b.run]
    alloc = sim.alloc[b.run]  # padding rows read some task: masked below
    free = sim.free
    lc, lg = np.arange(b.d.cpu_levels), np.arange(b.d.gpu_levels)
    rmn = run_ints[..., DEMAND]
    rcp = run_ints[..., CAP]
    rhi_c = np.minimum(rcp[..., 0], free[:, None, 0] + alloc[..., 0])
    rhi_g = np.minimum(rcp[..., 1], free[:, None, 1] + alloc[..., 1])
    rcm = (lc >= rmn[..., 0:1]) & (lc <= rhi_c[..., None])
    rcm[..., 0] = True  # cpu level 0 pauses the task
    rgm = (lg >= rmn[..., 1:2]) & (lg <= rhi_g[..., None])
    return rm, rcm & rm[..., None], rgm & rm[..., None]


def elastic_facts(b: Any, sim: Simulator) -> None:
    """Action-aligned facts over the window and the running tasks (which change as they run
    and are resized), set on the builder ``b``."""
    tb = b.tables
    index = b.index = np.concatenate((b.noop_index, b.win, b.run), axis=1)
    b.ints = tb.ints[index]
    b.demand = tb.demand[index]
    b.demand[:, 1 + b.d.window :, 2] = 0  # a resize asks no memory
    if b.mem_demands:
        b.demand[b.no_memory, :, 2] = 0
    valid = index >= 0
    safe = np.where(valid, index, 0)
    done, work = sim.progress[safe], sim.trace.work[safe]
    b.attained = np.where(valid, sim.attained_gpu[safe], 0.0)
    b.task_alloc = np.where(valid[..., None], sim.alloc[safe, :2], 0)
    b.task_changed = (valid & (sim.changed_slot[safe] == sim.slot)).astype(np.int8)
    b.task_done = np.where(valid, done, 0.0)
    b.task_progress = np.where(valid, done / work, 0.0)
    b.remaining = np.where(valid, work - done, 0.0)
