"""The demo behind ``make demo``: train the quickstart config briefly, then evaluate against the
baselines in both modes (with the shipped quickstart policy, when ``checkpoints/quickstart.pt``
exists).

Outputs go to ``runs/demo/`` (the demo's own folder, replaced on every run).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    import evaluate
    import train

    steps = os.environ.get("DEMO_STEPS", "8000")
    demo = ROOT / "runs" / "demo"
    if demo.exists():
        shutil.rmtree(demo)
    demo.mkdir(parents=True)
    print(f"== 1/2  training TapFinger on configs/quickstart.yaml for {steps} env steps")
    rc = train.main(
        [
            "--config",
            str(ROOT / "configs" / "quickstart.yaml"),
            "--set",
            f"train.total_steps={steps}",
            "--set",
            f"train.eval_every={steps}",
            "--run-dir",
            str(demo / "train"),
            "--device",
            "cpu",
        ]
    )
    if rc:
        return rc
    shipped = ROOT / "checkpoints" / "quickstart.pt"
    checkpoint = shipped if shipped.exists() else demo / "train" / "checkpoints" / "best.pt"
    which = "the shipped policy" if shipped.exists() else "the policy just trained"
    print(f"\n== 2/2  evaluating {which} ({checkpoint.relative_to(ROOT)}) against the baselines")
    return evaluate.main(
        [
            "--config",
            str(ROOT / "configs" / "quickstart.yaml"),
            "--policies",
            "all",  # every baseline in both modes (NAME@elastic), the oracles, the checkpoint
            "--checkpoint",
            str(checkpoint),
            "--episodes",
            "20",
            "--workers",
            "2",
            "--out",
            str(demo / "eval"),
        ]
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
