"""Training: MAPPO over several environments, TensorBoard curves, evaluation and checkpoints.

The loop reads as CleanRL's: collect a rollout from every env, one PPO update, log, evaluate
now and then, checkpoint. The run folder (:mod:`tapfinger.runs`) receives TensorBoard events,
``checkpoints/latest.pt`` and ``best.pt`` (atomic writes, :mod:`tapfinger.checkpoint`) and
``summary.json``. Training episodes draw their seeds from ``TRAIN_SEED_BASE`` upwards, far from
the evaluation seeds (``evaluate.py`` uses 0.., periodic evaluation ``train.eval_seed``..), so a
policy is never evaluated on an arrival trace it was trained on.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from envs.edge_cluster_v0 import EdgeClusterEnv
from envs.scenario import ScenarioConfig
from tapfinger.algorithms.bc import behaviour_cloning
from tapfinger.algorithms.mappo import Rollout, RunningNorm, ppo_update
from tapfinger.checkpoint import build_network
from tapfinger.collectors import Collected, InlineCollector, ProcessCollector, RolloutWorker
from tapfinger.config import ExperimentConfig, hparam_table
from tapfinger.eval_types import TRAIN_SEED_BASE
from tapfinger.memory import release_free_memory
from tapfinger.playing import play_episode, ready_policy, warm_state
from tapfinger.policies import make_policy, policy_entry
from tapfinger.ray_collector import RayCollector
from tapfinger.statistics import mean_summary
from tapfinger.training_log import log_iteration
from tapfinger.training_state import RunState

#: Offset of the rollout workers' seed streams from the run's first training seed (the warm
#: start and in-process collection count up from that first seed, never this far).
WORKER_SEED_OFFSET = 50_000


class Trainer(RunState):
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
        # An oracle teacher reads the oracle infos; the student reads only what its regime
        # tells it (the observation is the same with or without them, tests/envs/test_information).
        self.envs = [EdgeClusterEnv(teacher_scenario(cfg)) for _ in range(tc.num_envs)]
        self.agents = self.envs[0].possible_agents
        self.net = build_network(self.envs[0], cfg).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=tc.lr, eps=1e-5)
        self.norm = RunningNorm()
        self.global_step = 0
        self.iteration = 0
        self.episodes = 0
        self.bc_env_steps = 0
        self.next_seed = TRAIN_SEED_BASE + tc.seed * 100_000
        self.env_episodes = [0] * tc.num_envs  # episodes begun per env under rollout workers
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
        from torch.utils.tensorboard import SummaryWriter  # heavy: imported only to train

        # Purge only what a crash logged after the checkpoint: the checkpointed step's own
        # scalars (logged just before it was saved) stay.
        self.writer = SummaryWriter(
            str(run_dir), purge_step=self.global_step + 1 if self.global_step else None
        )
        if not resume:
            self.writer.add_text("hyperparameters", hparam_table(cfg))
        self.eval_env = EdgeClusterEnv(cfg.scenario)
        self.baseline_eval: dict[str, dict[str, float]] = {}
        self._teacher_warm: dict[str, Any] | None = None

    # ------------------------------------------------------------------ rollouts
    def _take_seed(self) -> int:
        """The seed of the next training episode (every training env and teacher draws here)."""
        self.next_seed += 1
        return self.next_seed - 1

    def _collector(self) -> InlineCollector | ProcessCollector:
        """The rollout collector of ``train.rollout_workers`` (0: in this process)."""
        tc = self.cfg.train
        if tc.rollout_workers == 0:
            worker = RolloutWorker(
                self.envs, self.net, self.cfg, lambda _env: self._take_seed(), self.device
            )
            return InlineCollector(worker)
        args = (self.cfg, teacher_scenario(self.cfg), tc.rollout_workers)
        seed_start = TRAIN_SEED_BASE + tc.seed * 100_000 + WORKER_SEED_OFFSET
        if tc.ray_address is not None:
            address = None if tc.ray_address == "local" else tc.ray_address
            return RayCollector(*args, seed_start, self.env_episodes, address=address)
        return ProcessCollector(*args, seed_start=seed_start, episodes=self.env_episodes)

    def _progress(self, ahead: int = 0) -> float:
        """Training progress (global step, plus ``ahead`` steps, over total steps)."""
        return (self.global_step + ahead) / max(1, self.cfg.train.total_steps)

    def collect(self, collector: InlineCollector | ProcessCollector) -> Collected:
        """One rollout from every env with the current network (sampling).

        Under ``train.overlap`` the rollout was submitted one iteration earlier (the first one
        now), and the next one is submitted before returning, with the current weights."""
        self.net.eval()
        if not self.cfg.train.overlap:
            col = collector.collect(
                self.net, self.norm.mean, self.norm.std, self.iteration, self._progress()
            )
        else:
            assert isinstance(collector, ProcessCollector)
            if not collector.pending:
                collector.submit(
                    self.net, self.norm.mean, self.norm.std, self.iteration, self._progress()
                )
            col = collector.receive()
            if self.global_step + col.steps < self.cfg.train.total_steps:
                ahead = self._progress(col.steps)
                collector.submit(self.net, self.norm.mean, self.norm.std, self.iteration + 1, ahead)
        self.global_step += col.steps
        self.episodes += len(col.finished)
        if isinstance(collector, ProcessCollector):
            self.env_episodes = list(collector.episodes)
        return col

    def update(
        self,
        ro: Rollout,
        last: np.ndarray,
        train_policy: bool = True,
        given: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        """One PPO update on a rollout (critic only while ``train_policy`` is off).

        Returns the loss statistics, the advantages and the returns.
        """
        tc = self.cfg.train
        # GAE on the critic, or the collection's own (whole episodes, input-dependent baseline).
        adv, ret = ro.advantages(last, tc.gamma, tc.gae_lambda) if given is None else given
        if tc.ent_coef_final is not None:
            tc = dataclasses.replace(tc, ent_coef=self.entropy_coefficient())
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

    def entropy_coefficient(self) -> float:
        """The entropy bonus now: ``ent_coef``, or its linear schedule to ``ent_coef_final``
        over the PPO steps (the warm start's steps do not count)."""
        tc = self.cfg.train
        if tc.ent_coef_final is None:
            return tc.ent_coef
        frac = min(1.0, self.global_step / tc.total_steps)
        return tc.ent_coef + frac * (tc.ent_coef_final - tc.ent_coef)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Greedy episodes on the fixed held-out seeds; baselines once, on the same seeds.

        The episodes are played by evaluation's own episode runner, as in ``evaluate.py``.
        """
        tc = self.cfg.train
        seeds = [tc.eval_seed + i for i in range(tc.eval_episodes)]

        def mean_of(policy: Any) -> dict[str, float]:
            return mean_summary([play_episode(self.eval_env, policy, s).summary for s in seeds])

        policy = make_policy("tapfinger", self.eval_env, network=self.net, device=self.device)
        result = {"tapfinger": mean_of(policy)}
        for name in tc.eval_baselines:
            if name not in self.baseline_eval:
                # As evaluate.py plays it: its own scenario (oracle infos, elastic variant) and
                # the warm state of a learning baseline.
                env, baseline = ready_policy(name, self.cfg.scenario)
                self.baseline_eval[name] = mean_summary(
                    [play_episode(env, baseline, s).summary for s in seeds]
                )
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
        """Warm start (fresh runs), then PPO iterations until ``train.total_steps``."""
        tc = self.cfg.train
        self._t0 = time.perf_counter()
        if self.global_step == 0 and tc.bc_steps > 0:
            self._warm_start()
        collector = self._collector()
        collector.start()
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
        try:
            sps = self._loop(collector, bar, next_eval, next_keep)
        finally:
            collector.close()
        bar.close()
        self.writer.flush()
        summary = self._summary(sps)
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.writer.close()
        return summary

    def _loop(self, collector, bar, next_eval: int, next_keep: int | None) -> float:
        """PPO iterations until the budget; returns the last iteration's steps per second."""
        tc = self.cfg.train
        sps = 0.0
        while self.global_step < tc.total_steps:
            t_iter = time.perf_counter()
            step0 = self.global_step
            col = self.collect(collector)
            stats, adv, ret = self.update(
                col.rollout,
                col.last_value,
                self.iteration >= tc.critic_warmup,
                given=None if col.advantages is None else (col.advantages, col.returns),
            )
            self.iteration += 1
            sps = (self.global_step - step0) / (time.perf_counter() - t_iter)
            self._log(stats, col.rollout, adv, ret, col.finished, sps)
            del col, adv, ret
            release_free_memory()
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
        return sps

    def _warm_start(self) -> None:
        """Behaviour cloning from ``train.bc_policy`` (DESIGN §5.3.1), then an evaluation."""
        tc = self.cfg.train
        self.bc_env_steps += behaviour_cloning(
            self.net,
            self.optimizer,
            self.envs,
            [self._teacher(env) for env in self.envs],
            tc,
            bayes=self.cfg.model.bayes,
            device=self.device,
            rng=self.rng,
            next_seed=self._take_seed,
            log=self.writer.add_scalar,
        )
        self.save("warm_start.pt")  # what PPO starts from: its own gain is measured against it
        self._evaluate_and_keep_best()

    def _teacher(self, env: EdgeClusterEnv) -> Any:
        """The warm start's teacher on ``env``, from its warm state (a learning baseline)."""
        name = self.cfg.train.bc_policy
        teacher = make_policy(name, env)
        if hasattr(teacher, "set_warm_state"):
            if self._teacher_warm is None:
                self._teacher_warm = {"state": warm_state(name, self.cfg.scenario, None)}
            teacher.set_warm_state(self._teacher_warm["state"])
        return teacher

    def _summary(self, sps: float) -> dict[str, Any]:
        """What ``summary.json`` says of the run."""
        return {
            "experiment": self.run_dir.name,
            "scenario": self.cfg.scenario.name,
            "seed": self.cfg.train.seed,
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

    def _log(self, stats, ro: Rollout, adv, ret, finished: list[dict], sps: float) -> None:
        charts = {
            "SPS": sps,
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "ent_coef": self.entropy_coefficient(),
        }
        log_iteration(self.writer, self.global_step, stats, ro, ret, finished, charts)


def teacher_scenario(cfg: ExperimentConfig) -> ScenarioConfig:
    """The training envs' scenario: with the oracle infos when the warm start's teacher reads
    them (nothing else changes; the student never reads them)."""
    tc = cfg.train
    if tc.bc_steps > 0 and tc.bc_policy and policy_entry(tc.bc_policy).oracle_under(cfg.scenario):
        return dataclasses.replace(cfg.scenario, oracle_infos=True)
    return cfg.scenario
