"""Rollout collection: in the learner's process, or by worker processes on other cores.

A :class:`RolloutWorker` owns some training environments and a network, and steps them
``rollout_steps`` rounds with the sampling policy (:func:`tapfinger.policies.learned.act_batch`),
returning a :class:`~tapfinger.algorithms.mappo.Rollout`. The trainer uses one of two collectors:

* :class:`InlineCollector` (``train.rollout_workers: 0``, the default): one worker in the
  learner's process, sharing the learner's network and its seed counter: what training always
  did.
* :class:`ProcessCollector` (``train.rollout_workers: N``): N worker processes, each with
  ``num_envs / N`` of the environments and its own copy of the network. Every iteration the
  learner sends the current weights and value statistics, the workers collect at the same time
  (one core each) and the learner concatenates their rollouts stream-wise, in worker order. Each
  environment draws its episodes' seeds from its own stream (:func:`env_seed`) and each worker
  reseeds its sampling from (run seed, worker, iteration), so a run is deterministic given N, and
  resumes where its checkpoint left it.

With ``train.overlap: true`` the learner submits the next rollout before it updates on the one
it just received: workers collect rollout k+1 with the weights before update k while the learner
computes update k (a policy lag of one iteration, as in asynchronous PPO; the stored behaviour
log-probabilities keep PPO's ratio exact). Collection and learning then take one core each.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.scenario import ScenarioConfig
from tapfinger.algorithms.mappo import Rollout
from tapfinger.checkpoint import Network, build_network
from tapfinger.config import ExperimentConfig
from tapfinger.critic_features import critic_features
from tapfinger.curriculum import apply_curriculum, curriculum_length
from tapfinger.episode_batches import collect_episodes
from tapfinger.graph import to_tensors
from tapfinger.memory import release_free_memory
from tapfinger.policies.learned import act_batch, flatten_states, model_inputs, net_value


def env_seed(start: int, env: int, num_envs: int, episode: int) -> int:
    """Seed of training env ``env``'s ``episode``-th episode under rollout workers (interleaved
    streams from ``start``: no two envs ever share a seed)."""
    return start + env + num_envs * episode


@dataclass
class Collected:
    """One worker's (or the merged) rollout of an iteration."""

    rollout: Rollout
    last_value: np.ndarray
    """float [B]: denormalised critic values after the last step (GAE's bootstrap)."""
    finished: list[dict]
    """Summaries of the episodes that ended during the rollout."""
    steps: int
    """Environment steps taken (rounds x envs)."""
    advantages: np.ndarray | None = None
    """Flat advantages in ``Rollout.flat`` order, when the collection computed them (whole
    episodes with the input-dependent baseline); None: GAE on the critic, by the learner."""
    returns: np.ndarray | None = None
    """Flat returns beside ``advantages``."""


