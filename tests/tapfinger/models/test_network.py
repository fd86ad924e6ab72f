"""Tests of the TapFinger actor-critic (tapfinger.models.network) on real env observations.

Shapes of every ``Decision`` field, validity of sampled actions under the env's masks (whole
multi-task sequences included), exact zero probability of masked choices, no NaN when only the
no-op is valid, gradients reaching every parameter that can matter, re-scoring of sampled
actions, greedy determinism and independence of the observations of one batch; for every
backbone, pointer on and off, central and local critic, single and multi-task mode.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

from envs import edge_cluster_v0
from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.observation import CLUSTER_FEATURES, after_start, conditional_sample
from tapfinger.checkpoint import build_network
from tapfinger.config import ExperimentConfig, ModelConfig
from tapfinger.graph import to_tensors
from tapfinger.models.network import MASKED, Decision, TapFingerNet, greedy_task
from tapfinger.policies.learned import TapFingerPolicy, deadlocked_rows, model_inputs

BACKBONES = ("hgt", "han", "mlp")
MODES = ("single", "multi")
MAX_STARTS = 3


# ---------------------------------------------------------------------------------- helpers
def make_env(mode: str = "single", scenario: str = "quickstart", **overrides) -> EdgeClusterEnv:
    """The env of a test: multi mode decodes up to ``MAX_STARTS`` starts per round."""
    if mode == "multi":
        overrides.update(mode="multi", max_starts=MAX_STARTS)
    return edge_cluster_v0.parallel_env(scenario, **overrides, infos="full")


def make_net(env: EdgeClusterEnv, seed: int = 0, **model) -> TapFingerNet:
    """A small network for ``env``'s shapes (the model reads its dims from the env)."""
    settings = {"hidden": 16, "heads": 2, "layers": 2, **model}
    torch.manual_seed(seed)
    return build_network(env, ExperimentConfig(model=ModelConfig(**settings)))


def random_start(
    obs: dict, rng: np.random.Generator, among: slice = slice(1, None), starts: int = 1
) -> np.ndarray:
    """A random feasible sequence of ``starts`` starts, each among the action indices ``among``
    when any of them is valid (by default: a start whenever one is possible)."""
    action = np.zeros(3 * starts, dtype=np.int64)
    cur = obs
    for j in range(starts):
        mask = np.zeros_like(cur["task_mask"])
        mask[among] = cur["task_mask"][among]
        if not mask.any():
            mask[0] = 1
        task, cpu, gpu = conditional_sample({**cur, "task_mask": mask}, rng)
        if task == 0:
            break
        action[3 * j : 3 * j + 3] = (task, cpu, gpu)
        cur = after_start(cur, task, cpu, gpu)
    return action


def observation_pool(
    env: EdgeClusterEnv, rounds: int, seed: int = 0
) -> list[tuple[dict, np.ndarray]]:
    """(observation, global state) of every agent over ``rounds`` rounds of random starts."""
    noop = np.zeros(3 * env.dims.max_starts, dtype=np.int64)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    pool: list[tuple[dict, np.ndarray]] = []
    for _ in range(rounds):
        state = env.state()
        pool.extend((obs[a], state) for a in env.agents)
        # Half the agents idle each round, so the clusters do not stay full.
        actions = {
            a: random_start(obs[a], rng, starts=env.dims.max_starts) if rng.random() < 0.5 else noop
            for a in env.agents
        }
        obs, _, _, _, _ = env.step(actions)
        if not env.agents:
            obs, _ = env.reset(seed=seed + len(pool))
    return pool


def batch(pool: list[tuple[dict, np.ndarray]]) -> tuple[dict, torch.Tensor]:
    """Model inputs and global states of a list of (observation, state) pairs."""
    t = to_tensors(model_inputs([o for o, _ in pool]))
    return t, torch.as_tensor(np.stack([s for _, s in pool]))


def rich(
    pool: list[tuple[dict, np.ndarray]], count: int, running: int = 1
) -> list[tuple[dict, np.ndarray]]:
    """Observations with ``running`` running tasks and two startable pending ones."""
    picked = [
        (o, s)
        for o, s in pool
        if o["running_mask"].sum() >= running
        and o["task_mask"][1 : len(o["pending_mask"]) + 1].sum() >= 2
    ]
    assert len(picked) >= count, "the rollout produced too few rich observations"
    return picked[:count]


