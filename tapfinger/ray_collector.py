"""Rollout workers as Ray actors (``train.rollout_workers: N`` with ``train.ray_address``): the
learner stays in its process; each iteration the actors get the current weights (one object in
Ray's store, shared by all) and return their rollouts, merged in worker order as
:class:`~tapfinger.collectors.ProcessCollector` merges its processes'.

Each actor is built from the same spec a worker process is (its envs, seed streams and episode
counts) and serves the same ``collect`` request, so a run is deterministic given N, the same
as with worker processes, and ``train.overlap`` works alike.

A worker that dies (its actor is lost: the process killed, its node gone) is rebuilt from the
learner's episode counts as of the last rollout received, and its rollout is collected again,
up to ``max_restarts`` times per worker. With whole-episode rollouts (``train.same_arrivals`` >
1) the redone rollout is the one the dead worker would have returned (episodes reset at every
collection, sampling reseeded per iteration), so the run is identical to an undisturbed one
(tested by killing an actor). With fixed-length rollouts the rebuilt worker starts fresh
episodes, as a resumed run does. Checkpoints hold only the learner's state and the episode
counts, so they stay valid either way.
"""

from __future__ import annotations

import logging
from typing import Any

from envs.scenario import ScenarioConfig
from tapfinger.checkpoint import Network
from tapfinger.collectors import (
    Collected,
    ProcessCollector,
    WorkerError,
    build_worker,
    merge,
    serve_collect,
    weights_of,
)
from tapfinger.config import ExperimentConfig
from tapfinger.ray_support import connect

log = logging.getLogger(__name__)


class _Actor:
    """A rollout worker inside a Ray actor (the class is wrapped by ``ray.remote`` at start)."""

    def __init__(self, cfg: ExperimentConfig, scenario: ScenarioConfig, spec: dict, reset: bool):
        import os

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.spec = spec
        self.worker, self.episodes = build_worker(cfg, scenario, spec, reset=reset)

    def collect(
        self, weights: dict, mean: float, std: float, iteration: int, progress: float
    ) -> tuple[Collected, dict[int, int]]:
        # ``weights`` is a top-level argument, so Ray resolves its object reference here.
        payload = (weights, mean, std, iteration, progress)
        return serve_collect(self.worker, self.episodes, self.spec, payload)

    def pid(self) -> int:
        import os

        return os.getpid()


class RayCollector(ProcessCollector):
    """N rollout workers as Ray actors (see the module docstring)."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        scenario: ScenarioConfig,
        workers: int,
        seed_start: int,
        episodes: list[int] | None = None,
        address: str | None = None,
        max_restarts: int = 3,
    ) -> None:
        super().__init__(cfg, scenario, workers, seed_start, episodes)
        self.address = address
        self.max_restarts = max_restarts
        self.restarts = [0] * len(self.groups)
        self.actors: list[Any] = []
        self.refs: list[Any] = []
        self.payload: Any = None
        self._ray: Any = None
        self._started = False

    def _actor(self, w: int, reset: bool = True) -> Any:
        remote = self._ray.remote(num_cpus=1, max_restarts=0)(_Actor)
        return remote.remote(self.cfg, self.scenario, self.worker_spec(w), reset)

    def start(self) -> None:
        self._ray, self._started = connect(self.address)
        self.actors = [self._actor(w) for w in range(len(self.groups))]
        self._ray.get([a.pid.remote() for a in self.actors])  # built, or the error now

    def submit(
        self, net: Network, norm_mean: float, norm_std: float, iteration: int, progress: float = 0.0
    ) -> None:
        """Send the current weights (one object for all actors); every actor collects."""
        if self.pending:
            raise RuntimeError("a rollout is already being collected")
        weights = self._ray.put(weights_of(net))
        self.payload = (weights, norm_mean, norm_std, iteration, progress)
        self.refs = [a.collect.remote(*self.payload) for a in self.actors]
        self.pending = True

    def _get(self, w: int) -> tuple[Collected, dict[int, int]]:
        """Worker ``w``'s rollout; a lost actor is rebuilt and its rollout collected again."""
        from ray.exceptions import RayActorError

        while True:
            try:
                return self._ray.get(self.refs[w])
            except RayActorError as exc:
                if self.restarts[w] >= self.max_restarts:
                    raise WorkerError(
                        f"rollout worker {w} died {self.restarts[w] + 1} times: {exc}"
                    ) from exc
                self.restarts[w] += 1
                log.warning("rollout worker %d died; rebuilding it and redoing its rollout", w)
                whole_episodes = self.cfg.train.same_arrivals > 1
                self.actors[w] = self._actor(w, reset=not whole_episodes)
                self.refs[w] = self.actors[w].collect.remote(*self.payload)
            except self._ray.exceptions.RayTaskError as exc:
                raise WorkerError(f"rollout worker {w} failed:\n{exc}") from exc

    def receive(self) -> Collected:
        """Wait for the submitted rollout: the actors' parts merged in worker order."""
        # Every part first: a rebuilt actor starts from the counts as of the last rollout.
        parts = [self._get(w) for w in range(len(self.actors))]
        for _, episodes in parts:
            for g, count in episodes.items():
                self.episodes[g] = count
        self.pending = False
        return merge([c for c, _ in parts])

    def close(self) -> None:
        if self._ray is None:
            return
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors, self.refs = [], []
        self.pending = False
        if self._started:
            self._ray.shutdown()
        self._ray = None


__all__ = ["RayCollector"]
