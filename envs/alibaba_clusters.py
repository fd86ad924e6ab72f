"""Alibaba nodes into edge clusters: stratified subsample, round-robin grouping, pooled capacity.

The three rules (and why the default keeps so few nodes) are "Nodes into edge clusters" in the
docstring of :mod:`envs.alibaba`.
"""

from __future__ import annotations

import hashlib

from envs.alibaba_csv import Node
from envs.scenario import ClusterSpec

#: Default share of the nodes kept (per GPU model, at least one node each); see envs.alibaba.
DEFAULT_NODE_FRACTION = 0.003


def _node_key(seed: int, sn: str) -> str:
    return hashlib.sha256(f"{seed}:{sn}".encode()).hexdigest()


def select_nodes(nodes: list[Node], node_fraction: float, seed: int) -> list[Node]:
    """Stratified subsample: per GPU model, ``max(1, round(fraction * n))`` nodes by hash order.

    Returns the kept nodes sorted by (model, name).
    """
    if not 0 < node_fraction <= 1:
        raise ValueError(f"node_fraction must be in (0, 1], got {node_fraction}")
    groups: dict[str, list[Node]] = {}
    for n in nodes:
        groups.setdefault(n.model, []).append(n)
    kept: list[Node] = []
    for model in sorted(groups):
        group = groups[model]
        k = len(group) if node_fraction >= 1 else max(1, round(node_fraction * len(group)))
        kept.extend(sorted(group, key=lambda n: _node_key(seed, n.sn))[:k])
    return sorted(kept, key=lambda n: (n.model, n.sn))


def group_nodes(kept: list[Node], num_clusters: int) -> list[list[Node]]:
    """Deal the kept nodes round-robin: the j-th goes to cluster ``j % num_clusters``.

    Raises:
        ValueError: Fewer nodes than clusters (a cluster would be empty).
    """
    if len(kept) < num_clusters:
        raise ValueError(f"{len(kept)} nodes kept for {num_clusters} clusters: raise node_fraction")
    members: list[list[Node]] = [[] for _ in range(num_clusters)]
    for j, node in enumerate(kept):
        members[j % num_clusters].append(node)
    return members


def pooled_capacity(members: list[list[Node]]) -> list[ClusterSpec]:
    """Each cluster's capacity: the sum over its nodes of each kind (fragmentation ignored)."""
    return [
        ClusterSpec(cpu=sum(n.cpu for n in m), gpu=sum(n.gpu for n in m), mem=sum(n.mem for n in m))
        for m in members
    ]
