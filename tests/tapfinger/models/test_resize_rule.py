"""The elastic network's resize rule (tapfinger.models.network): addressing a running task must
change its allocation, since keeping it is what the no-op does.

Imitating an elastic teacher without this rule fails in a telling way: the allocation heads,
unsure of the teacher's target, regress towards the task's current allocation, and greedy
decoding then returns it exactly, so 69% of the student's resizes were no change at all
(results/README.md, "Elastic TapFinger").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tapfinger.algorithms.bc import imitation_loss
from tapfinger.models.network import MASKED, changeable
from tests.tapfinger.models.test_network import batch, make_env, make_net, observation_pool


def test_changeable_by_hand() -> None:
    # One choice, 3 CPU levels and 3 GPU levels, current allocation (1, 1).
    alloc = torch.tensor([[[1, 1]]])

    def case(cpu: list[int], gpu: list[int]) -> bool:
        cm = torch.tensor([[cpu]], dtype=torch.bool)
        gm = torch.tensor([[gpu]], dtype=torch.bool)
        return bool(changeable(cm, gm, alloc)[0, 0])

    assert not case([0, 1, 0], [0, 1, 0])  # only the current allocation is allowed
    assert case([1, 1, 0], [0, 1, 0])  # CPU 0 (a pause) is a change
    assert case([0, 1, 0], [0, 1, 1])  # the same CPU with another GPU level
    assert case([0, 0, 1], [0, 1, 0])  # another CPU with the current GPU level
    assert not case([0, 0, 0], [0, 1, 1])  # no CPU level at all


def elastic_pool():
    env = make_env("single", "paper_synthetic", elastic=True)
    pool = [(o, s) for o, s in observation_pool(env, 60, seed=7) if o["running_mask"].sum() >= 1]
    assert len(pool) >= 8
    return env, pool


def sampled_actions(net, t: dict, times: int = 30) -> list[np.ndarray]:
    """``times`` batches of actions sampled from ``net`` on inputs ``t`` (seeded)."""
    torch.manual_seed(0)
    with torch.no_grad():
        return [net.decide(t)[0].actions.numpy() for _ in range(times)]


def test_sampled_resizes_never_keep_and_stay_mask_valid() -> None:
    env, pool = elastic_pool()
    window = env.dims.window
    resizes = 0
    for acts in sampled_actions(make_net(env), batch(pool)[0]):
        for (obs, _), (task, cpu, gpu) in zip(pool, acts[:, :3]):
            assert obs["task_mask"][task] and obs["cpu_mask"][task, cpu]
            assert obs["gpu_mask"][task, gpu]
            if task > window:
                resizes += 1
                assert (cpu, gpu) != tuple(obs["alloc"][task])
    assert resizes > 20


def test_keeping_a_running_task_has_zero_probability() -> None:
    env, pool = elastic_pool()
    window = env.dims.window
    obs = pool[0][0]
    r = int(np.flatnonzero(obs["running_mask"])[0])
    task = 1 + window + r
    cur = obs["alloc"][task]
    assert (
        obs["task_mask"][task] and obs["cpu_mask"][task, cur[0]] and obs["gpu_mask"][task, cur[1]]
    )
    t, _ = batch(pool[:1])
    keep = torch.tensor([[task, int(cur[0]), int(cur[1])]])
    with torch.no_grad():
        decision, _ = make_net(env).decide(t, actions=keep)
    assert float(decision.logp_alloc[0, 0]) < MASKED / 2
    # Pending tasks' allocations are untouched: the observation marks them as holding nothing.
    assert not obs["alloc"][: window + 1].any()


def flag_running(obs: dict) -> dict:
    """``obs`` with every valid running task marked as changed in this slot."""
    changed = np.zeros_like(obs["changed"])
    w = len(obs["pending_mask"])
    changed[w + 1 :] = obs["task_mask"][w + 1 :]
    return {**obs, "changed": changed}


def test_a_task_changed_this_slot_is_never_addressed() -> None:
    env, pool = elastic_pool()
    window = env.dims.window
    flagged = [(flag_running(o), s) for o, s in pool]
    assert all(o["changed"].any() for o, _ in flagged)
    net = make_net(env)
    tasks = np.stack([a[:, 0] for a in sampled_actions(net, batch(flagged)[0])])
    assert (tasks <= window).all()  # no running task is resized or paused again
    assert (tasks > 0).any()  # pending tasks and the no-op stay available
    # Unflagged, the same network does address running tasks.
    plain = np.stack([a[:, 0] for a in sampled_actions(net, batch(pool)[0])])
    assert (plain > window).any()


def test_imitation_leaves_out_labels_the_rules_forbid() -> None:
    """A teacher's label on a task the student's rules mask (changed this slot) is left out of
    the loss, which stays finite; the allowed labels give the same loss as alone."""
    env, pool = elastic_pool()
    window = env.dims.window
    net = make_net(env)
    obs = flag_running(pool[0][0])
    r = int(np.flatnonzero(obs["running_mask"])[0])
    forbidden = [1 + window + r, 0, 0]
    t, _ = batch([(obs, pool[0][1])] * 2)
    labels = torch.tensor([forbidden, [0, 0, 0]])
    with torch.no_grad():
        loss, left_out = imitation_loss(net, t, labels)
        alone, none_left = imitation_loss(net, batch([(obs, pool[0][1])])[0], labels[1:])
    assert left_out == 0.5
    assert none_left == 0.0
    assert torch.isfinite(loss) and float(loss) == pytest.approx(float(alone), rel=1e-5)