class RolloutWorker:
    """Training environments and a network; collects rollouts with the sampling policy."""

    def __init__(
        self,
        envs: list[EdgeClusterEnv],
        net: Network,
        cfg: ExperimentConfig,
        take_seed: Callable[[int], int],
        device: torch.device,
    ) -> None:
        self.envs = envs
        self.net = net
        self.cfg = cfg
        self.take_seed = take_seed
        self.device = device
        self.agents = envs[0].possible_agents
        self.state: list[tuple[dict, dict]] = []
        self.progress = 0.0
        """Training progress (global step / total steps) of the current rollout, for the
        curriculum (:mod:`tapfinger.curriculum`)."""

    def reset_env(self, e: int, seed: int) -> tuple[dict, dict]:
        """Start env ``e``'s next episode with ``seed``, at the curriculum's length."""
        env = self.envs[e]
        apply_curriculum(env, curriculum_length(self.cfg.train, self.progress))
        return env.reset(seed=seed)

    def critic_states(self, which: list[int] | None = None) -> np.ndarray:
        """float32 [envs x agents, S]: each env's global state (with the critic's extra facts
        under ``model.critic_extras``), once per agent, env-major; ``which``: only those envs."""
        envs = self.envs if which is None else [self.envs[e] for e in which]
        rows = [env.state() for env in envs]
        if self.cfg.model.critic_extras and self.cfg.model.critic == "central":
            rows = [np.concatenate([r, critic_features(e)]) for r, e in zip(rows, envs)]
        return np.repeat(np.stack(rows), len(self.agents), axis=0).astype(np.float32)

    def reset(self) -> None:
        """Start a fresh episode in every env."""
        self.state = [self.reset_env(k, self.take_seed(k)) for k in range(len(self.envs))]

    def collect(self, norm_mean: float, norm_std: float) -> Collected:
        """Step every env ``train.rollout_steps`` rounds; values denormalised by the critic's
        running statistics (``norm_mean``, ``norm_std``)."""
        tc = self.cfg.train
        if tc.same_arrivals > 1:
            out = collect_episodes(self, norm_mean, norm_std)
            return Collected(
                out["rollout"],
                np.zeros(0),
                out["finished"],
                out["steps"],
                out["advantages"],
                out["returns"],
            )
        n = len(self.agents)
        ro = Rollout()
        finished: list[dict] = []
        state = self.state
        for _ in range(tc.rollout_steps):
            obs_list, facts = flatten_states(state, self.agents)
            states = self.critic_states()
            out = act_batch(
                self.net,
                obs_list,
                facts,
                num_agents=n,
                greedy=False,
                bayes=self.cfg.model.bayes,
                device=self.device,
                states=states,
            )
            rewards = np.zeros(len(obs_list))
            dones = np.zeros(len(obs_list))
            slots = np.zeros(len(obs_list))
            new_state = []
            for e, env in enumerate(self.envs):
                acts = {a: out.env_actions[e * n + i] for i, a in enumerate(self.agents)}
                obs, rew, term, trunc, infos = env.step(acts)
                for i, a in enumerate(self.agents):
                    rewards[e * n + i] = rew[a] * tc.reward_scale
                    slots[e * n + i] = infos[a]["slots_elapsed"]
                    dones[e * n + i] = float(term[a] or trunc[a])
                if not env.agents:
                    finished.append(infos[self.agents[0]]["episode"])
                    obs, infos = self.reset_env(e, self.take_seed(e))
                new_state.append((obs, infos))
            state = new_state
            ro.add(out, states, out.value * norm_std + norm_mean, rewards, dones, slots)
        self.state = state
        obs_list, _ = flatten_states(state, self.agents)
        states = self.critic_states()
        t = to_tensors(model_inputs(obs_list), self.device)
        with torch.no_grad():
            last = net_value(self.net, t, states, self.device) * norm_std + norm_mean
        steps = tc.rollout_steps * len(self.envs)
        return Collected(ro, last, finished, steps)


def merge(parts: list[Collected]) -> Collected:
    """Workers' rollouts as one, streams concatenated in worker order (every field, every step)."""
    if len(parts) == 1:
        return parts[0]
    if parts[0].advantages is not None:  # whole episodes: steps of each part one after another
        ro = Rollout()
        for name in ro.__dataclass_fields__:
            setattr(ro, name, [s for p in parts for s in getattr(p.rollout, name)])
        return Collected(
            ro,
            np.zeros(0),
            [f for p in parts for f in p.finished],
            sum(p.steps for p in parts),
            np.concatenate([p.advantages for p in parts]),
            np.concatenate([p.returns for p in parts]),
        )
    first = parts[0].rollout
    ro = Rollout()
    for name in ro.__dataclass_fields__:
        steps = zip(*(getattr(p.rollout, name) for p in parts))
        if name == "obs":
            merged = [{k: np.concatenate([s[k] for s in step]) for k in step[0]} for step in steps]
        else:
            merged = [np.concatenate(step) for step in steps]
        assert len(merged) == len(getattr(first, name))
        setattr(ro, name, merged)
    return Collected(
        ro,
        np.concatenate([p.last_value for p in parts]),
        [f for p in parts for f in p.finished],
        sum(p.steps for p in parts),
    )


class InlineCollector:
    """One worker in the learner's process, on the learner's network and seed counter."""

    def __init__(self, worker: RolloutWorker) -> None:
        self.worker = worker

    def start(self) -> None:
        self.worker.reset()

    def collect(
        self, net: Network, norm_mean: float, norm_std: float, iteration: int, progress: float = 0.0
    ) -> Collected:
        self.worker.progress = progress
        return self.worker.collect(norm_mean, norm_std)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------- processes
def split_envs(num_envs: int, workers: int) -> list[list[int]]:
    """Env indices of each worker: contiguous, as even as possible, none empty."""
    bounds = np.linspace(0, num_envs, workers + 1).round().astype(int)
    return [list(range(bounds[w], bounds[w + 1])) for w in range(workers)]