@pytest.fixture(scope="module")
def pools() -> dict[str, tuple[EdgeClusterEnv, list[tuple[dict, np.ndarray]]]]:
    """A pool of real observations per mode (quickstart: 2 clusters)."""
    out = {}
    for mode in MODES:
        env = make_env(mode)
        out[mode] = (env, observation_pool(env, 60))
    return out


def check_valid(obs: dict, action: np.ndarray) -> None:
    """Every decoded start is allowed by the masks, updated along the sequence."""
    cur = obs
    stopped = False
    for j in range(len(action) // 3):
        task, cpu, gpu = (int(v) for v in action[3 * j : 3 * j + 3])
        if stopped or task == 0:
            assert (task, cpu, gpu) == (0, 0, 0), action
            stopped = True
            continue
        assert cur["task_mask"][task], (j, action)
        assert cur["cpu_mask"][task, cpu], (j, action)
        assert cur["gpu_mask"][task, gpu], (j, action)
        cur = after_start(cur, task, cpu, gpu)


# ---------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("backbone", "pointer", "critic"),
    list(itertools.product(BACKBONES, [True, False], ["central", "local"])),
)
def test_decision_shapes(pools, b, mode, backbone, pointer, critic) -> None:
    env, pool = pools[mode]
    net = make_net(env, backbone=backbone, pointer=pointer, critic=critic)
    t, state = batch(pool[10 : 10 + b])
    decision, local = net.decide(t)
    d = env.dims
    s = d.max_starts
    assert s == (MAX_STARTS if mode == "multi" else 1)
    assert isinstance(decision, Decision)
    assert decision.actions.shape == (b, 3 * s) and decision.actions.dtype == torch.long
    for name in ("logp_task", "logp_alloc"):
        field = getattr(decision, name)
        assert field.shape == (b, s) and field.dtype == torch.float32, name
    assert decision.entropy.shape == (b,)
    assert decision.task_probs.shape == (b, d.actions)
    assert decision.active.shape == (b, s) and decision.active.dtype == torch.bool
    assert decision.active[:, 0].all()
    assert torch.allclose(decision.task_probs.sum(-1), torch.ones(b))
    assert local.shape == (b, 3 * net.cfg.hidden)
    value = net.value(t, state, local)
    assert value.shape == (b,) and torch.isfinite(value).all()
    if critic == "local":  # the local critic recomputes its features when not handed them
        assert torch.allclose(net.value(t, state), value, atol=1e-6)
    for name in ("logp_task", "logp_alloc", "entropy", "task_probs"):
        assert torch.isfinite(getattr(decision, name)).all(), name


# ---------------------------------------------------------------------------------- masks
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("pointer", [True, False])
def test_sampled_actions_are_valid(pools, mode, backbone, pointer) -> None:
    env, pool = pools[mode]
    net = make_net(env, backbone=backbone, pointer=pointer)
    t, _ = batch(pool)
    obs = [o for o, _ in pool]
    torch.manual_seed(1)
    starts = 0
    with torch.no_grad():
        for _ in range(10):
            decision, _ = net.decide(t)
            actions = decision.actions.numpy()
            for o, a in zip(obs, actions):
                check_valid(o, a)
            # active marks the decoded starts: the first, and each one after a start.
            tasks = actions[:, 0::3]
            expect = np.ones_like(tasks, dtype=bool)
            expect[:, 1:] = np.cumprod(tasks[:, :-1] > 0, axis=1).astype(bool)
            assert np.array_equal(decision.active.numpy(), expect)
            starts += int((tasks > 0).sum())
    assert starts > 0, "the policy never started anything"
    if mode == "multi" and not pointer:  # uniform choices: longer sequences must show up
        assert (actions[:, 3] > 0).any(), "no sequence longer than one"


