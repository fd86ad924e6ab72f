"""Alibaba GPU trace importer: the real ``cluster-trace-gpu-v2023`` (openb) as a TapFinger trace.

Source: github alibaba/clusterdata, folder ``cluster-trace-gpu-v2023/csv/`` (commit 7a6c496),
released with Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC 2023 (cite it when publishing results on it). Two
files: a pod list (``name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec, qos, pod_phase,
creation_time, deletion_time, scheduled_time``) and a node list (``sn, cpu_milli, memory_mib, gpu,
model``). :func:`import_alibaba` turns them into edge clusters (:class:`ClusterSpec`) and a
:class:`~envs.trace.Trace` for the ``trace`` speed model; ``python -m envs.alibaba`` writes the
vendored ``envs/data/alibaba_openb.trace.csv`` and prints the capacities for
``configs/alibaba_openb.yaml``.

Every rule is documented here, in one place; the code follows them by concept:
:mod:`envs.alibaba_csv` reads and validates the two lists, :mod:`envs.alibaba_clusters` groups
nodes into edge clusters, :mod:`envs.alibaba_tasks` turns pods into tasks, and this module puts
them together (:func:`import_alibaba`) and is the command line.

Conversion rules (every one of them; defaults in brackets):

Units.
    CPU in whole cores, GPU in tenths of a GPU (``GPU_UNITS_PER_GPU`` = 10 units per GPU, so a
    GPU-sharing pod that asks for 0.47 of a GPU is representable), memory in GiB. Node capacities
    round down (``cpu_milli // 1000``, ``gpu * 10``, ``memory_mib // 1024``); pod requests round
    up (see below), so a converted pod never looks smaller than it was.

Nodes into edge clusters.
    1. Optional subsampling [``node_fraction`` = 0.003]: nodes are grouped by GPU model (CPU-only
       nodes, whose model is empty, form their own group); each group keeps
       ``max(1, round(node_fraction * size))`` nodes, those with the lowest
       ``sha256(f"{seed}:{sn}")`` (deterministic, platform-independent, a different sample per
       ``seed``). Stratifying by model keeps every GPU model, so every pod that only one model
       can host (five 8-GPU, 120-core pods fit only a ``G3`` node) stays runnable.
       ``node_fraction=1.0`` keeps every node. Why so small a default: the full 1,523-node
       cluster (6,212 GPUs, 125,514 cores) is vastly bigger than the load of this pod list (at
       most about 41 GPUs and 480 cores requested at once, 6 GPUs on average), so a replay on
       all of it never waits. The default keeps 9 nodes (one per model, two ``G2``: 41 GPUs, 728
       cores, 4,344 GiB), and a greedy first-fit replay then has 18% of the tasks wait (mean
       wait 212 slots, JCT 2.3 x the no-wait bound), where 0.005 (12 nodes) has 0.3% wait.
       Most of that waiting is fragmentation, not pooled capacity: long-lived 1-GPU pods that
       land on the 8-GPU clusters keep the 8-GPU pods waiting, and those fill the 8-GPU
       clusters' pending windows, hiding the small tasks behind them (with a 64-task window
       under 1% of the tasks wait, even with 8 nodes). A placement that keeps small long pods
       off the big clusters avoids it, the effect the ATC'23 paper is about.
    2. Grouping [``num_clusters`` = 8]: the kept nodes, sorted by (GPU model, name), are dealt
       round-robin: the j-th goes to cluster ``j % num_clusters``. Consecutive nodes share a
       model, so each cluster gets a similar mix when there are many nodes per model (with the
       default subsample, clusters are small and differ, like real edge sites). Fewer kept nodes
       than clusters is an error.
    3. Capacity: a cluster's capacity is the sum over its nodes of each kind. Pooling ignores
       per-node and per-GPU fragmentation (the simulator may run on one cluster two pods that
       no single node could host side by side, or two 0.6-GPU pods "on" one pooled GPU); the
       visibility rule below keeps the per-node constraint for single pods.

Pods into tasks.
    - ``task_id``: the pod's 0-based data row in the pod file (``openb-pod-0042`` is task 42).
    - Arrival: ``arrival_slot = floor(creation_time / slot_seconds)`` [``slot_seconds`` = 60],
      re-based so the first kept pod arrives in slot 0.
    - Work: the pod's lifetime in slots at its requested allocation,
      ``max(1, ceil((deletion_time - creation_time) / slot_seconds))``. With the ``trace`` speed
      model (rate 1 per slot at any allocation at or above the minimum) a task that starts at
      once finishes after exactly its real lifetime. A lifetime of 0 s still costs one slot.
    - Demand: ``min_cpu = max(1, ceil(cpu_milli / 1000))``;
      ``min_gpu = 10 * num_gpu`` for whole-GPU pods (``gpu_milli == 1000`` or ``num_gpu > 1``),
      ``ceil(gpu_milli / 100)`` for GPU-sharing pods (``num_gpu == 1``, ``gpu_milli < 1000``),
      0 for CPU-only pods; ``mem = ceil(memory_mib / 1024)``. The caps equal the minimum
      (``max_cpu = min_cpu``, ``max_gpu = min_gpu``): a production pod has fixed requests, so
      the tasks are rigid and the scheduler decides where and when, not how much.
    - Type, from the request: ``cpu`` (no GPU), ``gpu_share`` (a fraction of one GPU),
      ``gpu_1`` (one whole GPU), ``gpu_multi`` (several GPUs).
    - ``gpu_spec`` (a ``|``-separated list of allowed GPU models, empty in the openb list) is
      honoured by visibility.
    - Visibility: a task is visible to every cluster with at least one node that could host the
      pod alone: enough CPU cores, GPU units on that node (``gpu * 10 >= min_gpu``, so a sharing
      pod needs a node with a GPU) and memory, and a GPU model in ``gpu_spec`` when that is set
      (CPU-only pods may use GPU nodes, as in the ATC'23 simulator). A pod no kept node can host
      raises :class:`~envs.errors.TraceError` naming its row: with the advice to raise
      ``node_fraction`` when some node of the whole list could host it, and otherwise (no node
      at all can: some ``gpuspec*`` lists ask for a model whose nodes are all too small) with
      the option ``unhostable="drop"``, which drops such pods and counts them
      (``dropped_unhostable``) [``"error"``].

Pods never scheduled (``pod_phase`` Pending, empty ``scheduled_time``; 897 in openb) [kept,
``pending="keep"``]: they were real demand that the production scheduler failed to place, and a
replay that drops them understates the load at exactly the busy moments. Their work is their
creation..deletion lifetime, the time the demand existed (median 94 s), by the same rule as every
other pod. ``pending="drop"`` removes them instead.

Long-running services (``pod_phase`` Running and ``deletion_time`` equal to the trace's end, the
largest ``deletion_time`` in the file; 34 in openb): their lifetime is censored by the end of the
observation, not a run time. ``long_running="drop"`` [default] removes them: at the default
subsample their months-long reservations would permanently shrink small edge clusters and make the
replay's makespan an artefact of censoring. ``long_running="cap"`` keeps them with their lifetime
capped at ``max_lifetime_s`` [86,400 s = one day, about the 99th percentile (26.8 h) of the
finite lifetimes, so a capped service is among the longest tasks without dominating]. Pods that
are Running with an earlier deletion time have a real lifetime and are kept as they are.

Validation: a missing column, an empty or non-integer numeric field, a negative number, a
deletion before the creation, an inconsistent GPU request (``num_gpu == 0`` with ``gpu_milli >
0``, ``num_gpu >= 1`` with ``gpu_milli`` outside 1..1000) or an unknown ``pod_phase`` raises
:class:`~envs.errors.TraceError` naming the file, the row (1 = first data row, after the header)
and the column.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.alibaba_clusters import (
    DEFAULT_NODE_FRACTION,
    group_nodes,
    pooled_capacity,
    select_nodes,
)
from envs.alibaba_csv import (
    GPU_UNITS_PER_GPU,
    NODE_COLUMNS,
    POD_COLUMNS,
    POD_PHASES,
    Node,
    Pod,
    read_nodes,
    read_pods,
)
from envs.alibaba_tasks import (
    DEFAULT_MAX_LIFETIME_S,
    TASK_TYPES,
    pod_demand,
    pod_type,
    pods_to_trace,
)
from envs.errors import InputError
from envs.scenario import ClusterSpec
from envs.trace import Trace, import_report, save_trace

__all__ = [
    "DEFAULT_MAX_LIFETIME_S",
    "DEFAULT_NODE_FRACTION",
    "GPU_UNITS_PER_GPU",
    "NODE_COLUMNS",
    "POD_COLUMNS",
    "POD_PHASES",
    "TASK_TYPES",
    "AlibabaImport",
    "Node",
    "Pod",
    "import_alibaba",
    "main",
    "pod_demand",
    "pod_type",
    "read_nodes",
    "read_pods",
    "select_nodes",
]


@dataclass
class AlibabaImport:
    """What :func:`import_alibaba` returns: the clusters, the trace and what was done."""

    clusters: list[ClusterSpec]
    """Edge clusters, in cluster-index order (pooled capacity of their nodes)."""
    trace: Trace
    """The tasks, sorted by arrival (``speed_model: trace``)."""
    nodes: list[list[str]]
    """Per cluster: the names (``sn``) of its nodes."""
    stats: dict[str, int] = field(default_factory=dict)
    """Counts: pods read, kept, dropped or capped per rule, tasks per type, nodes kept."""


def import_alibaba(
    pod_csv: str | Path,
    node_csv: str | Path,
    *,
    num_clusters: int = 8,
    slot_seconds: float = 60.0,
    node_fraction: float = DEFAULT_NODE_FRACTION,
    long_running: Literal["drop", "cap"] = "drop",
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
    pending: Literal["keep", "drop"] = "keep",
    unhostable: Literal["error", "drop"] = "error",
    seed: int = 0,
) -> AlibabaImport:
    """Convert the Alibaba pod and node lists into edge clusters and a trace.

    Args:
        pod_csv: The pod list (``openb_pod_list_*.csv``).
        node_csv: The node list (``openb_node_list_*.csv``).
        num_clusters: Edge clusters to deal the kept nodes into (round-robin).
        slot_seconds: Seconds per slot; arrivals and lifetimes are counted in slots.
        node_fraction: Share of the nodes kept, per GPU model (at least one node per model).
        long_running: ``"drop"`` or ``"cap"`` the services still running at the trace's end.
        max_lifetime_s: Lifetime cap of long-running services with ``long_running="cap"``.
        pending: ``"keep"`` or ``"drop"`` the pods that were never scheduled.
        unhostable: ``"error"`` or ``"drop"`` the pods that no node of the node list can host
            (``gpu_spec*`` lists have some), counted in ``stats``.
        seed: Chooses the node subsample (ignored when ``node_fraction`` is 1).

    Returns:
        The clusters, the trace, each cluster's node names and the conversion counts.

    Raises:
        TraceError: A malformed row (naming file, row and column), or a pod no cluster can host.
        ValueError: An argument out of range.
    """
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be >= 1, got {num_clusters}")
    if not slot_seconds > 0:
        raise ValueError(f"slot_seconds must be > 0, got {slot_seconds}")
    if long_running not in ("drop", "cap"):
        raise ValueError(f"long_running must be 'drop' or 'cap', got {long_running!r}")
    if pending not in ("keep", "drop"):
        raise ValueError(f"pending must be 'keep' or 'drop', got {pending!r}")
    if unhostable not in ("error", "drop"):
        raise ValueError(f"unhostable must be 'error' or 'drop', got {unhostable!r}")
    if not max_lifetime_s > 0:
        raise ValueError(f"max_lifetime_s must be > 0, got {max_lifetime_s}")
    pod_csv, node_csv = Path(pod_csv), Path(node_csv)
    pods = read_pods(pod_csv)
    all_nodes = read_nodes(node_csv)
    members = group_nodes(select_nodes(all_nodes, node_fraction, seed), num_clusters)
    trace, task_stats = pods_to_trace(
        pods,
        members,
        source=pod_csv,
        slot_seconds=slot_seconds,
        long_running=long_running,
        max_lifetime_s=max_lifetime_s,
        pending=pending,
        all_nodes=all_nodes,
        unhostable=unhostable,
    )
    stats: Counter[str] = Counter(pods_read=len(pods), nodes_read=len(all_nodes))
    stats["nodes_kept"] = sum(len(m) for m in members)
    stats.update(task_stats)
    return AlibabaImport(
        pooled_capacity(members), trace, [[n.sn for n in m] for m in members], dict(stats)
    )


# ---------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m envs.alibaba``: convert, write the trace, print the capacities."""
    ap = argparse.ArgumentParser(prog="python -m envs.alibaba", description=__doc__.split("\n")[0])
    ap.add_argument("--pods", required=True, help="pod list CSV (openb_pod_list_default.csv)")
    ap.add_argument("--nodes", required=True, help="node list CSV (openb_node_list_all_node.csv)")
    ap.add_argument("--out", required=True, help="trace file to write (tapfinger-trace v1)")
    ap.add_argument("--num-clusters", type=int, default=8)
    ap.add_argument("--slot-seconds", type=float, default=60.0)
    ap.add_argument("--node-fraction", type=float, default=DEFAULT_NODE_FRACTION)
    ap.add_argument("--long-running", choices=("drop", "cap"), default="drop")
    ap.add_argument("--max-lifetime-s", type=float, default=DEFAULT_MAX_LIFETIME_S)
    ap.add_argument("--pending", choices=("keep", "drop"), default="keep")
    ap.add_argument(
        "--unhostable",
        choices=("error", "drop"),
        default="error",
        help="pods no node of the node list can host (some gpuspec* lists have them)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        result = import_alibaba(
            args.pods,
            args.nodes,
            num_clusters=args.num_clusters,
            slot_seconds=args.slot_seconds,
            node_fraction=args.node_fraction,
            long_running=args.long_running,
            max_lifetime_s=args.max_lifetime_s,
            pending=args.pending,
            unhostable=args.unhostable,
            seed=args.seed,
        )
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_trace(result.trace, args.out)
    print("\n".join(import_report(result.trace, result.stats, args.out)))
    print("clusters (cpu cores, gpu tenths, mem GiB):")
    for c, (spec, names) in enumerate(zip(result.clusters, result.nodes)):
        print(
            f"    - {{cpu: {spec.cpu}, gpu: {spec.gpu}, mem: {spec.mem}}}  # {c}: "
            f"{', '.join(names)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
