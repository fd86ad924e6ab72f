"""Alibaba pods into tasks: demand, type, lifetime rules (pending, long-running), visibility.

The rules are "Pods into tasks" and the two paragraphs after it in the docstring of
:mod:`envs.alibaba`.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np

from envs.alibaba_csv import GPU_UNITS_PER_GPU, Node, Pod
from envs.errors import TraceError
from envs.trace import Trace

#: Default lifetime cap of long-running services with ``long_running="cap"`` (one day).
DEFAULT_MAX_LIFETIME_S = 86_400.0

#: Task type names, in the order used for ``Trace.type_names``.
TASK_TYPES = ("cpu", "gpu_share", "gpu_1", "gpu_multi")


def pod_demand(pod: Pod) -> tuple[int, int, int]:
    """Minimum demand (cpu cores, GPU units, memory GiB) of a pod; see :mod:`envs.alibaba`."""
    cpu = max(1, math.ceil(pod.cpu_milli / 1000))
    if pod.num_gpu == 0:
        gpu = 0
    elif pod.gpu_milli == 1000 or pod.num_gpu > 1:
        gpu = pod.num_gpu * GPU_UNITS_PER_GPU
    else:
        gpu = math.ceil(pod.gpu_milli * GPU_UNITS_PER_GPU / 1000)
    mem = math.ceil(pod.memory_mib / 1024)
    return cpu, gpu, mem


def pod_type(pod: Pod) -> str:
    """``cpu``, ``gpu_share``, ``gpu_1`` or ``gpu_multi``, from the pod's request."""
    if pod.num_gpu == 0:
        return "cpu"
    if pod.num_gpu > 1:
        return "gpu_multi"
    return "gpu_1" if pod.gpu_milli == 1000 else "gpu_share"


def _hosts(
    pod: Pod, demand: tuple[int, int, int], cap: np.ndarray, models: list[str]
) -> np.ndarray:
    """bool [nodes]: which nodes could host ``pod`` alone (resources, and ``gpu_spec``)."""
    fits = (cap >= np.array(demand)).all(axis=1)
    if pod.gpu_spec and demand[1] > 0:
        fits &= np.array([m in pod.gpu_spec for m in models])
    return fits


def pods_to_trace(
    pods: list[Pod],
    members: list[list[Node]],
    *,
    source: Path,
    slot_seconds: float,
    long_running: Literal["drop", "cap"],
    max_lifetime_s: float,
    pending: Literal["keep", "drop"],
    all_nodes: list[Node] | None = None,
    unhostable: Literal["error", "drop"] = "error",
) -> tuple[Trace, Counter[str]]:
    """The tasks of the pods kept by the rules, visible to the clusters that can host them.

    Args:
        pods: The pod list, as read.
        members: Per cluster, its nodes (visibility asks whether one node can host a pod alone).
        source: The pod file, named in the errors.
        slot_seconds: Seconds per slot.
        long_running: ``"drop"`` or ``"cap"`` the services still running at the trace's end.
        max_lifetime_s: Lifetime cap of long-running services with ``long_running="cap"``.
        pending: ``"keep"`` or ``"drop"`` the pods that were never scheduled.
        all_nodes: The whole node list (default: the kept nodes), to tell a pod that no node at
            all can host from one that the subsample left without a host.
        unhostable: ``"error"`` or ``"drop"`` (counted) the pods no node of ``all_nodes`` can
            host; a pod that only the subsample cannot host is always an error.

    Returns:
        The trace, sorted by arrival, and the counts of what the rules did (pods pending,
        long-running, dropped or capped; tasks per type; tasks).

    Raises:
        TraceError: A pod no node can host (naming its row), or no pod left at all.
    """
    num_clusters = len(members)
    # Node table for vectorised fit checks: node -> cluster, capacities, model.
    nodes = [n for m in members for n in m]
    node_cluster = np.array([c for c, m in enumerate(members) for _ in m])
    node_cap = np.array([[n.cpu, n.gpu, n.mem] for n in nodes], dtype=np.int64)
    node_model = [n.model for n in nodes]
    every = all_nodes if all_nodes is not None else nodes
    every_cap = np.array([[n.cpu, n.gpu, n.mem] for n in every], dtype=np.int64)
    every_model = [n.model for n in every]

    trace_end = max(p.deletion for p in pods)
    stats: Counter[str] = Counter()
    rows = []
    for pod in pods:
        if pod.phase == "Pending" and pod.scheduled is None:
            stats["pending"] += 1
            if pending == "drop":
                stats["dropped_pending"] += 1
                continue
        lifetime = pod.deletion - pod.creation
        if pod.phase == "Running" and pod.deletion == trace_end:
            stats["long_running"] += 1
            if long_running == "drop":
                stats["dropped_long_running"] += 1
                continue
            if lifetime > max_lifetime_s:
                stats["capped_long_running"] += 1
                lifetime = max_lifetime_s
        demand = pod_demand(pod)
        fits = _hosts(pod, demand, node_cap, node_model)
        visible = np.zeros(num_clusters, dtype=bool)
        visible[node_cluster[fits]] = True
        if not visible.any():
            spec = f", gpu_spec {'|'.join(pod.gpu_spec)}" if pod.gpu_spec else ""
            what = (
                f"{source}: row {pod.row} ({pod.name}), cpu {demand[0]} cores, gpu {demand[1]} "
                f"tenths, mem {demand[2]} GiB{spec}"
            )
            hosts = int(_hosts(pod, demand, every_cap, every_model).sum())
            if hosts:
                raise TraceError(
                    f"{what}: no kept node can host it; {hosts} node(s) of the node list can: "
                    "raise node_fraction"
                )
            stats["unhostable"] += 1
            if unhostable == "drop":
                stats["dropped_unhostable"] += 1
                continue
            raise TraceError(
                f"{what}: no node of the node list can host it, at any node_fraction; "
                "unhostable='drop' (--unhostable drop) drops such pods and counts them"
            )
        work = max(1, math.ceil(lifetime / slot_seconds))
        arrival = math.floor(pod.creation / slot_seconds)
        rows.append((pod.row - 1, arrival, TASK_TYPES.index(pod_type(pod)), work, visible, demand))
        stats[f"type_{pod_type(pod)}"] += 1
    if not rows:
        raise TraceError(f"{source}: no pod left after the conversion rules")
    stats["tasks"] = len(rows)
    first = min(r[1] for r in rows)
    min_demand = np.array([r[5] for r in rows], dtype=np.int64)
    trace = Trace(
        list(TASK_TYPES),
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] - first for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=float),
        np.array([r[4] for r in rows], dtype=bool),
        min_demand,
        min_demand[:, :2].copy(),
    ).sorted()
    return trace, stats