@pytest.mark.parametrize("backbone", BACKBONES)
def test_masks_along_a_sequence_match_after_start(pools, backbone) -> None:
    """After a first start, the second choice is masked exactly as ``after_start`` says."""
    env, pool = pools["multi"]
    net = make_net(env, backbone=backbone)
    rng = np.random.default_rng(6)
    rows, actions, valid_task, valid_alloc = [], [], [], []
    for i, (o, _) in enumerate(pool):
        if o["task_mask"][1:].sum() < 2:
            continue
        first = random_start(o, rng)[:3]
        cur = after_start(o, *(int(v) for v in first))
        for k in range(1, env.dims.actions):
            a = np.zeros(3 * MAX_STARTS, dtype=np.int64)
            a[:3] = first
            a[3] = k
            if cur["task_mask"][k]:
                # A cpu level the task allowed before the first start but not after it, if
                # the first start took those cpus away; else a level still allowed.
                lost = np.flatnonzero(o["cpu_mask"][k] & ~cur["cpu_mask"][k])
                ok = np.flatnonzero(cur["cpu_mask"][k])
                a[4] = lost[0] if len(lost) else ok[0]
                a[5] = np.flatnonzero(cur["gpu_mask"][k])[0]
                valid_alloc.append(not len(lost))
            else:
                valid_alloc.append(None)
            rows.append(i)
            actions.append(a)
            valid_task.append(bool(cur["task_mask"][k]))
    assert True in valid_task and False in valid_task and False in valid_alloc
    t, _ = batch([pool[i] for i in rows])
    with torch.no_grad():
        scored, _ = net.decide(t, actions=torch.as_tensor(np.stack(actions)))
    allowed = (scored.logp_task[:, 1] > MASKED / 10).tolist()
    assert allowed == valid_task
    for ok, lp in zip(valid_alloc, scored.logp_alloc[:, 1].tolist()):
        if ok is not None:
            assert (lp > MASKED / 10) == ok


@pytest.mark.parametrize("mode", MODES)
def test_env_accepts_every_sampled_action(mode) -> None:
    """A whole episode of sampled decisions: the env never reports an invalid action."""
    env = make_env(mode)
    net = make_net(env)
    torch.manual_seed(2)
    obs, infos = env.reset(seed=3)
    rounds = 0
    while env.agents:
        with torch.no_grad():
            decision, _ = net.decide(to_tensors(model_inputs([obs[a] for a in env.agents])))
        actions = dict(zip(env.agents, decision.actions.numpy()))
        obs, _, _, _, infos = env.step(actions)
        assert all(info["invalid_actions"] == 0 for info in infos.values())
        rounds += 1
    assert infos[env.possible_agents[0]]["episode"]["tasks_finished"] == env.scenario.num_tasks
    assert rounds > 10


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pointer", [True, False])
def test_masked_choices_have_probability_zero(pools, mode, pointer) -> None:
    env, pool = pools[mode]
    net = make_net(env, pointer=pointer)
    t, _ = batch(pool)
    with torch.no_grad():
        decision, _ = net.decide(t)
    probs = decision.task_probs
    mask = t["task_mask"]
    assert (probs[~mask] == 0).all()
    assert (probs[mask] > 0).all()
    if not pointer:  # the ablation picks uniformly among the valid tasks
        expect = mask.float() / mask.float().sum(-1, keepdim=True)
        assert torch.allclose(probs, expect)

    # Scoring a masked task, or a masked amount of a valid task, gives a log-probability of
    # about MASKED: the probability is exactly 0 in float32.
    rows = [i for i, (o, _) in enumerate(pool) if not o["task_mask"].all()]
    assert rows
    starts = env.dims.max_starts
    bad_task = torch.zeros(len(rows), 3 * starts, dtype=torch.long)
    for k, i in enumerate(rows):
        bad_task[k, 0] = int(np.flatnonzero(pool[i][0]["task_mask"] == 0)[0])
    sub = {key: v[rows] for key, v in t.items()}
    with torch.no_grad():
        scored, _ = net.decide(sub, actions=bad_task)
    assert (scored.logp_task[:, 0] <= MASKED / 10).all()
    assert torch.exp(scored.logp_task[:, 0]).eq(0).all()

    rows = [
        i
        for i, (o, _) in enumerate(pool)
        if o["task_mask"][1:].any() and not o["cpu_mask"][np.flatnonzero(o["task_mask"])[1]].all()
    ]
    assert rows
    bad_cpu = torch.zeros(len(rows), 3 * starts, dtype=torch.long)
    for k, i in enumerate(rows):
        o = pool[i][0]
        task = int(np.flatnonzero(o["task_mask"])[1])
        bad_cpu[k, :3] = torch.tensor(
            [
                task,
                int(np.flatnonzero(o["cpu_mask"][task] == 0)[0]),
                int(np.flatnonzero(o["gpu_mask"][task])[0]),
            ]
        )
    sub = {key: v[rows] for key, v in t.items()}
    with torch.no_grad():
        scored, _ = net.decide(sub, actions=bad_cpu)
    assert (scored.logp_task[:, 0] > MASKED / 10).all()
    assert (scored.logp_alloc[:, 0] <= MASKED / 10).all()


