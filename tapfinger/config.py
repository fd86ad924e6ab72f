"""Experiment config: one YAML file holds scenario, model, training and evaluation sections.

Defaults live in these dataclasses (one source of truth, each field with a one-line doc); YAML
files hold overrides; ``--set a.b=value`` overrides on the command line. Unknown keys and wrong
types are errors that name the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.errors import ConfigError
from envs.scenario import CONFIG_DIR, ScenarioConfig, resolve_trace_path
from envs.typed_config import apply_overrides, from_dict, read_yaml, to_dict


@dataclass
class ModelConfig:
    """The TapFinger actor-critic network (DESIGN §5.2)."""

    backbone: Literal["han", "hgt", "mlp"] = "hgt"
    """Graph backbone: HANConv, HGTConv, or ``mlp`` (the no-graph-network ablation)."""
    hidden: int = 64
    """Width of node embeddings and heads."""
    layers: int = 2
    """Graph attention layers."""
    heads: int = 4
    """Attention heads per layer."""
    pointer: bool = True
    """Task selection by the pointer head; false is the no-pointer ablation (uniform choice)."""
    bayes: bool = True
    """Resolve conflicts between agents with the paper's Bayes'-theorem rule."""
    critic: Literal["central", "local"] = "central"
    """Centralised critic on the global state (MAPPO) or local critic (IPPO)."""
    shared_actor: bool = True
    """One actor shared by all agents (true) or one per agent."""
    critic_extras: bool = False
    """The central critic also reads the episode's privileged progress facts (time, tasks and
    work still to arrive and in the system: :mod:`tapfinger.critic_features`); training only,
    the actor never reads them."""
    fused: bool = True
    """HGT computed densely on the padded observations (same parameters and outputs as PyG's
    sparse ``HGTConv``, several times faster); false runs PyG's message passing."""

    def validate(self, prefix: str = "model") -> None:
        for key in ("hidden", "layers", "heads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{prefix}.{key}: must be >= 1")
        if self.hidden % self.heads:
            raise ConfigError(f"{prefix}.hidden: must be a multiple of model.heads")


@dataclass
class TrainConfig:
    """MAPPO training (DESIGN §5.3)."""

    experiment: str = ""
    """Run name prefix; empty uses the scenario name."""
    seed: int = 1
    """Seed of the training run."""
    total_steps: int = 50_000
    """Budget in environment steps (rounds)."""
    num_envs: int = 4
    """Environments per rollout."""
    rollout_steps: int = 256
    """Rounds per environment per rollout."""
    lr: float = 3e-4
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount per slot of simulated time."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip: float = 0.2
    """PPO clip range."""
    epochs: int = 4
    """PPO epochs per rollout."""
    minibatches: int = 4
    """Minibatches per epoch."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient (at the start of PPO, under ``ent_coef_final``)."""
    curriculum_tasks: list[int] = field(default_factory=list)
    """Curriculum over episode length: training episodes play these lengths (``num_tasks``, or
    ``trace_window`` for a replayed trace) in equal shares of ``total_steps``; [] is off."""
    ent_coef_final: float | None = None
    """Entropy schedule: the coefficient goes linearly from ``ent_coef`` at the first PPO
    iteration to this at ``total_steps``; None keeps ``ent_coef`` throughout."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    reward_scale: float = 0.1
    """Rewards are multiplied by this before learning."""
    bc_steps: int = 0
    """Behaviour-cloning updates from ``bc_policy`` before PPO (warm start); 0 turns it off."""
    bc_policy: str = "optimus"
    """Baseline imitated by the warm start (an oracle teacher is allowed: only the teacher reads
    privileged infos, and only during training)."""
    bc_lr: float = 1e-3
    """Learning rate of the warm start (PPO then uses ``lr``)."""
    critic_warmup: int = 0
    """PPO iterations at the start of PPO that train the critic only (the actor is frozen), so
    that a warm-started or ``init_from`` policy meets a fitted critic before its first policy
    update; 0 turns it off."""
    init_from: str = ""
    """Start from this checkpoint's weights (a shipped policy or a run's ``best.pt``) instead of a
    fresh network, e.g. to fine-tune a shipped policy with more PPO; "" starts fresh."""
    eval_every: int = 10_000
    """Greedy evaluation every this many environment steps."""
    eval_episodes: int = 4
    """Held-out episodes per evaluation."""
    eval_seed: int = 10_000
    """First seed of the held-out evaluation episodes (never used for training)."""
    eval_baselines: list[str] = field(default_factory=lambda: ["random", "fifo", "optimus"])
    """Baselines evaluated beside the policy at every evaluation."""
    checkpoint_every: int = 0
    """Keep a numbered checkpoint every this many steps; 0 keeps only latest and best."""
    same_arrivals: int = 1
    """1: fixed-length rollouts and GAE on the critic. K >= 2: every iteration plays one whole
    episode per env, the envs in groups of K on one arrival sequence each, and a step's
    advantage is its return minus the other K - 1 rollouts' returns from the same slot on (the
    input-dependent baseline, :mod:`tapfinger.episode_batches`)."""
    episode_max_steps: int = 20_000
    """With ``same_arrivals >= 2``: rounds at most per episode of an iteration (a guard)."""
    rollout_workers: int = 0
    """Worker processes that collect rollouts at the same time, each with its share of the
    ``num_envs`` environments (one core each); 0 collects in the learner's process."""
    overlap: bool = False
    """With rollout workers: collect the next rollout while the learner updates on this one
    (a policy lag of one iteration; collection and learning each on their own core)."""
    ray_address: str | None = None
    """Run the rollout workers as Ray actors: ``local`` (a local Ray) or a Ray cluster's
    address; None: worker processes on this machine. Needs the ``ray`` extra."""

    def validate(self, prefix: str = "train") -> None:
        if self.ray_address is not None and self.rollout_workers < 1:
            raise ConfigError(f"{prefix}.ray_address: needs train.rollout_workers >= 1")
        if self.rollout_workers > self.num_envs:
            raise ConfigError(
                f"{prefix}.rollout_workers: at most train.num_envs ({self.num_envs}), "
                f"got {self.rollout_workers}"
            )
        if self.same_arrivals < 1:
            raise ConfigError(f"{prefix}.same_arrivals: must be >= 1, got {self.same_arrivals}")
        if self.num_envs % self.same_arrivals:
            raise ConfigError(
                f"{prefix}.same_arrivals: must divide {prefix}.num_envs ({self.num_envs}), "
                f"got {self.same_arrivals}"
            )
        if self.rollout_workers > self.num_envs // self.same_arrivals:
            raise ConfigError(
                f"{prefix}.rollout_workers: at most num_envs / same_arrivals "
                f"({self.num_envs // self.same_arrivals} groups of one arrival sequence), "
                f"got {self.rollout_workers}"
            )
        if self.overlap and self.rollout_workers == 0:
            raise ConfigError(f"{prefix}.overlap: needs {prefix}.rollout_workers >= 1")
        positive = (
            "total_steps",
            "num_envs",
            "rollout_steps",
            "epochs",
            "minibatches",
            "eval_every",
            "eval_episodes",
            "lr",
            "clip",
            "max_grad_norm",
            "reward_scale",
        )
        for key in positive:
            v = getattr(self, key)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"{prefix}.{key}: must be a positive number, got {v!r}")
        if any(n < 1 for n in self.curriculum_tasks):
            raise ConfigError(f"{prefix}.curriculum_tasks: lengths must be >= 1")
        if self.ent_coef_final is not None and not (
            self.ent_coef_final >= 0 and math.isfinite(self.ent_coef_final)
        ):
            raise ConfigError(f"{prefix}.ent_coef_final: must be >= 0, got {self.ent_coef_final!r}")
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{prefix}.{key}: must be in [0, 1]")
        for key in (
            "ent_coef",
            "vf_coef",
            "bc_steps",
            "critic_warmup",
            "checkpoint_every",
            "eval_seed",
            "rollout_workers",
            "episode_max_steps",
        ):
            v = getattr(self, key)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{prefix}.{key}: must be >= 0, got {v!r}")


