"""Export a trained policy for shipping: a checkpoint without optimizer and RNG state.

``python -m tapfinger.export runs/<run>/checkpoints/best.pt checkpoints/<scenario>.pt`` keeps the
model weights, the config, the shapes and the counters (so the file says how it was trained), and
drops what only resuming needs; the result loads with ``evaluate.py --checkpoint`` but cannot be
resumed. Refuses to overwrite an existing file unless ``--overwrite``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from envs.errors import InputError
from tapfinger.checkpoint import load_checkpoint, save_atomic
from tapfinger.cli import OneLineParser, error_line

SHIPPED_KEYS = ("format", "model", "config", "shapes", "counters", "best_jct", "value_norm")


def export(src: str | Path, dst: str | Path, overwrite: bool = False) -> Path:
    """Write the shippable part of checkpoint ``src`` to ``dst``."""
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise InputError(f"{dst} already exists (use --overwrite to replace it)")
    ckpt = load_checkpoint(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({k: ckpt[k] for k in SHIPPED_KEYS if k in ckpt}, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description="Export a checkpoint for shipping.")
    parser.add_argument("src", help="checkpoint written by train.py")
    parser.add_argument("dst", help="output file, e.g. checkpoints/quickstart.pt")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        path = export(args.src, args.dst, args.overwrite)
    except InputError as exc:
        return error_line(exc)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