def only_noop(obs: dict, empty: bool = False) -> dict:
    """``obs`` with every task masked (only the no-op valid); ``empty`` also drops all nodes."""
    out = dict(obs)
    out["task_mask"] = np.zeros_like(obs["task_mask"])
    out["task_mask"][0] = 1
    out["cpu_mask"] = np.zeros_like(obs["cpu_mask"])
    out["cpu_mask"][0, 0] = 1
    out["gpu_mask"] = np.zeros_like(obs["gpu_mask"])
    out["gpu_mask"][0, 0] = 1
    if empty:
        out["pending_mask"] = np.zeros_like(obs["pending_mask"])
        out["running_mask"] = np.zeros_like(obs["running_mask"])
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("critic", ["central", "local"])
@pytest.mark.parametrize("empty", [False, True])
def test_no_nan_when_only_the_noop_is_valid(pools, mode, backbone, critic, empty) -> None:
    env, pool = pools[mode]
    net = make_net(env, backbone=backbone, critic=critic)
    picked = rich(pool, 3)
    t, state = batch([(only_noop(o, empty), s) for o, s in picked])
    for greedy in (False, True):
        decision, local = net.decide(t, greedy=greedy)
        assert (decision.actions == 0).all()
        assert (decision.logp_task == 0).all() and (decision.logp_alloc == 0).all()
        assert torch.isfinite(decision.entropy).all()
        assert decision.entropy.abs().max() < 1e-6
        assert (decision.task_probs[:, 0] == 1).all()
        assert decision.active[:, 0].all() and not decision.active[:, 1:].any()
    value = net.value(t, state, local)
    loss = decision.logp_task.sum() + decision.entropy.sum() + value.sum()
    net.zero_grad()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


# ---------------------------------------------------------------------------------- gradients
def unused_parameters(net: TapFingerNet, elastic: bool) -> dict[str, str]:
    """Regexes of the parameters that legitimately get no gradient, with the reason why."""
    cfg = net.cfg
    last = cfg.layers - 1
    unused: dict[str, str] = {}
    if not cfg.pointer:
        unused[r"(query|key|noop_key|step_embed)\..*|noop_bias"] = (
            "no-pointer ablation: the pointer head is never evaluated, and the no-op's key only "
            "feeds the allocation heads, whose terms are zeroed for a no-op"
        )
    # Each running node has exactly one incoming edge (rev_runs_on from its own cluster), so
    # every attention softmax over a running node's in-edges is identically 1: the parameters
    # that only shape those attention logits get an exactly-zero gradient.
    if cfg.backbone == "hgt":
        unused[r"encoder\.convs\.\d+\.p_rel\.cluster__rev_runs_on__running"] = "1 in-edge"
    if cfg.backbone == "han":
        unused[r"encoder\.convs\.\d+\.lin_(src|dst)\.cluster__rev_runs_on__running"] = "1 in-edge"
    if not elastic:
        # Running tasks are not action candidates without elasticity: their embeddings after
        # the last layer feed no head (earlier layers still reach the clusters).
        if cfg.backbone == "hgt":
            unused[
                rf"encoder\.convs\.{last}\.(out_lin\.lins|skip)\.running.*"
                rf"|encoder\.norms\.{last}\.running\..*"
            ] = "last layer's running outputs are unused"
        if cfg.backbone == "han":
            unused[rf"encoder\.norms\.{last}\.running\..*"] = "last layer's running outputs unused"
        if cfg.backbone == "mlp":
            unused[r"encoder\.(inp|mix|norms\.0)\.running\..*"] = (
                "the no-graph ablation never passes running tasks to the clusters"
            )
    return unused