@dataclass
class EvalConfig:
    """evaluate.py defaults (the CLI flags override them)."""

    policies: list[str] = field(default_factory=lambda: ["random", "min", "fifo", "optimus"])
    """Policies to compare."""
    episodes: int = 20
    """Evaluation episodes (paired: the same traces for every policy)."""
    seed: int = 0
    """First evaluation seed; episode i uses seed + i."""
    bootstrap: int = 2000
    """Bootstrap resamples for the confidence intervals."""
    confidence: float = 0.95
    """Confidence level of the intervals."""


@dataclass
class ExperimentConfig:
    """A whole experiment: the world, the model, training and evaluation."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read an experiment YAML (or a preset name), apply ``key=value`` overrides, validate.

    ``path=None`` is every default; a file that holds no settings (empty, only comments, ``{}``)
    is an error, as is one that is not a YAML mapping or cannot be read as text.
    """
    data: dict = {}
    base = CONFIG_DIR
    if path is not None:
        p = Path(path)
        if not p.exists() and not str(path).endswith((".yaml", ".yml")):
            p = CONFIG_DIR / f"{path}.yaml"
        if not p.exists():
            raise ConfigError(f"config file not found: {path}")
        data = read_yaml(str(p))
        base = p.resolve().parent
    apply_overrides(data, overrides or [])
    cfg = from_dict(ExperimentConfig, data)
    if cfg.scenario.trace is not None:
        cfg.scenario.trace = resolve_trace_path(cfg.scenario.trace, base)
    return cfg


def config_to_dict(cfg: ExperimentConfig) -> dict:
    """Plain dict form (for YAML/JSON outputs)."""
    return to_dict(cfg)


def config_from_dict(data: dict) -> ExperimentConfig:
    """An experiment config from its plain dict form (as stored in checkpoints)."""
    return from_dict(ExperimentConfig, data)


def hparam_table(cfg: ExperimentConfig) -> str:
    """The config (but the scenario's details) as a Markdown table for TensorBoard's text tab."""
    rows = ["|section|key|value|", "|-|-|-|"]
    for section, values in config_to_dict(cfg).items():
        if section == "scenario":
            continue
        rows += [f"|{section}|{k}|{v}|" for k, v in values.items()]
    rows.append(f"|scenario|name|{cfg.scenario.name}|")
    return "\n".join(rows)
