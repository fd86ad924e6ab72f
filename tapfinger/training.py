"""Training: MAPPO over several environments, TensorBoard curves, evaluation and checkpoints.

A run lives in ``runs/<experiment>__<seed>__<timestamp>/`` with the resolved ``config.yaml``,
TensorBoard events, ``checkpoints/latest.pt`` and ``best.pt`` (atomic writes) and
``summary.json``. Training episodes draw their seeds from ``TRAIN_SEED_BASE`` upwards, far from
the evaluation seeds (``evaluate.py`` uses 0.., periodic evaluation ``train.eval_seed``..), so a
policy is never evaluated on an arrival trace it was trained on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from envs import edge_cluster_v0
from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.errors import ConfigError
from envs.observation import CLUSTER_FEATURES
from tapfinger.algorithms.mappo import Rollout, RunningNorm, log_prob, ppo_update
from tapfinger.config import ExperimentConfig, config_to_dict, load_config
from tapfinger.conflicts import resolve_conflicts
from tapfinger.graph import node_feature_dims, stack_observations, to_tensors
from tapfinger.models.network import PerAgentNet, TapFingerNet
from tapfinger.policies import make_policy

log = logging.getLogger(__name__)

#: Observation keys the network reads (the per-dimension ``action_mask`` tuple is not needed).
MODEL_KEYS = (
    "clusters",
    "pending",
    "pending_mask",
    "pending_visible",
    "running",
    "running_mask",
    "agent",
    "task_mask",
    "cpu_mask",
    "gpu_mask",
    "free",
    "demand",
)
TRAIN_SEED_BASE = 1_000_000
CHECKPOINT_FORMAT = "tapfinger-checkpoint/1"


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device: '{name}' is not one of auto, cpu, cuda")
    return torch.device(name)


def build_network(env: EdgeClusterEnv, cfg: ExperimentConfig) -> TapFingerNet | PerAgentNet:
    """The network for ``env``'s shapes: shared by all agents, or one per agent."""
    feat = node_feature_dims(env.observation_space(env.possible_agents[0]))
    cls = TapFingerNet if cfg.model.shared_actor else PerAgentNet
    return cls(env.dims, feat, env.state_space.shape[0], cfg.model)


def shape_signature(env: EdgeClusterEnv) -> dict[str, Any]:
    """What a checkpoint must agree on with a scenario to be loadable."""
    return {
        "dims": asdict(env.dims),
        "feat": node_feature_dims(env.observation_space(env.possible_agents[0])),
        "state_size": int(env.state_space.shape[0]),
    }


def model_inputs(obs_list: list[dict]) -> dict[str, np.ndarray]:
    return stack_observations([{k: o[k] for k in MODEL_KEYS} for o in obs_list])


RUNNING_COLUMN = CLUSTER_FEATURES.index("running")


def deadlocked_rows(
    actions: np.ndarray,
    start_mass: np.ndarray,
    stacked: dict[str, np.ndarray],
    active: np.ndarray,
    num_agents: int,
) -> np.ndarray:
    """Rows that the greedy no-deadlock rule makes start a task, one per deadlocked env.

    An env's round is deadlocked when no cluster runs anything, every agent idles, and some agent
    has a task that fits: a greedy policy would then idle until the truncation. The agent whose
    pointer puts the most mass on starting something starts its likeliest task. Any other round
    is left exactly as the policy decided (idling one cluster while others run, e.g. to wait
    for a faster one, stays the policy's choice).
    """

    def per_env(x: np.ndarray) -> np.ndarray:
        return x.reshape(-1, num_agents)

    idle = (stacked["clusters"][:, :, RUNNING_COLUMN] == 0).all(axis=1)
    stuck = per_env(idle).all(1) & (per_env(actions[:, 0]) == 0).all(1) & per_env(active).any(1)
    envs = np.flatnonzero(stuck)
    mass = np.where(active, start_mass, -1.0)
    return envs * num_agents + per_env(mass)[envs].argmax(1)


