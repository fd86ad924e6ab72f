"""Episodes as Ray tasks (``evaluate.py --ray [ADDRESS]``): a local Ray by default, a cluster when
an address is given. Ray is an optional extra (``pip install -e ".[ray]"``); nothing else imports
this module.

Each episode is one task with one CPU, running :func:`tapfinger.evaluation.run_episode` on its
spec (the spec carries the scenario, the trace, the checkpoint path and the warm state, so a
task needs nothing from the driver but the project's code). Results come back in spec order, so
``results.json`` is the serial run's, timing apart (tested). An episode that fails is reported
with its policy and seed (:class:`EpisodeFailed`), never dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from tapfinger.eval_types import EpisodeFailed, EpisodeResult, EpisodeSpec
from tapfinger.ray_support import connect


def _play(play: Callable[[EpisodeSpec], EpisodeResult], spec: EpisodeSpec) -> EpisodeResult:
    """One episode inside a Ray worker, with one torch thread (the tasks share the cores)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    return play(spec)


def run_episodes_on_ray(
    specs: Sequence[EpisodeSpec],
    play: Callable[[EpisodeSpec], EpisodeResult],
    address: str | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Play ``specs`` as Ray tasks, each by ``play`` (:func:`tapfinger.evaluation.run_episode`,
    which the workers import); results in ``specs`` order; ``on_episode`` as each ends.

    Raises:
        EpisodeFailed: The first episode that failed (the others are cancelled).
    """
    ray, started = connect(address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_play)
        refs = [remote.remote(play, spec) for spec in specs]
        index = {ref: i for i, ref in enumerate(refs)}
        done: dict[int, EpisodeResult] = {}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                spec = specs[index[ref]]
                try:
                    result = ray.get(ref)
                except Exception as exc:
                    for other in pending:
                        ray.cancel(other, force=True)
                    cause = getattr(exc, "cause", None) or exc
                    raise EpisodeFailed(
                        f"episode of {spec.policy} with seed {spec.seed} failed: "
                        f"{type(cause).__name__}: {cause}"
                    ) from None
                done[index[ref]] = result
                if on_episode is not None:
                    on_episode(result)
        return [done[i] for i in range(len(specs))]
    finally:
        if started:
            ray.shutdown()


__all__ = ["run_episodes_on_ray"]
