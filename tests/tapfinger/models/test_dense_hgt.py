"""The fused HGT layer computes what PyG's ``HGTConv`` computes, on real observations.

One module, three forwards (dense, folded message passing, PyG's): node embeddings, decisions
and gradients agree to float32 precision in every mode, with empty node types, with the
elastic running slots, at any batch size; the folded weights' cache follows every parameter
change.
"""

from __future__ import annotations

import pytest
import torch

from envs import edge_cluster_v0
from tapfinger.checkpoint import build_network
from tapfinger.config import ExperimentConfig, ModelConfig
from tapfinger.graph import to_tensors
from tapfinger.models.dense_hgt import DenseGraph
from tapfinger.policies.learned import model_inputs
from tests.tapfinger.models.test_network import observation_pool

CASES = [
    ("quickstart", {}),
    ("paper_synthetic", {}),
    ("paper_synthetic", {"elastic": True}),
    ("paper_synthetic", {"mode": "multi", "max_starts": 3}),
]


def net_and_batch(scenario: str, overrides: dict, rounds: int = 30, seed: int = 0):
    env = edge_cluster_v0.parallel_env(scenario, **overrides, infos="full")
    torch.manual_seed(seed)
    net = build_network(env, ExperimentConfig(model=ModelConfig(hidden=16, heads=2)))
    net.encoder.dense_max_batch = 10**9  # the dense path at any batch size, when dense
    pool = observation_pool(env, rounds, seed=seed)
    return env, net, to_tensors(model_inputs([o for o, _ in pool]))


#: (dense, fused) of the encoder: the dense layer, the folded message passing, PyG's HGTConv.
PATHS = {"dense": (True, True), "folded sparse": (False, True), "pyg": (False, False)}


def paths(net, fn) -> dict:
    """``fn()`` on each path of :data:`PATHS`."""
    out = {}
    for name, (dense, fused) in PATHS.items():
        net.encoder.dense, net.encoder.fused = dense, fused
        out[name] = fn()
    net.encoder.dense, net.encoder.fused = True, True
    return out


def both_paths(net, fn):
    """(each fused path's result, PyG's result) pairs."""
    out = paths(net, fn)
    return [(out[name], out["pyg"]) for name in ("dense", "folded sparse")]


@pytest.mark.parametrize(("scenario", "overrides"), CASES)
def test_embeddings_equal_pyg_hgtconv(scenario, overrides) -> None:
    _, net, t = net_and_batch(scenario, overrides)
    assert t["running_mask"].any() and not t["running_mask"].all()
    with torch.no_grad():
        pairs = both_paths(net, lambda: net.encode(t))
    for fused, reference in pairs:
        for a, b in zip(fused, reference):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_empty_node_types_and_single_observations() -> None:
    """No running task at all, no pending task at all, and batches of one observation."""
    _, net, t = net_and_batch("paper_synthetic", {})
    cases = {
        "no running": {**t, "running_mask": torch.zeros_like(t["running_mask"])},
        "no pending": {**t, "pending_mask": torch.zeros_like(t["pending_mask"])},
    }
    cases.update({f"row {i}": {k: v[i : i + 1] for k, v in t.items()} for i in (0, 7, 19)})
    for name, obs in cases.items():
        with torch.no_grad():
            pairs = both_paths(net, lambda obs=obs: net.encode(obs))
        for fused, reference in pairs:
            for a, b in zip(fused, reference):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize(("scenario", "overrides"), CASES[1:])
def test_gradients_equal_pyg_hgtconv(scenario, overrides) -> None:
    _, net, t = net_and_batch(scenario, overrides)
    weights = {
        k: torch.randn(v.shape[1:], generator=torch.Generator().manual_seed(1))
        for k, v in zip("abc", net.encode(t))
    }

    def grads():
        net.zero_grad()
        out = net.encode(t)
        sum((w * o).sum() for w, o in zip(weights.values(), out)).backward()
        # A parameter outside the loss's graph has no grad on one path and zeros on the other.
        return {
            n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for n, p in net.named_parameters()
        }

    for fused, reference in both_paths(net, grads):
        assert any(g.abs().sum() > 0 for g in fused.values())
        for name in fused:
            torch.testing.assert_close(fused[name], reference[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(("scenario", "overrides"), CASES)
def test_greedy_decisions_equal(scenario, overrides) -> None:
    _, net, t = net_and_batch(scenario, overrides)
    with torch.no_grad():
        pairs = both_paths(net, lambda: net.decide(t, greedy=True)[0])
    for fused, reference in pairs:
        assert torch.equal(fused.actions, reference.actions)
        torch.testing.assert_close(fused.task_probs, reference.task_probs, rtol=1e-4, atol=1e-6)


def test_folded_weights_follow_parameter_changes() -> None:
    """The no-grad cache of folded weights is refreshed after an optimiser step and a load."""
    _, net, t = net_and_batch("paper_synthetic", {})
    with torch.no_grad():
        before = net.encode(t)[1]
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    net.zero_grad()
    net.encode(t)[1].square().sum().backward()
    opt.step()
    with torch.no_grad():
        after = net.encode(t)[1]
        reference = paths(net, lambda: net.encode(t)[1])["pyg"]
    # A stale cache would leave the output where it was, far beyond the tolerance.
    assert float((before - reference).abs().max()) > 1e-2
    torch.testing.assert_close(after, reference, rtol=1e-4, atol=1e-4)
    fresh = build_network(
        edge_cluster_v0.parallel_env("paper_synthetic", infos="full"),
        ExperimentConfig(model=ModelConfig(hidden=16, heads=2)),
    )
    with torch.no_grad():
        fresh.encode(t)  # fills its cache
        fresh.load_state_dict(net.state_dict())
        torch.testing.assert_close(fresh.encode(t)[1], after, rtol=1e-4, atol=1e-4)


def test_dense_graph_has_the_graph_builders_edges() -> None:
    """Every edge of build_graph_batch is a True of the dense masks, and nothing else."""
    from tapfinger.graph import EDGE_TYPES, build_graph_batch

    _, _, t = net_and_batch("paper_synthetic", {}, rounds=8)
    g = build_graph_batch(t)
    dense = DenseGraph.from_observations(t)
    n = t["agent"].shape[1]
    w, r = t["pending"].shape[1], t["running"].shape[1]
    counts = {et: g.data[et].edge_index.shape[1] for et in EDGE_TYPES}
    cm, tm = dense.cluster_mask[:, 0], dense.task_mask[:, 0]
    assert int(cm[..., :w].sum()) == counts[EDGE_TYPES[0]]  # visible_to
    assert int(tm[:, :w, :n].sum()) == counts[EDGE_TYPES[1]]  # rev_visible_to
    assert int(cm[..., w : w + r].sum()) == counts[EDGE_TYPES[2]]  # runs_on
    assert int(tm[:, w:, n:].sum()) == counts[EDGE_TYPES[3]]  # rev_runs_on
    assert int(cm[..., w + r :].sum()) == counts[EDGE_TYPES[4]]  # links
    assert not tm[:, :w, n:].any() and not tm[:, w:, :n].any()
    assert dense.sizes == {"cluster": n, "task": w, "running": r}
