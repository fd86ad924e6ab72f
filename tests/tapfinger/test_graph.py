"""Graph builder: the fast batched builder matches the per-observation reference exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.nn import HANConv, HGTConv

from envs import edge_cluster_v0
from envs.observation import random_actions
from tapfinger.graph import (
    EDGE_TYPES,
    METADATA,
    NODE_TYPES,
    GraphBatch,
    build_graph_batch,
    node_feature_dims,
    stack_observations,
    to_tensors,
)
from tests.tapfinger.graph_reference import build_graph_reference

SCENARIOS = ("paper_hetero6", "quickstart", "testbed")


def _rollout(name: str, steps: int = 25, seed: int = 0) -> list[dict]:
    """Every agent's observation along a short random-action rollout."""
    env = edge_cluster_v0.parallel_env(name, infos="full")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    pool: list[dict] = []
    for _ in range(steps):
        pool.extend(obs.values())
        obs, _, terms, truncs, _ = env.step(random_actions(env, obs, rng))
        if all(terms.values()) or all(truncs.values()):
            break
    return pool


@pytest.fixture(scope="module", params=SCENARIOS)
def pool(request) -> list[dict]:
    return _rollout(request.param)


def _fast(obs_list: list[dict]) -> GraphBatch:
    return build_graph_batch(to_tensors(stack_observations(obs_list), "cpu"))


def _pairs(edge_index: torch.Tensor) -> list[tuple[int, int]]:
    assert edge_index.dtype == torch.long and edge_index.dim() == 2 and edge_index.size(0) == 2
    return sorted(map(tuple, edge_index.t().tolist()))


def _assert_same(fast: GraphBatch, ref: GraphBatch) -> None:
    assert fast.num_graphs == ref.num_graphs
    assert fast.data.metadata() == METADATA
    for t in NODE_TYPES:
        x, y = fast.data[t].x, ref.data[t].x
        assert x.dtype == torch.float32
        assert x.shape == y.shape, t
        assert torch.equal(x, y), t
        assert torch.equal(fast.data[t].batch, ref.data[t].batch), t
    for e in EDGE_TYPES:
        assert _pairs(fast.data[e].edge_index) == _pairs(ref.data[e].edge_index), e
    for name in (
        "task_slot_index",
        "running_slot_index",
        "me_index",
        "cluster_batch",
        "task_batch",
        "running_batch",
    ):
        a, b = getattr(fast, name), getattr(ref, name)
        assert a.dtype == torch.long, name
        assert a.shape == b.shape and torch.equal(a, b), name
    fast.data.validate(raise_on_error=True)


def _pick(pool: list[dict], b: int, seed: int) -> list[dict]:
    idx = np.random.default_rng(seed).choice(len(pool), size=b, replace=False)
    return [pool[i] for i in idx]


@pytest.mark.parametrize("b", [1, 3])
def test_fast_matches_reference(pool: list[dict], b: int) -> None:
    for seed in range(4):
        obs_list = _pick(pool, b, seed)
        _assert_same(_fast(obs_list), build_graph_reference(obs_list))


def test_whole_rollout_in_one_batch(pool: list[dict]) -> None:
    fast = _fast(pool)
    _assert_same(fast, build_graph_reference(pool))
    # Sanity of the rollout itself: it exercised both node types.
    assert fast.data["task"].num_nodes > 0
    assert fast.data["running"].num_nodes > 0


def test_slot_indices_gather_the_slot_features(pool: list[dict]) -> None:
    obs_list = _pick(pool, 3, seed=7)
    batch = to_tensors(stack_observations(obs_list))
    g = build_graph_batch(batch)
    n = batch["clusters"].shape[1]
    for key, slots, node_type in (
        ("pending", g.task_slot_index, "task"),
        ("running", g.running_slot_index, "running"),
    ):
        mask = batch[f"{key}_mask"]
        assert torch.equal(slots >= 0, mask)
        assert torch.equal(g.data[node_type].x[slots[mask]], batch[key][mask])
    assert torch.equal(g.data["cluster"].x[g.me_index], batch["clusters"][batch["agent"]])
    assert torch.equal(g.me_index % n, batch["agent"].long().argmax(1))


def test_reverse_edges_are_flips() -> None:
    g = _fast(_rollout("quickstart", steps=5))
    for fwd, rev in (
        (("task", "visible_to", "cluster"), ("cluster", "rev_visible_to", "task")),
        (("running", "runs_on", "cluster"), ("cluster", "rev_runs_on", "running")),
    ):
        assert torch.equal(g.data[fwd].edge_index.flip(0), g.data[rev].edge_index)
    links = _pairs(g.data["cluster", "links", "cluster"].edge_index)
    assert links == sorted((d, s) for s, d in links)
    assert all(s != d for s, d in links)


