"""Graph-building benchmark: batched index arithmetic vs merging per-observation graphs.

Collects observations of a scenario (default ``paper_hetero6``) from a random-action rollout and
times, on one CPU thread, the median of:

* ``fast build``: :func:`tapfinger.graph.build_graph_batch` on already stacked tensors;
* ``fast end-to-end``: ``stack_observations`` + ``to_tensors`` + ``build_graph_batch``;
* ``naive merge``: ``Batch.from_data_list`` of B pre-built per-observation ``HeteroData``;
* ``naive end-to-end``: building the B ``HeteroData`` objects and merging them.

Usage: ``python benchmarks/graph_build.py [--scenario paper_hetero6] [--batch 64]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch_geometric.data import Batch, HeteroData

from envs import edge_cluster_v0
from envs.observation import random_actions
from tapfinger.graph import (
    EDGE_TYPES,
    LINKS,
    NODE_TYPES,
    REV_RUNS_ON,
    REV_VISIBLE_TO,
    RUNS_ON,
    VISIBLE_TO,
    build_graph_batch,
    stack_observations,
    to_tensors,
)


def collect(scenario: str, count: int, seed: int = 0) -> list[dict]:
    """``count`` observations (all agents, consecutive rounds) from a random-action rollout."""
    env = edge_cluster_v0.parallel_env(scenario, infos="full")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    pool: list[dict] = []
    while len(pool) < count:
        pool.extend(obs.values())
        obs, _, terms, truncs, _ = env.step(random_actions(env, obs, rng))
        if all(terms.values()) or all(truncs.values()):
            obs, _ = env.reset(seed=seed + len(pool))
    return pool[-count:]


def single_graph(obs: dict) -> HeteroData:
    """One observation as its own ``HeteroData`` (vectorised per observation), same layout."""
    n = obs["clusters"].shape[0]
    pending_mask = torch.from_numpy(obs["pending_mask"]).bool()
    running_mask = torch.from_numpy(obs["running_mask"]).bool()
    visible = torch.from_numpy(obs["pending_visible"]).bool()[pending_mask]
    me = int(np.argmax(obs["agent"]))
    data = HeteroData()
    data["cluster"].x = torch.from_numpy(obs["clusters"])
    data["task"].x = torch.from_numpy(obs["pending"])[pending_mask]
    data["running"].x = torch.from_numpy(obs["running"])[running_mask]
    vis = visible.nonzero().t()
    runs = torch.arange(int(running_mask.sum()))
    runs_on = torch.stack((runs, torch.full_like(runs, me)))
    data[VISIBLE_TO].edge_index = vis
    data[REV_VISIBLE_TO].edge_index = vis.flip(0)
    data[RUNS_ON].edge_index = runs_on
    data[REV_RUNS_ON].edge_index = runs_on.flip(0)
    data[LINKS].edge_index = (~torch.eye(n, dtype=torch.bool)).nonzero().t()
    return data


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds (after a few warm-up calls)."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper_hetero6")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    obs_list = collect(args.scenario, args.batch)
    tensors = to_tensors(stack_observations(obs_list), "cpu")
    graphs = [single_graph(o) for o in obs_list]

    # Both paths must produce the same graph before their times mean anything.
    fast = build_graph_batch(tensors).data
    naive = Batch.from_data_list(graphs)
    for t in NODE_TYPES:
        assert torch.equal(fast[t].x, naive[t].x), t
    for e in EDGE_TYPES:
        assert torch.equal(fast[e].edge_index, naive[e].edge_index), e

    rows = [
        (
            "fast build (stacked tensors)",
            median_ms(lambda: build_graph_batch(tensors), args.repeats),
        ),
        (
            "fast end-to-end (stack + to_tensors + build)",
            median_ms(
                lambda: build_graph_batch(to_tensors(stack_observations(obs_list), "cpu")),
                args.repeats,
            ),
        ),
        (
            "naive merge (Batch.from_data_list)",
            median_ms(lambda: Batch.from_data_list(graphs), args.repeats),
        ),
        (
            "naive end-to-end (B HeteroData + merge)",
            median_ms(
                lambda: Batch.from_data_list([single_graph(o) for o in obs_list]), args.repeats
            ),
        ),
    ]
    print(
        f"{args.scenario}: B={args.batch}, threads={torch.get_num_threads()}, "
        f"nodes={fast.num_nodes}, edges={fast.num_edges}, median of {args.repeats}"
    )
    for name, ms in rows:
        print(f"  {name:<46s} {ms:8.3f} ms")
    print(f"  speed-up build vs merge: {rows[2][1] / rows[0][1]:.0f}x")


if __name__ == "__main__":
    main()
