"""Run folders: what ``train.py`` does (resolve the config, make or reopen the run, train).

A run lives in ``runs/<experiment>__<seed>__<timestamp>/`` with the resolved ``config.yaml``,
TensorBoard events, ``checkpoints/`` and ``summary.json`` (DESIGN §5.3). An existing run is
never overwritten: ``--run-dir`` refuses a folder that holds one, ``--resume`` continues it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from envs.errors import ConfigError
from tapfinger.config import ExperimentConfig, config_to_dict, load_config
from tapfinger.training import Trainer


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device: '{name}' is not one of auto, cpu, cuda")
    return torch.device(name)


def make_run_dir(cfg: ExperimentConfig, root: str | Path = "runs") -> Path:
    """A new, empty run folder named after the experiment, the seed and the time."""
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