def weights_of(net: Network) -> dict[str, np.ndarray]:
    """The network's weights as host arrays (what goes down a pipe)."""
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def build_worker(
    cfg: ExperimentConfig, scenario: ScenarioConfig, spec: dict, reset: bool = True
) -> tuple[RolloutWorker, dict[int, int]]:
    """A worker's envs, network and per-env episode counts from its ``spec`` (what
    :meth:`ProcessCollector.worker_spec` sends); ``reset``: start every env's episode now (a
    worker rebuilt for whole-episode rollouts does not: those reset at each collection)."""
    torch.set_num_threads(1)
    envs = [EdgeClusterEnv(scenario) for _ in spec["envs"]]
    net = build_network(envs[0], cfg)
    episodes = dict(spec["episodes"])

    def take_seed(k: int) -> int:
        g = spec["envs"][k]
        seed = env_seed(spec["seed_start"], g, spec["num_envs"], episodes[g])
        episodes[g] += 1
        return seed

    worker = RolloutWorker(envs, net, cfg, take_seed, torch.device("cpu"))
    if reset:
        worker.reset()
    return worker, episodes


def serve_collect(
    worker: RolloutWorker, episodes: dict[int, int], spec: dict, payload: tuple
) -> tuple[Collected, dict[int, int]]:
    """One ``collect`` request: load the weights, reseed sampling from (worker, iteration),
    collect; returns the rollout and the episode counts after it."""
    weights, mean, std, iteration, progress = payload
    worker.progress = progress
    worker.net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    worker.net.eval()
    torch.manual_seed(spec["sample_seed"] + 1_000_003 * iteration)
    out = (worker.collect(mean, std), dict(episodes))
    release_free_memory()
    return out


def _worker_main(conn, cfg: ExperimentConfig, scenario: ScenarioConfig, spec: dict) -> None:
    """A worker process: build envs and a network, then serve ``collect`` requests."""
    try:
        worker, episodes = build_worker(cfg, scenario, spec)
        conn.send(("ready", None))
        while True:
            msg, payload = conn.recv()
            if msg == "close":
                break
            conn.send(("rollout", serve_collect(worker, episodes, spec, payload)))
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class WorkerError(RuntimeError):
    """A rollout worker failed; the message holds its traceback."""


class ProcessCollector:
    """N rollout worker processes collecting at the same time (see the module docstring)."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        scenario: ScenarioConfig,
        workers: int,
        seed_start: int,
        episodes: list[int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.scenario = scenario
        self.num_envs = cfg.train.num_envs
        k = cfg.train.same_arrivals  # a worker holds whole groups of one arrival sequence
        self.groups = [
            [e for g in groups for e in range(g * k, (g + 1) * k)]
            for groups in split_envs(self.num_envs // k, workers)
        ]
        self.seed_start = seed_start
        self.episodes = list(episodes) if episodes else [0] * self.num_envs
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.pending = False

    def worker_spec(self, w: int) -> dict:
        """What worker ``w`` is built from: its envs, seed streams and episode counts (the
        learner's, as of the last rollout received)."""
        group = self.groups[w]
        return {
            "envs": group,
            "num_envs": self.num_envs,
            "seed_start": self.seed_start,
            "episodes": {g: self.episodes[g] for g in group},
            "sample_seed": self.cfg.train.seed * 7919 + w,
        }

    def start(self) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads
        for w in range(len(self.groups)):
            spec = self.worker_spec(w)
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(child, self.cfg, self.scenario, spec), daemon=True
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        for w in range(len(self.groups)):
            self._receive(w, "ready")

    def _receive(self, w: int, expected: str) -> Any:
        try:
            msg, payload = self.conns[w].recv()
        except EOFError as exc:
            raise WorkerError(f"rollout worker {w} exited without a reply") from exc
        if msg == "error":
            raise WorkerError(f"rollout worker {w} failed:\n{payload}")
        assert msg == expected, (msg, expected)
        return payload

    def submit(
        self, net: Network, norm_mean: float, norm_std: float, iteration: int, progress: float = 0.0
    ) -> None:
        """Send the current weights; every worker starts collecting its next rollout."""
        if self.pending:
            raise RuntimeError("a rollout is already being collected")
        payload = (weights_of(net), norm_mean, norm_std, iteration, progress)
        for conn in self.conns:
            conn.send(("collect", payload))
        self.pending = True

    def receive(self) -> Collected:
        """Wait for the submitted rollout: the workers' parts merged in worker order."""
        parts = []
        for w in range(len(self.conns)):
            collected, episodes = self._receive(w, "rollout")
            for g, count in episodes.items():
                self.episodes[g] = count
            parts.append(collected)
        self.pending = False
        return merge(parts)

    def collect(
        self, net: Network, norm_mean: float, norm_std: float, iteration: int, progress: float = 0.0
    ) -> Collected:
        """One rollout with the current weights (submit, then wait)."""
        self.submit(net, norm_mean, norm_std, iteration, progress)
        return self.receive()

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(("close", None))
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self.procs, self.conns = [], []
        self.pending = False