@pytest.mark.parametrize(
    ("mode", "elastic"), [("single", False), ("multi", False), ("single", True)]
)
@pytest.mark.parametrize(
    ("backbone", "pointer", "critic"),
    list(itertools.product(BACKBONES, [True, False], ["central", "local"])),
)
def test_gradients_reach_every_parameter(mode, elastic, backbone, pointer, critic) -> None:
    """Sum of all heads' outputs and the value: every parameter that can matter gets a grad.

    paper_synthetic has 3 clusters, so every cluster has more than one ``links`` in-edge (with
    2 clusters HAN's per-edge-type attention over a single in-edge would be constant).
    """
    env = make_env(mode, "paper_synthetic", elastic=elastic)
    net = make_net(env, backbone=backbone, pointer=pointer, critic=critic)
    picked = rich(observation_pool(env, 40, seed=4), 4, running=2)
    rng = np.random.default_rng(5)
    # Pending starts for some observations and, in elastic mode, resizes of running tasks
    # (action indices past the window) for the others, so both kinds of keys are scored.
    window = env.dims.window
    among = [slice(1, window + 1), slice(window + 1, None) if elastic else slice(1, None)]
    actions = torch.as_tensor(
        np.stack(
            [
                random_start(o, rng, among[i % 2], env.dims.max_starts)
                for i, (o, _) in enumerate(picked)
            ]
        )
    )
    if elastic:
        assert (actions[:, 0] > window).any()
    assert ((actions[:, 0] > 0) & (actions[:, 0] <= window)).any()
    if mode == "multi":
        assert (actions[:, 3] > 0).any(), "no sequence with a second start"
    t, state = batch(picked)
    decision, local = net.decide(t, actions=actions)
    value = net.value(t, state, local)
    weights = torch.linspace(0.5, 1.5, decision.task_probs.numel()).view_as(decision.task_probs)
    loss = (
        decision.logp_task.sum()
        + decision.logp_alloc.sum()
        + decision.entropy.sum()
        + (weights * decision.task_probs).sum()
        + value.sum()
    )
    net.zero_grad()
    loss.backward()
    unused = unused_parameters(net, elastic)
    pattern = re.compile("|".join(f"(?:{p})" for p in unused)) if unused else None
    missing, unexpected = [], []
    for name, p in net.named_parameters():
        reached = p.grad is not None and bool(p.grad.abs().sum() > 0)
        assert p.grad is None or torch.isfinite(p.grad).all(), name
        expected_unused = pattern is not None and pattern.fullmatch(name) is not None
        if not reached and not expected_unused:
            missing.append(name)
        if reached and expected_unused:
            unexpected.append(name)
    assert not missing, f"no gradient reaches {missing}"
    assert not unexpected, f"the allow-list of unused parameters is stale: {unexpected}"


# ---------------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("pointer", [True, False])
def test_scoring_sampled_actions_reproduces_the_decision(pools, mode, backbone, pointer) -> None:
    env, pool = pools[mode]
    net = make_net(env, backbone=backbone, pointer=pointer)
    t, _ = batch(pool)
    torch.manual_seed(3)
    with torch.no_grad():
        sampled, _ = net.decide(t)
        scored, _ = net.decide(t, actions=sampled.actions)
    assert torch.equal(scored.actions, sampled.actions)
    assert torch.equal(scored.active, sampled.active)
    for name in ("logp_task", "logp_alloc", "entropy", "task_probs"):
        assert torch.allclose(getattr(scored, name), getattr(sampled, name), atol=1e-5), name
    # Entries after the first no-op do not change the score.
    noisy = sampled.actions.clone()
    stopped = ~sampled.active
    for j in range(env.dims.max_starts):
        noisy[stopped[:, j], 3 * j] = 1
    with torch.no_grad():
        rescored, _ = net.decide(t, actions=noisy)
    assert torch.allclose(rescored.logp_task, sampled.logp_task, atol=1e-5)
    assert torch.equal(rescored.actions, sampled.actions)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_greedy_is_deterministic(pools, mode, backbone) -> None:
    env, pool = pools[mode]
    net = make_net(env, backbone=backbone)
    t, _ = batch(pool)
    with torch.no_grad():
        torch.manual_seed(0)
        first, _ = net.decide(t, greedy=True)
        torch.manual_seed(1)
        second, _ = net.decide(t, greedy=True)
    assert torch.equal(first.actions, second.actions)
    assert torch.equal(first.actions[:, 0], greedy_task(first.task_probs.log()))
    for o, a in zip([o for o, _ in pool], first.actions.numpy()):
        check_valid(o, a)
    # Greedy never idles while the pointer puts most of its mass on starting something.
    start_mass = first.task_probs[:, 1:].sum(-1)
    assert ((first.actions[:, 0] > 0) == (start_mass > first.task_probs[:, 0])).all()
    # Forced rows (the no-deadlock rule) start their likeliest task whenever one is valid.
    with torch.no_grad():
        forced, _ = net.decide(t, greedy=True, must_start=torch.ones(len(pool), dtype=torch.bool))
    can_start = t["task_mask"][:, 1:].bool().any(-1)
    assert torch.equal(forced.actions[:, 0] > 0, can_start)
    likeliest = first.task_probs[:, 1:].argmax(-1) + 1
    assert torch.equal(forced.actions[can_start, 0], likeliest[can_start])
    for o, a in zip([o for o, _ in pool], forced.actions.numpy()):
        check_valid(o, a)


