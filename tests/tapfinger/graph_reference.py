"""Reference graph builder: the slow, obviously correct one the fast builder is tested against."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from tapfinger.graph import (
    LINKS,
    REV_RUNS_ON,
    REV_VISIBLE_TO,
    RUNS_ON,
    VISIBLE_TO,
    GraphBatch,
)


def build_graph_reference(obs_list: list[dict[str, np.ndarray]]) -> GraphBatch:
    """Slow, obviously correct builder with the same output as ``build_graph_batch``.

    Loops over observations and slots in Python.

    Args:
        obs_list: Observations (numpy dicts as the env returns them).

    Returns:
        The :class:`GraphBatch` on the CPU.
    """
    fc = obs_list[0]["clusters"].shape[1]
    fp = obs_list[0]["pending"].shape[1]
    fr = obs_list[0]["running"].shape[1]
    cluster_x: list[np.ndarray] = []
    task_x: list[np.ndarray] = []
    running_x: list[np.ndarray] = []
    cluster_batch: list[int] = []
    task_batch: list[int] = []
    running_batch: list[int] = []
    task_slot_index: list[list[int]] = []
    running_slot_index: list[list[int]] = []
    me_index: list[int] = []
    visible_to: list[tuple[int, int]] = []
    runs_on: list[tuple[int, int]] = []
    links: list[tuple[int, int]] = []
    for g, obs in enumerate(obs_list):
        n = obs["clusters"].shape[0]
        first_cluster = len(cluster_x)
        for c in range(n):
            cluster_x.append(obs["clusters"][c])
            cluster_batch.append(g)
        agent = [c for c in range(n) if obs["agent"][c]]
        assert len(agent) == 1, "agent must be one-hot"
        me = first_cluster + agent[0]
        me_index.append(me)
        for c in range(n):
            for d in range(n):
                if c != d:
                    links.append((first_cluster + c, first_cluster + d))
        slots = []
        for i in range(obs["pending"].shape[0]):
            if not obs["pending_mask"][i]:
                slots.append(-1)
                continue
            node = len(task_x)
            slots.append(node)
            task_x.append(obs["pending"][i])
            task_batch.append(g)
            for c in range(n):
                if obs["pending_visible"][i, c]:
                    visible_to.append((node, first_cluster + c))
        task_slot_index.append(slots)
        slots = []
        for j in range(obs["running"].shape[0]):
            if not obs["running_mask"][j]:
                slots.append(-1)
                continue
            node = len(running_x)
            slots.append(node)
            running_x.append(obs["running"][j])
            running_batch.append(g)
            runs_on.append((node, me))
        running_slot_index.append(slots)

    def feats(rows: list[np.ndarray], width: int) -> torch.Tensor:
        return torch.tensor(np.array(rows, dtype=np.float32).reshape(len(rows), width))

    def edges(pairs: list[tuple[int, int]]) -> torch.Tensor:
        return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()

    def longs(values: list) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long)

    data = HeteroData()
    data["cluster"].x = feats(cluster_x, fc)
    data["cluster"].batch = longs(cluster_batch)
    data["task"].x = feats(task_x, fp)
    data["task"].batch = longs(task_batch)
    data["running"].x = feats(running_x, fr)
    data["running"].batch = longs(running_batch)
    data[VISIBLE_TO].edge_index = edges(visible_to)
    data[REV_VISIBLE_TO].edge_index = edges([(c, t) for t, c in visible_to])
    data[RUNS_ON].edge_index = edges(runs_on)
    data[REV_RUNS_ON].edge_index = edges([(c, t) for t, c in runs_on])
    data[LINKS].edge_index = edges(links)
    return GraphBatch(
        data=data,
        task_slot_index=longs(task_slot_index),
        running_slot_index=longs(running_slot_index),
        me_index=longs(me_index),
        cluster_batch=longs(cluster_batch),
        task_batch=longs(task_batch),
        running_batch=longs(running_batch),
        num_graphs=len(obs_list),
    )
