"""The paper's Bayes'-theorem rule for conflicts between agents that pick the same task.

TapFinger (arXiv 2302.00571 §IV-D): when several agents select one task in the same round, the
task goes to the agent with the largest posterior, proportional to the agent's pointer
probability of the task times a prior from its cluster's spare capacity relative to the task's
minimum demand. The losers' starts become no-ops; their allocation log-probabilities are left out
of the loss (``keep_alloc``), since no allocation was ever applied.
"""

from __future__ import annotations

import numpy as np

from envs.simulator import spare_capacity


def resolve_conflicts(
    actions: np.ndarray,
    pointer_logp: np.ndarray,
    task_index: np.ndarray,
    free: np.ndarray,
    demand: np.ndarray,
    num_agents: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the Bayes rule inside each env of a batch laid out env-major, agent-minor.

    Args:
        actions: long [B, 3 * S]: each agent's decoded starts (B = envs x agents).
        pointer_logp: float [B, S]: log pointer probability of each start.
        task_index: long [B, A]: the env's task row for each action index (-1: none).
        free: long [B, 3]: each agent's free resources.
        demand: long [B, A, 3]: minimum demand per action index.
        num_agents: agents per env.

    Returns:
        The actions to send to the envs (losing starts removed, later starts moved up) and a
        bool [B, S] mask of the starts whose allocation log-probabilities stay in the loss.
    """
    b, width = actions.shape
    starts = width // 3
    env_actions = actions.copy()
    keep = np.ones((b, starts), dtype=bool)
    for e in range(b // num_agents):
        rows = range(e * num_agents, (e + 1) * num_agents)
        claims: dict[int, list[tuple[int, int]]] = {}
        for r in rows:
            for j in range(starts):
                idx = int(actions[r, 3 * j])
                if idx == 0:
                    break
                task = int(task_index[r, idx])
                if task >= 0:
                    claims.setdefault(task, []).append((r, j))
        for contenders in claims.values():
            if len(contenders) < 2:
                continue
            posterior = []
            for r, j in contenders:
                idx = int(actions[r, 3 * j])
                prior = spare_capacity(free[r], demand[r, idx])
                posterior.append(np.exp(pointer_logp[r, j]) * prior)
            # Normalising by the sum of priors does not change the argmax; ties go to the first.
            winner = int(np.argmax(posterior))
            for k, (r, j) in enumerate(contenders):
                if k != winner:
                    keep[r, j] = False
    for r in range(b):
        if keep[r].all():
            continue
        triples = [
            actions[r, 3 * j : 3 * j + 3]
            for j in range(starts)
            if keep[r, j] and actions[r, 3 * j] != 0
        ]
        env_actions[r] = 0
        for j, t in enumerate(triples):
            env_actions[r, 3 * j : 3 * j + 3] = t
    return env_actions, keep
