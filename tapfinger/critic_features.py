"""What the centralised critic may see beyond the env's global state (``model.critic_extras``).

The critic is used during training only (acting reads the actor alone), so it may read facts no
policy is told (README "Who knows what"): centralised training, decentralised execution. Its
value is the expected sum of JCTs still to come, which depends most on how much work is still in
the system and still to arrive, and on how far the episode has gone: none of which the global
state holds under the default regime (it holds the observations' features, without true work).
:func:`critic_features` gives those facts, squashed to [0, 1]. The actor never reads them: a
checkpoint trained with them acts exactly as its actor decides (tests/test_information.py).
"""

from __future__ import annotations

import numpy as np

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.simulator import Status

#: Names of :func:`critic_features`' entries, in order.
CRITIC_FEATURES = (
    "time",  # slot / (last arrival slot + 1)
    "to_arrive",  # tasks still to arrive / tasks
    "in_system",  # tasks arrived and unfinished / tasks
    "work_in_system",  # remaining work of arrived, unfinished tasks / the trace's total work
    "work_to_arrive",  # work of the tasks still to arrive / total work
    "work_running",  # remaining work of running tasks / total work
)


def critic_features(env: EdgeClusterEnv) -> np.ndarray:
    """float32 [len(CRITIC_FEATURES)]: the episode's privileged progress facts, in [0, 1]."""
    sim = env.sim
    trace = sim.trace
    tasks = max(1, len(trace))
    total = float(trace.work.sum()) or 1.0
    arrived = sim.next_arrival
    remaining = np.maximum(trace.work[:arrived] - sim.progress[:arrived], 0.0)
    unfinished = sim.finish_slot[:arrived] < 0
    running = sim.status[:arrived] == int(Status.RUNNING)
    horizon = float(trace.arrival[-1]) + 1.0 if len(trace) else 1.0
    return np.array(
        [
            min(1.0, sim.slot / horizon),
            (tasks - arrived) / tasks,
            float(unfinished.sum()) / tasks,
            float(remaining[unfinished].sum()) / total,
            float(trace.work[arrived:].sum()) / total,
            float(remaining[running & unfinished].sum()) / total,
        ],
        dtype=np.float32,
    )