def test_greedy_task_with_forced_rows_by_hand() -> None:
    """The no-op outweighs every task, yet a forced row with a task that fits starts it."""
    probs = torch.tensor([[0.9, 0.04, 0.06], [0.9, 0.04, 0.06], [1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])
    force = torch.tensor([True, False, True, False])
    # Row 0: forced -> likeliest task 2; row 1: not forced -> idles;
    # row 2: forced but nothing fits -> idles; row 3: the start mass wins anyway -> task 1.
    assert greedy_task(probs.log(), force).tolist() == [2, 0, 0, 1]
    assert greedy_task(probs.log()).tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_observations_of_a_batch_do_not_mix(pools, mode, backbone) -> None:
    """Scoring a batch gives each observation the log-probabilities it gets alone."""
    env, pool = pools[mode]
    net = make_net(env, backbone=backbone, critic="local")
    picked = pool[6:12]
    t, state = batch(picked)
    torch.manual_seed(4)
    with torch.no_grad():
        together, local = net.decide(t)
        values = net.value(t, state, local)
        for i in range(len(picked)):
            ti, si = batch(picked[i : i + 1])
            alone, local_i = net.decide(ti, actions=together.actions[i : i + 1])
            assert torch.allclose(alone.logp_task, together.logp_task[i : i + 1], atol=1e-5)
            assert torch.allclose(alone.logp_alloc, together.logp_alloc[i : i + 1], atol=1e-5)
            assert torch.allclose(alone.task_probs, together.task_probs[i : i + 1], atol=1e-5)
            assert torch.allclose(net.value(ti, si, local_i), values[i : i + 1], atol=1e-5)


def test_model_reads_its_dims_from_the_env() -> None:
    """Multi-task and window sizes of the env shape the heads; the step embedding per start."""
    single = make_net(make_env("single"))
    multi = make_net(make_env("multi"))
    assert single.step_embed.num_embeddings == 1
    assert multi.step_embed.num_embeddings == MAX_STARTS
    wide = make_env("single", window=9)
    assert make_net(wide).dims.actions == 10


# ---------------------------------------------------------------------------- no deadlock
def test_deadlocked_rows_by_hand() -> None:
    """One forced agent per env where nothing runs, every agent idles and a task fits."""
    running = CLUSTER_FEATURES.index("running")
    n_envs, agents, clusters = 4, 2, 2
    cl = np.zeros((n_envs * agents, clusters, len(CLUSTER_FEATURES)), dtype=np.float32)
    cl[2:4, 1, running] = 0.5  # env 1: cluster 1 runs something (every agent sees it)
    actions = np.zeros((n_envs * agents, 3), dtype=np.int64)
    actions[5] = (1, 2, 1)  # env 2: agent 1 starts a task
    active = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)  # env 3: nothing fits anywhere
    start_mass = np.array([0.2, 0.4, 0.9, 0.9, 0.1, 0.8, 0.0, 0.0])
    rows = deadlocked_rows(actions, start_mass, {"clusters": cl}, active, agents)
    # Env 0 is deadlocked: its agent 1 has the larger start mass. Env 1 runs something, env 2
    # starts something, env 3 has nothing to start: left alone.
    assert rows.tolist() == [1]
    # An agent with nothing valid is never the one forced, whatever its (stale) mass.
    active[1] = False
    assert deadlocked_rows(actions, start_mass, {"clusters": cl}, active, agents).tolist() == [0]


def test_greedy_policy_that_always_idles_still_finishes_every_task() -> None:
    """A pointer that always prefers the no-op would idle until ``max_slots``; the round-level
    rule starts one task whenever the whole system is idle, so the episode ends by itself."""
    env = make_env("single", max_slots=5_000)
    net = make_net(env)
    with torch.no_grad():
        net.noop_bias.fill_(1e4)  # the no-op outweighs every task together, in every state
    policy = TapFingerPolicy(env, network=net)
    obs, infos = env.reset(seed=0)
    policy.reset(0)
    while env.agents:
        obs, _, term, trunc, infos = env.step(policy.act(obs, infos))
    episode = infos["cluster_0"]["episode"]
    assert not any(trunc.values()) and all(term.values())
    assert episode["tasks_finished"] == episode["tasks"] > 0
