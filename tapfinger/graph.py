"""Graph builder: a batch of padded observations becomes one heterogeneous graph (DESIGN §5.2).

Each observation of ``edge_cluster_v0`` (see :mod:`envs.observation`) is a small heterogeneous
graph with three node types:

* ``cluster``: every one of the N clusters (features: ``clusters`` rows), always all present;
* ``task``: the observing agent's valid pending tasks (``pending`` rows where ``pending_mask``);
* ``running``: the observing agent's valid running tasks (``running`` rows where
  ``running_mask``).

and five edge types (:data:`EDGE_TYPES`):

* ``('task', 'visible_to', 'cluster')``: pending task -> every cluster that can see it
  (``pending_visible``), and its reverse ``('cluster', 'rev_visible_to', 'task')``;
* ``('running', 'runs_on', 'cluster')``: running task -> the observing agent's cluster (the one-hot
  ``agent``), and its reverse ``('cluster', 'rev_runs_on', 'running')``;
* ``('cluster', 'links', 'cluster')``: all ordered pairs of distinct clusters of one observation
  (symmetric, so it is its own reverse).

:func:`build_graph_batch` builds the disjoint union of B such graphs as ONE ``HeteroData`` straight
from the stacked padded tensors with index arithmetic (cumsum / nonzero / offsets): no per-graph
objects and no ``Batch.from_data_list``, which is an order of magnitude slower. Node ids follow
observation order, then slot order, so ``task`` node ``k`` is the k-th valid (b, i) in row-major
order. Padding never becomes a node; the index tensors of :class:`GraphBatch` map slots back to
nodes (``-1`` for padding) so heads can gather per-slot embeddings.

Every node type always carries ``x`` with its full feature width, also with zero rows (a batch
without any pending or running task), and every edge type always carries an ``edge_index`` of
shape ``[2, E]`` (possibly ``E = 0``), so ``HGTConv`` / ``HANConv`` see the same types each call.
Build those convs with ``in_channels=node_feature_dims(...)``, not ``-1``: PyG's lazy
initialisation crashes if the first batch it sees has an empty node type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData

NODE_TYPES: tuple[str, ...] = ("cluster", "task", "running")
"""Node types of every graph built here."""

VISIBLE_TO = ("task", "visible_to", "cluster")
REV_VISIBLE_TO = ("cluster", "rev_visible_to", "task")
RUNS_ON = ("running", "runs_on", "cluster")
REV_RUNS_ON = ("cluster", "rev_runs_on", "running")
LINKS = ("cluster", "links", "cluster")

EDGE_TYPES: tuple[tuple[str, str, str], ...] = (
    VISIBLE_TO,
    REV_VISIBLE_TO,
    RUNS_ON,
    REV_RUNS_ON,
    LINKS,
)
"""Edge types of every graph built here (reverse edges included)."""

METADATA: tuple[list[str], list[tuple[str, str, str]]] = (list(NODE_TYPES), list(EDGE_TYPES))
"""``HeteroData.metadata()`` of every graph built here, for building models before any data."""

BOOL_KEYS = frozenset(
    {
        "pending_mask",
        "running_mask",
        "pending_visible",
        "task_mask",
        "cpu_mask",
        "gpu_mask",
        "agent",
        "changed",
    }
)
"""Observation keys that :func:`to_tensors` turns into ``torch.bool``."""

FLOAT_KEYS = frozenset({"clusters", "pending", "running"})
"""Observation keys that :func:`to_tensors` turns into ``torch.float32``."""


def node_feature_dims(obs: Mapping[str, Any]) -> dict[str, int]:
    """Input width of each node type: the ``in_channels`` dict for ``HGTConv`` / ``HANConv``.

    Pass this instead of ``in_channels=-1``: PyG's lazy initialisation reads the width from the
    first row of each node type's ``x``, so it crashes (``IndexError``) when the first batch a
    model sees has no pending or no running task at all.

    Args:
        obs: Anything with ``clusters``, ``pending`` and ``running`` entries that have a
            ``shape``: one observation, a stacked batch, its tensors, or the env's
            ``observation_space(agent)``.

    Returns:
        ``{"cluster": Fc, "task": Fp, "running": Fr}``.
    """
    return {
        "cluster": int(obs["clusters"].shape[-1]),
        "task": int(obs["pending"].shape[-1]),
        "running": int(obs["running"].shape[-1]),
    }


@dataclass
class GraphBatch:
    """One ``HeteroData`` holding B observation graphs, plus the indices heads need.

    Attributes:
        data: The batched graph. ``data[t].x`` for every node type ``t`` in :data:`NODE_TYPES`,
            ``data[e].edge_index`` for every edge type ``e`` in :data:`EDGE_TYPES`, and
            ``data[t].batch`` (same as the ``*_batch`` attributes below).
        task_slot_index: ``[B, W]`` long: ``task`` node id of pending slot (b, i), -1 for padding.
        running_slot_index: ``[B, R]`` long: ``running`` node id of running slot (b, j), -1 for
            padding.
        me_index: ``[B]`` long: ``cluster`` node id of the observing agent's cluster.
        cluster_batch: ``[B*N]`` long: observation of each ``cluster`` node (node b*N + n is
            cluster n of observation b).
        task_batch: ``[num_task]`` long: observation of each ``task`` node.
        running_batch: ``[num_running]`` long: observation of each ``running`` node.
        num_graphs: B.
    """

    data: HeteroData
    task_slot_index: torch.Tensor
    running_slot_index: torch.Tensor
    me_index: torch.Tensor
    cluster_batch: torch.Tensor
    task_batch: torch.Tensor
    running_batch: torch.Tensor
    num_graphs: int


# ---------------------------------------------------------------------------------- batching
def stack_observations(obs_list: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack same-shaped observations key by key.

    Values are stacked with ``np.stack``.

    Args:
        obs_list: Observations of one scenario (all with the same keys and shapes).

    Returns:
        ``{key: array [B, ...]}`` with B = ``len(obs_list)`` and each key's dtype kept.

    Raises:
        ValueError: If ``obs_list`` is empty.
    """
    if not obs_list:
        raise ValueError("cannot stack an empty list of observations")
    return {key: np.stack([o[key] for o in obs_list]) for key in obs_list[0]}