def _emptied(obs_list: list[dict], pending: bool, running: bool) -> list[dict]:
    out = []
    for o in obs_list:
        o = dict(o)
        if pending:
            o["pending"] = np.zeros_like(o["pending"])
            o["pending_mask"] = np.zeros_like(o["pending_mask"])
            o["pending_visible"] = np.zeros_like(o["pending_visible"])
        if running:
            o["running"] = np.zeros_like(o["running"])
            o["running_mask"] = np.zeros_like(o["running_mask"])
        out.append(o)
    return out


@pytest.mark.parametrize(
    "pending,running", [(True, False), (False, True), (True, True)], ids=["p", "r", "pr"]
)
@pytest.mark.parametrize("b", [1, 3])
def test_empty_node_sets(pool: list[dict], b: int, pending: bool, running: bool) -> None:
    obs_list = _emptied(_pick(pool, b, seed=b), pending, running)
    fast = _fast(obs_list)
    _assert_same(fast, build_graph_reference(obs_list))
    widths = node_feature_dims(obs_list[0])
    for t in NODE_TYPES:
        assert fast.data[t].x.shape[1] == widths[t]
    if pending:
        assert fast.data["task"].x.shape[0] == 0
        assert (fast.task_slot_index == -1).all()
    if running:
        assert fast.data["running"].x.shape[0] == 0
        assert (fast.running_slot_index == -1).all()


def test_garbage_in_padding_is_ignored() -> None:
    """Padded slots may hold anything: the masks alone decide which nodes and edges exist."""
    rng = np.random.default_rng(3)
    obs_list = _pick(_rollout("testbed", steps=10), 3, seed=0)
    noisy = []
    for o in obs_list:
        o = dict(o)
        o["pending_visible"] = rng.integers(0, 2, o["pending_visible"].shape).astype(np.int8)
        o["pending_mask"] = rng.integers(0, 2, o["pending_mask"].shape).astype(np.int8)
        o["running_mask"] = rng.integers(0, 2, o["running_mask"].shape).astype(np.int8)
        noisy.append(o)
    _assert_same(_fast(noisy), build_graph_reference(noisy))


def test_to_tensors_dtypes(pool: list[dict]) -> None:
    stacked = stack_observations(pool[:3])
    t = to_tensors(stacked, "cpu")
    for key in ("clusters", "pending", "running"):
        assert t[key].dtype == torch.float32 and t[key].shape[0] == 3
    for key in (
        "pending_mask",
        "running_mask",
        "pending_visible",
        "task_mask",
        "cpu_mask",
        "gpu_mask",
        "agent",
    ):
        assert t[key].dtype == torch.bool, key
        assert torch.equal(t[key], torch.from_numpy(stacked[key].astype(bool))), key
    for key in ("free", "demand"):
        assert t[key].dtype == torch.int64


def test_stack_rejects_empty() -> None:
    with pytest.raises(ValueError):
        stack_observations([])


def test_metadata_constant() -> None:
    assert (list(NODE_TYPES), list(EDGE_TYPES)) == METADATA
    node_types, edge_types = METADATA
    # Every node type receives messages from some edge type.
    assert {dst for _, _, dst in edge_types} == set(node_types)


@pytest.mark.parametrize("conv_cls", [HGTConv, HANConv], ids=["hgt", "han"])
def test_conv_forward_is_finite(pool: list[dict], conv_cls) -> None:
    torch.manual_seed(0)
    in_dims = node_feature_dims(pool[0])
    convs = [conv_cls(in_dims, 32, METADATA, heads=4), conv_cls(32, 32, METADATA, heads=4)]
    cases = [
        _pick(pool, 3, seed=11),
        _pick(pool, 1, seed=12),
        _emptied(_pick(pool, 3, seed=13), pending=True, running=False),
        _emptied(_pick(pool, 3, seed=14), pending=False, running=True),
        _emptied(_pick(pool, 1, seed=15), pending=True, running=True),
    ]
    # The all-empty batch goes first: the conv must work on it without any earlier batch.
    for obs_list in reversed(cases):
        g = _fast(obs_list)
        x = g.data.x_dict
        for conv in convs:
            x = conv(x, g.data.edge_index_dict)
        for t in NODE_TYPES:
            assert x[t] is not None, t
            assert x[t].shape == (g.data[t].num_nodes, 32), t
            assert torch.isfinite(x[t]).all(), t
        loss = sum(v.sum() for v in x.values())
        loss.backward()
