"""Whole episodes on shared arrivals, with the input-dependent baseline (``train.same_arrivals``).

Arrivals dominate the return of a scheduling episode: a busy trace costs more whatever the
policy does, so a critic that does not know the future arrivals explains little of the return
and the advantage is mostly noise. Mao et al. (ICLR 2019, "Variance reduction for reinforcement
learning in input-driven environments"), used by Decima (SIGCOMM 2019), play several rollouts on
the same arrival sequence and take as the baseline of a decision the return the other rollouts of
that sequence got from the same time on. Here:

* the ``num_envs`` environments form groups of ``K = train.same_arrivals``; at every iteration
  each group's envs start an episode on one seed (one arrival sequence) and play it to its end
  with the sampling policy (an env that finished waits for the others);
* a step's return ``G`` is the discounted sum of the rewards from it on, discounted per slot of
  simulated time (rounds inside a slot are not discounted);
* the return-to-go of a rollout from slot ``s`` is read off its trajectory (interpolated within a
  step that spans several slots; 0 after its episode ended), and the baseline of a step that
  begins at slot ``s`` is the mean of the other ``K - 1`` rollouts' returns-to-go from ``s``;
* the advantage is ``G - baseline``; the critic is still fitted to ``G`` (for its diagnostics).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapfinger.algorithms.mappo import Rollout
from tapfinger.policies.learned import act_batch, flatten_states


def returns_by_slot(
    rewards: np.ndarray, slots: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """A trajectory's returns ``G_t`` and start slots ``s_t`` (one row per step).

    ``slots[t]`` slots passed during step t; ``G_t = r_t + gamma ** slots[t] * G_{t+1}``, 0 after
    the last step.
    """
    g = np.zeros(len(rewards))
    nxt = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        nxt = rewards[t] + gamma ** slots[t] * nxt
        g[t] = nxt
    start = np.concatenate([[0.0], np.cumsum(slots)[:-1]]) if len(slots) else np.zeros(0)
    return g, start


def return_from(slot: np.ndarray, g: np.ndarray, start: np.ndarray, rewards, slots) -> np.ndarray:
    """A trajectory's return-to-go from each of the slots ``slot`` (0 once it has ended).

    Inside a step that spans several slots, the step's reward is taken as spread evenly over
    them (the undiscounted share of the slots already passed is removed).
    """
    end = start[-1] + slots[-1] if len(start) else 0.0
    t = np.searchsorted(start, slot, side="right") - 1
    t = np.clip(t, 0, max(0, len(start) - 1))
    span = np.maximum(slots[t], 1.0)
    passed = np.clip(slot - start[t], 0.0, span)
    value = g[t] - rewards[t] * np.where(slots[t] > 0, passed / span, 0.0)
    return np.where(slot < end, value, 0.0)


def input_baseline(trajectories: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Per trajectory of one arrival sequence: each step's baseline, the mean of the other
    trajectories' returns-to-go from the slot the step begins at (0 with one trajectory)."""
    k = len(trajectories)
    out = []
    for i, tr in enumerate(trajectories):
        others = [
            return_from(tr["start"], o["g"], o["start"], o["rewards"], o["slots"])
            for j, o in enumerate(trajectories)
            if j != i
        ]
        out.append(np.mean(others, axis=0) if k > 1 else np.zeros(len(tr["g"])))
    return out


def collect_episodes(worker: Any, norm_mean: float, norm_std: float) -> dict[str, Any]:
    """Play one episode per env of ``worker`` (groups of ``same_arrivals`` on one seed each).

    Returns the rollout (steps of varying width: only the envs still playing), the flat
    advantages and returns in ``Rollout.flat`` order, the finished episodes' summaries and the
    steps taken.
    """
    tc = worker.cfg.train
    k = tc.same_arrivals
    envs, agents = worker.envs, worker.agents
    n = len(agents)
    state = []
    for e in range(len(envs)):
        if e % k == 0:
            seed = worker.take_seed(e)
        state.append(worker.reset_env(e, seed))
    alive = list(range(len(envs)))
    traj = [{"rewards": [], "slots": [], "rows": []} for _ in envs]
    ro = Rollout()
    finished: list[dict] = []
    row = 0
    steps = 0
    while alive and steps < tc.episode_max_steps * len(envs):
        obs_list, facts = flatten_states([state[e] for e in alive], agents)
        states = worker.critic_states(alive)
        out = act_batch(
            worker.net,
            obs_list,
            facts,
            num_agents=n,
            greedy=False,
            bayes=worker.cfg.model.bayes,
            device=worker.device,
            states=states,
        )
        rewards, dones, slots = (np.zeros(len(obs_list)) for _ in range(3))
        still = []
        for i, e in enumerate(alive):
            acts = {a: out.env_actions[i * n + j] for j, a in enumerate(agents)}
            obs, rew, _, _, infos = envs[e].step(acts)
            r = rew[agents[0]] * tc.reward_scale
            s = infos[agents[0]]["slots_elapsed"]
            rewards[i * n : (i + 1) * n] = r
            slots[i * n : (i + 1) * n] = s
            traj[e]["rewards"].append(r)
            traj[e]["slots"].append(s)
            traj[e]["rows"].append(row + i * n)
            if envs[e].agents:
                state[e] = (obs, infos)
                still.append(e)
            else:
                dones[i * n : (i + 1) * n] = 1.0
                finished.append(infos[agents[0]]["episode"])
        steps += len(alive)
        row += len(obs_list)
        ro.add(out, states, out.value * norm_std + norm_mean, rewards, dones, slots)
        alive = still
    for tr in traj:
        tr["rewards"] = np.asarray(tr["rewards"], dtype=float)
        tr["slots"] = np.asarray(tr["slots"], dtype=float)
        tr["g"], tr["start"] = returns_by_slot(tr["rewards"], tr["slots"], tc.gamma)
    adv = np.zeros(row)
    ret = np.zeros(row)
    for g0 in range(0, len(envs), k):
        group = traj[g0 : g0 + k]
        for tr, base in zip(group, input_baseline(group)):
            for rows_of_step, g, b in zip(tr["rows"], tr["g"], base):
                ret[rows_of_step : rows_of_step + n] = g
                adv[rows_of_step : rows_of_step + n] = g - b
    return {"rollout": ro, "advantages": adv, "returns": ret, "finished": finished, "steps": steps}