def to_tensors(stacked: dict[str, Any], device: torch.device | str = "cpu") -> dict[str, Any]:
    """Convert stacked observation arrays to tensors on ``device``.

    Masks (:data:`BOOL_KEYS`, int8 in the observation) become ``bool``; ``clusters``,
    ``pending`` and ``running`` become ``float32``; everything else keeps its dtype (``free`` and
    ``demand`` stay ``int64``). Masks travel as int8 and are converted on the device.

    Args:
        stacked: Output of :func:`stack_observations` (or any ``{key: array [B, ...]}``).
        device: Target device.

    Returns:
        ``{key: tensor [B, ...]}``.
    """
    device = torch.device(device)

    def convert(key: str, value: np.ndarray) -> torch.Tensor:
        value = np.ascontiguousarray(value)
        if not value.flags.writeable:  # torch warns about read-only arrays
            value = value.copy()
        t = torch.from_numpy(value).to(device)
        if key in BOOL_KEYS:
            return t.bool()
        if key in FLOAT_KEYS or t.is_floating_point():
            return t.float()
        return t

    return {key: convert(key, value) for key, value in stacked.items()}


# ---------------------------------------------------------------------------------- fast path
def _link_edges(b: int, n: int, device: torch.device) -> torch.Tensor:
    """All ordered pairs of distinct clusters within each of ``b`` observations of ``n``."""
    pairs = (~torch.eye(n, dtype=torch.bool, device=device)).nonzero().t()  # [2, n(n-1)]
    offsets = torch.arange(b, device=device).mul_(n)
    return (pairs.unsqueeze(1) + offsets.view(1, b, 1)).reshape(2, b * n * (n - 1))