def act_batch(
    net: TapFingerNet | PerAgentNet,
    obs_list: list[dict],
    facts: list[dict],
    num_agents: int,
    greedy: bool,
    bayes: bool,
    device: torch.device,
    states: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Decide for B = envs x agents observations (env-major), resolving conflicts by Bayes.

    Observations in which only the no-op is valid are not run through the actor: their action
    is the no-op with log-probability 0 (most rounds leave most agents nothing to start).
    """
    stacked = model_inputs(obs_list)
    b = len(obs_list)
    starts = net.dims.max_starts
    active = stacked["task_mask"][:, 1:].any(axis=1)
    actions = np.zeros((b, 3 * starts), dtype=np.int64)
    logp_task = np.zeros((b, starts), dtype=np.float32)
    logp_alloc = np.zeros((b, starts), dtype=np.float32)
    value = None
    with torch.no_grad():
        if active.any():
            sub = to_tensors({k: v[active] for k, v in stacked.items()}, device)
            decision, _ = net.decide(sub, greedy=greedy)
            actions[active] = decision.actions.cpu().numpy()
            logp_task[active] = decision.logp_task.cpu().numpy()
            logp_alloc[active] = decision.logp_alloc.cpu().numpy()
            if greedy:
                start_mass = np.zeros(b)
                start_mass[active] = 1.0 - decision.task_probs[:, 0].cpu().numpy()
                forced = deadlocked_rows(actions, start_mass, stacked, active, num_agents)
                if forced.size:
                    sub = to_tensors({k: v[forced] for k, v in stacked.items()}, device)
                    must = torch.ones(forced.size, dtype=torch.bool, device=device)
                    redo, _ = net.decide(sub, greedy=True, must_start=must)
                    actions[forced] = redo.actions.cpu().numpy()
                    logp_task[forced] = redo.logp_task.cpu().numpy()
                    logp_alloc[forced] = redo.logp_alloc.cpu().numpy()
        if states is not None:
            value = net_value(net, to_tensors(stacked, device), states, device)
    if bayes:
        task_index = np.stack([f["task_index"] for f in facts])
        env_actions, keep = resolve_conflicts(
            actions, logp_task, task_index, stacked["free"], stacked["demand"], num_agents
        )
    else:
        env_actions, keep = actions, np.ones_like(logp_task, dtype=bool)
    logp = logp_task.sum(axis=1) + (logp_alloc * keep).sum(axis=1)
    return {
        "stacked": stacked,
        "actions": actions,
        "env_actions": env_actions,
        "keep": keep,
        "logp": logp,
        "value": value,
    }


class Trainer:
    """One training run: environments, network, optimiser, logging and checkpoints."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        device: torch.device,
        resume: bool = False,
        show_progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.device = device
        self.show_progress = show_progress
        tc = cfg.train
        torch.manual_seed(tc.seed)
        self.rng = np.random.default_rng(tc.seed)
        self.envs = [edge_cluster_v0.EdgeClusterEnv(cfg.scenario) for _ in range(tc.num_envs)]
        self.agents = self.envs[0].possible_agents
        self.net = build_network(self.envs[0], cfg).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=tc.lr, eps=1e-5)
        self.norm = RunningNorm()
        self.global_step = 0
        self.iteration = 0
        self.episodes = 0
        self.bc_env_steps = 0
        self.next_seed = TRAIN_SEED_BASE + tc.seed * 100_000
        self.best_jct = float("inf")
        self.best_step = -1
        self.last_eval: dict[str, float] = {}
        self.wall_offset = 0.0
        self.ckpt_dir = run_dir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._load(self.ckpt_dir / "latest.pt")
        elif tc.init_from:
            self._init_from(Path(tc.init_from))
        from torch.utils.tensorboard import SummaryWriter

        # Purge only what a crash logged after the checkpoint: the checkpointed step's own
        # scalars (logged just before it was saved) stay.
        self.writer = SummaryWriter(
            str(run_dir), purge_step=self.global_step + 1 if self.global_step else None
        )
        if not resume:
            self.writer.add_text("hyperparameters", hparam_table(cfg))
        self.eval_env = edge_cluster_v0.EdgeClusterEnv(cfg.scenario)
        self.baseline_eval: dict[str, dict[str, float]] = {}

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": config_to_dict(self.cfg),
            "shapes": shape_signature(self.envs[0]),
            "counters": {
                "global_step": self.global_step,
                "iteration": self.iteration,
                "episodes": self.episodes,
                "bc_env_steps": self.bc_env_steps,
                "next_seed": self.next_seed,
                "best_step": self.best_step,
                "wall_s": self.wall_offset + (time.perf_counter() - self._t0),
            },
            "best_jct": self.best_jct,
            "value_norm": self.norm.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state},
        }

    def save(self, name: str) -> Path:
        path = self.ckpt_dir / name
        save_atomic(self._payload(), path)
        return path

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        check_shapes(ckpt, self.envs[0], path)
        if "optimizer" not in ckpt:
            raise ConfigError(f"{path}: an exported policy (no optimizer state); cannot resume")
        load_weights(self.net, ckpt["model"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        c = ckpt["counters"]
        self.global_step, self.iteration = int(c["global_step"]), int(c["iteration"])
        self.episodes, self.next_seed = int(c["episodes"]), int(c["next_seed"])
        self.bc_env_steps = int(c["bc_env_steps"])
        self.best_step, self.wall_offset = int(c["best_step"]), float(c["wall_s"])
        self.best_jct = float(ckpt["best_jct"])
        self.norm.load_state_dict(ckpt["value_norm"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.rng.bit_generator.state = ckpt["rng"]["numpy"]

    def _init_from(self, path: Path) -> None:
        """Fresh run, but starting from another checkpoint's weights (and value statistics)."""
        ckpt = load_checkpoint(path)
        check_shapes(ckpt, self.envs[0], path)
        load_weights(self.net, ckpt["model"], path)
        if "value_norm" in ckpt:
            self.norm.load_state_dict(ckpt["value_norm"])

    # ------------------------------------------------------------------ rollouts
    def _reset_env(self, env: EdgeClusterEnv) -> tuple[dict, dict]:
        seed = self.next_seed
        self.next_seed += 1
        return env.reset(seed=seed)

    def _flat(self, state: list[tuple[dict, dict]]) -> tuple[list[dict], list[dict]]:
        """Observations and infos of every (env, agent), env-major: the order of ``act_batch``."""
        obs_list = [obs[a] for obs, _ in state for a in self.agents]
        return obs_list, [info[a] for _, info in state for a in self.agents]

    def collect(self, state: list[tuple[dict, dict]]) -> tuple[Rollout, np.ndarray, list[dict]]:
        """Step every env ``rollout_steps`` rounds with the sampling policy."""
        tc = self.cfg.train
        n = len(self.agents)
        ro = Rollout()
        finished: list[dict] = []
        for _ in range(tc.rollout_steps):
            obs_list, facts = self._flat(state)
            states = np.repeat(np.stack([env.state() for env in self.envs]), n, axis=0)
            out = act_batch(
                self.net, obs_list, facts, n, False, self.cfg.model.bayes, self.device, states
            )
            rewards = np.zeros(len(obs_list))
            dones = np.zeros(len(obs_list))
            slots = np.zeros(len(obs_list))
            new_state = []
            for e, env in enumerate(self.envs):
                acts = {a: out["env_actions"][e * n + i] for i, a in enumerate(self.agents)}
                obs, rew, term, trunc, infos = env.step(acts)
                for i, a in enumerate(self.agents):
                    rewards[e * n + i] = rew[a] * tc.reward_scale
                    slots[e * n + i] = infos[a]["slots_elapsed"]
                    dones[e * n + i] = float(term[a] or trunc[a])
                if not env.agents:
                    finished.append(infos[self.agents[0]]["episode"])
                    self.episodes += 1
                    obs, infos = self._reset_env(env)
                new_state.append((obs, infos))
            state[:] = new_state
            ro.obs.append(out["stacked"])
            ro.state.append(states.astype(np.float32))
            ro.actions.append(out["actions"])
            ro.logp.append(out["logp"])
            ro.keep.append(out["keep"])
            ro.values.append(out["value"] * self.norm.std + self.norm.mean)
            ro.rewards.append(rewards)
            ro.dones.append(dones)
            ro.slots.append(slots)
            self.global_step += len(self.envs)
        obs_list, _ = self._flat(state)
        states = np.repeat(np.stack([env.state() for env in self.envs]), n, axis=0)
        t = to_tensors(model_inputs(obs_list), self.device)
        with torch.no_grad():
            last = net_value(self.net, t, states, self.device) * self.norm.std + self.norm.mean
        return ro, last, finished

    def update(
        self, ro: Rollout, last: np.ndarray, train_policy: bool = True
    ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        """One PPO update on a rollout (critic only while ``train_policy`` is off).

        Returns the loss statistics, the advantages and the returns.
        """
        tc = self.cfg.train
        adv, ret = ro.advantages(last, tc.gamma, tc.gae_lambda)
        self.net.train()
        stats = ppo_update(
            self.net,
            self.optimizer,
            ro.flat(),
            adv.reshape(-1),
            ret.reshape(-1),
            self.norm,
            tc,
            self.rng,
            self.device,
            train_policy=train_policy,
        )
        return stats, adv, ret

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Greedy episodes on the fixed held-out seeds; baselines once, on the same seeds."""
        tc = self.cfg.train
        seeds = [tc.eval_seed + i for i in range(tc.eval_episodes)]
        policy = make_policy("tapfinger", self.eval_env, network=self.net, device=self.device)
        result = {"tapfinger": mean_metrics(run_policy(self.eval_env, policy, seeds))}
        for name in tc.eval_baselines:
            if name not in self.baseline_eval:
                base = make_policy(name, self.eval_env)
                self.baseline_eval[name] = mean_metrics(run_policy(self.eval_env, base, seeds))
            result[name] = self.baseline_eval[name]
        for name, m in result.items():
            for key in ("mean_jct", "p95_jct", "lower_bound_ratio"):
                tag = "avg_jct" if key == "mean_jct" else key
                self.writer.add_scalar(f"eval/{name}/{tag}", m[key], self.global_step)
        return {name: m["mean_jct"] for name, m in result.items()}

    def _evaluate_and_keep_best(self) -> float:
        """Greedy evaluation; ``best.pt`` follows the lowest mean JCT seen so far."""
        self.last_eval = self.evaluate()
        jct = self.last_eval["tapfinger"]
        if jct < self.best_jct:
            self.best_jct, self.best_step = jct, self.global_step
            self.save("best.pt")
        return jct

    # ------------------------------------------------------------------ main loop
    def train(self) -> dict[str, Any]:
        from tqdm import tqdm

        tc = self.cfg.train
        self._t0 = time.perf_counter()
        if self.global_step == 0 and tc.bc_steps > 0:
            self.behaviour_cloning(tc.bc_steps)
            self._evaluate_and_keep_best()
        state = [self._reset_env(env) for env in self.envs]
        bar = tqdm(
            total=tc.total_steps,
            initial=min(self.global_step, tc.total_steps),
            unit="step",
            disable=not self.show_progress,
            dynamic_ncols=True,
        )
        next_eval = (self.global_step // tc.eval_every + 1) * tc.eval_every
        next_keep = (
            (self.global_step // tc.checkpoint_every + 1) * tc.checkpoint_every
            if tc.checkpoint_every
            else None
        )
        sps = 0.0
        while self.global_step < tc.total_steps:
            t_iter = time.perf_counter()
            step0 = self.global_step
            ro, last, finished = self.collect(state)
            stats, adv, ret = self.update(ro, last, self.iteration >= tc.critic_warmup)
            self.iteration += 1
            sps = (self.global_step - step0) / (time.perf_counter() - t_iter)
            self._log(stats, ro, adv, ret, finished, sps)
            bar.update(self.global_step - step0)
            if self.global_step >= next_eval or self.global_step >= tc.total_steps:
                jct = self._evaluate_and_keep_best()
                next_eval += tc.eval_every
                bar.set_postfix(sps=f"{sps:.0f}", eval_jct=f"{jct:.2f}")
            else:
                bar.set_postfix(sps=f"{sps:.0f}")
            self.save("latest.pt")
            if next_keep is not None and self.global_step >= next_keep:
                self.save(f"step_{self.global_step}.pt")
                next_keep += tc.checkpoint_every
        bar.close()
        self.writer.flush()
        summary = {
            "experiment": self.run_dir.name,
            "scenario": self.cfg.scenario.name,
            "seed": tc.seed,
            "global_step": self.global_step,
            "episodes": self.episodes,
            "bc_env_steps": self.bc_env_steps,
            "wall_s": self.wall_offset + (time.perf_counter() - self._t0),
            "last_sps": sps,
            "best_eval_mean_jct": self.best_jct,
            "best_step": self.best_step,
            "last_eval_mean_jct": self.last_eval,
            "device": str(self.device),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.writer.close()
        return summary

    def _log(self, stats, ro: Rollout, adv, ret, finished: list[dict], sps: float) -> None:
        w, step = self.writer, self.global_step
        for k, v in stats.items():
            w.add_scalar(f"losses/{k}", v, step)
        values = np.stack(ro.values).reshape(-1)
        var = np.var(ret)
        w.add_scalar(
            "losses/explained_variance",
            float(1 - np.var(ret.reshape(-1) - values) / var) if var > 0 else 0.0,
            step,
        )
        w.add_scalar("charts/SPS", sps, step)
        w.add_scalar("charts/learning_rate", self.optimizer.param_groups[0]["lr"], step)
        if finished:
            m = mean_metrics(finished)
            w.add_scalar("charts/episodic_return", -m["mean_jct"] * m["tasks"], step)
            w.add_scalar("sched/avg_jct", m["mean_jct"], step)
            w.add_scalar("sched/p95_jct", m["p95_jct"], step)
            w.add_scalar("sched/utilization_cpu", m["utilization_cpu"], step)
            w.add_scalar("sched/utilization_gpu", m["utilization_gpu"], step)
            w.add_scalar("sched/conflicts", m["conflicts"], step)

    # ------------------------------------------------------------------ warm start
    def behaviour_cloning(self, updates: int) -> None:
        """Warm start (DESIGN §5.3.1): imitate ``train.bc_policy`` on the training envs.

        DAgger-style: the teacher labels every visited state; it also drives the envs at first,
        then hands over to the student (sampling) so that the student learns to recover from
        its own mistakes. The teacher may be an oracle baseline (it reads privileged ``infos``
        during training only); the student only ever sees observations.
        """
        tc = self.cfg.train
        n = len(self.agents)
        teachers = [make_policy(tc.bc_policy, env) for env in self.envs]
        state = []
        for env, teacher in zip(self.envs, teachers):
            seed = self.next_seed
            state.append(self._reset_env(env))
            teacher.reset(seed)
        rounds = max(1, tc.rollout_steps // 4)
        for group in self.optimizer.param_groups:
            group["lr"] = tc.bc_lr
        for update in range(updates):
            beta = max(0.0, 1.0 - update / max(1, updates // 2))
            obs_batch, labels = [], []
            for _ in range(rounds):
                student = None
                if self.rng.random() >= beta:
                    obs_list, facts = self._flat(state)
                    student = act_batch(
                        self.net, obs_list, facts, n, False, self.cfg.model.bayes, self.device
                    )["env_actions"]
                for e, (env, teacher) in enumerate(zip(self.envs, teachers)):
                    obs, infos = state[e]
                    taught = teacher.act(obs, infos)
                    for a in self.agents:
                        obs_batch.append(obs[a])
                        labels.append(taught[a])
                    acts = (
                        taught
                        if student is None
                        else {a: student[e * n + i] for i, a in enumerate(self.agents)}
                    )
                    obs, _, _, _, infos = env.step(acts)
                    self.bc_env_steps += 1
                    if not env.agents:
                        seed = self.next_seed
                        obs, infos = self._reset_env(env)
                        teacher.reset(seed)
                    state[e] = (obs, infos)
            t = to_tensors(model_inputs(obs_batch), self.device)
            actions = torch.as_tensor(np.stack(labels), device=self.device)
            decision, _ = self.net.decide(t, actions=actions)
            loss = -log_prob(decision, torch.ones_like(decision.logp_alloc)).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), tc.max_grad_norm)
            self.optimizer.step()
            self.writer.add_scalar("losses/bc_loss", float(loss.detach()), update)
            self.writer.add_scalar("losses/bc_teacher_share", beta, update)
        for group in self.optimizer.param_groups:
            group["lr"] = tc.lr


def net_value(net: TapFingerNet, t: dict, states: np.ndarray, device: torch.device) -> np.ndarray:
    local = None if net.cfg.critic == "central" else net.encode(t)[2]
    return net.value(t, torch.as_tensor(states, device=device), local).cpu().numpy()


def run_policy(env: EdgeClusterEnv, policy: Any, seeds: list[int]) -> list[dict]:
    """Episode metrics of ``policy`` on ``env`` for each seed."""
    out = []
    for seed in seeds:
        policy.reset(seed)
        obs, infos = env.reset(seed=seed)
        while env.agents:
            obs, _, _, _, infos = env.step(policy.act(obs, infos))
        out.append(infos[env.possible_agents[0]]["episode"])
    return out


def mean_metrics(episodes: list[dict]) -> dict[str, float]:
    return {k: float(np.mean([e[k] for e in episodes])) for k in episodes[0]}


def hparam_table(cfg: ExperimentConfig) -> str:
    rows = ["|section|key|value|", "|-|-|-|"]
    for section, values in config_to_dict(cfg).items():
        if section == "scenario":
            continue
        rows += [f"|{section}|{k}|{v}|" for k, v in values.items()]
    rows.append(f"|scenario|name|{cfg.scenario.name}|")
    return "\n".join(rows)


def save_atomic(payload: dict, path: Path) -> None:
    """Write a checkpoint so that a kill never leaves a broken file at ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a TapFinger checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not a TapFinger checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def load_weights(net: torch.nn.Module, state: dict, path: str | Path) -> None:
    """Load a checkpoint's weights; one clear line when they do not fit ``net``.

    They do not fit when the run's model section changed (``--resume ... --set model.hidden=``)
    or the checkpoint was written by another version of the network.
    """
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[1:])
        if len(detail) > 300:
            detail = detail[:300] + " ..."
        raise ConfigError(
            f"{path}: the checkpoint's weights do not fit this network ({detail})"
        ) from None


def check_shapes(ckpt: dict, env: EdgeClusterEnv, path: str | Path) -> None:
    """Refuse a checkpoint whose shapes do not match the scenario's."""
    want = shape_signature(env)
    have = ckpt["shapes"]
    for key in ("dims", "feat", "state_size"):
        if have[key] != want[key]:
            raise ConfigError(
                f"{path}: checkpoint does not match scenario '{env.scenario.name}' "
                f"({key}: checkpoint {have[key]}, scenario {want[key]})"
            )


def make_run_dir(cfg: ExperimentConfig, root: str | Path = "runs") -> Path:
    name = cfg.train.experiment or cfg.scenario.name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{name}__{cfg.train.seed}__{stamp}"
    suffix = 1
    while path.exists():
        path = Path(root) / f"{name}__{cfg.train.seed}__{stamp}-{suffix}"
        suffix += 1
    path.mkdir(parents=True)
    return path


def train_main(
    config: str | None,
    overrides: list[str],
    device: str = "auto",
    run_dir: str | None = None,
    resume: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """What ``train.py`` does: resolve the config, make or reopen the run folder, train."""
    torch.set_num_threads(1)  # tiny graphs: one thread is far faster than two here
    dev = pick_device(device)
    if resume:
        rdir = Path(resume)
        if not (rdir / "checkpoints" / "latest.pt").exists():
            raise ConfigError(f"--resume {resume}: no checkpoints/latest.pt in that folder")
        cfg = load_config(rdir / "config.yaml", overrides)
    else:
        cfg = load_config(config, overrides)
        if run_dir:
            rdir = Path(run_dir)
            if (rdir / "checkpoints" / "latest.pt").exists():
                raise ConfigError(
                    f"--run-dir {run_dir} already holds a run; use --resume {run_dir} to continue"
                )
            rdir.mkdir(parents=True, exist_ok=True)
        else:
            rdir = make_run_dir(cfg)
        (rdir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    trainer = Trainer(cfg, rdir, dev, resume=bool(resume), show_progress=progress)
    summary = trainer.train()
    summary["run_dir"] = str(rdir)
    return summary