def build_graph_batch(batch: dict[str, torch.Tensor]) -> GraphBatch:
    """Build one batched ``HeteroData`` from B stacked padded observations.

    Padded slots are dropped; reverse edges are added. Pure index arithmetic on the input
    tensors' device (three ``nonzero`` calls, i.e. three host syncs on a GPU).

    Args:
        batch: Output of :func:`to_tensors`: at least ``clusters`` [B, N, Fc], ``pending``
            [B, W, Fp], ``pending_mask`` [B, W], ``pending_visible`` [B, W, N], ``running``
            [B, R, Fr], ``running_mask`` [B, R] and ``agent`` [B, N] (one-hot). Masks may be bool
            or integer.

    Returns:
        The :class:`GraphBatch`.

    Raises:
        ValueError: If ``clusters`` is not three-dimensional.
    """
    clusters = batch["clusters"]
    if clusters.dim() != 3:
        raise ValueError(f"clusters must be [B, N, Fc], got shape {tuple(clusters.shape)}")
    pending = batch["pending"]
    running = batch["running"]
    b, n, fc = clusters.shape
    w, fp = pending.shape[1], pending.shape[2]
    r, fr = running.shape[1], running.shape[2]
    device = clusters.device

    pending_mask = batch["pending_mask"].bool().reshape(-1)  # [B*W]
    running_mask = batch["running_mask"].bool().reshape(-1)  # [B*R]
    visible = batch["pending_visible"].bool() & pending_mask.view(b, w, 1)  # [B, W, N]

    # Node ids of valid slots: running count of valid slots before them; -1 for padding.
    task_slot = torch.where(pending_mask, pending_mask.cumsum(0) - 1, -1)
    running_slot = torch.where(running_mask, running_mask.cumsum(0) - 1, -1)
    task_pos = pending_mask.nonzero().view(-1)  # flat slot b*W + i of each task node
    running_pos = running_mask.nonzero().view(-1)
    task_batch = torch.div(task_pos, w, rounding_mode="floor")
    running_batch = torch.div(running_pos, r, rounding_mode="floor")

    graph_offsets = torch.arange(b, device=device).mul_(n)
    me_index = graph_offsets + batch["agent"].to(torch.uint8).argmax(dim=1)
    cluster_batch = torch.arange(b, device=device).repeat_interleave(n)

    # task -> cluster: flat index ((b*W + i)*N + c) of each visible pair.
    vis_pos = visible.reshape(-1).nonzero().view(-1)
    vis_slot = torch.div(vis_pos, n, rounding_mode="floor")
    vis_dst = torch.div(vis_slot, w, rounding_mode="floor") * n + vis_pos % n
    visible_to = torch.stack((task_slot[vis_slot], vis_dst))
    # running -> the observing agent's cluster.
    runs_on = torch.stack(
        (torch.arange(running_pos.numel(), device=device), me_index[running_batch])
    )

    data = HeteroData()
    data["cluster"].x = clusters.reshape(b * n, fc)
    data["cluster"].batch = cluster_batch
    data["task"].x = pending.reshape(b * w, fp).index_select(0, task_pos)
    data["task"].batch = task_batch
    data["running"].x = running.reshape(b * r, fr).index_select(0, running_pos)
    data["running"].batch = running_batch
    data[VISIBLE_TO].edge_index = visible_to
    data[REV_VISIBLE_TO].edge_index = visible_to.flip(0)
    data[RUNS_ON].edge_index = runs_on
    data[REV_RUNS_ON].edge_index = runs_on.flip(0)
    data[LINKS].edge_index = _link_edges(b, n, device)
    return GraphBatch(
        data=data,
        task_slot_index=task_slot.view(b, w),
        running_slot_index=running_slot.view(b, r),
        me_index=me_index,
        cluster_batch=cluster_batch,
        task_batch=task_batch,
        running_batch=running_batch,
        num_graphs=b,
    )
