"""Train TapFinger with MAPPO: ``python train.py --config configs/quickstart.yaml``.

Thin CLI over :mod:`tapfinger.training`; bad input gets one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys

from envs.errors import InputError
from tapfinger.cli import OneLineParser, add_set_argument, error_line


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description="Train TapFinger (MAPPO) on a scenario.")
    parser.add_argument("--config", help="experiment YAML (configs/<name>.yaml) or preset name")
    add_set_argument(parser)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--run-dir", help="run folder (default runs/<experiment>__<seed>__<time>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.config and not args.resume:
        parser.error("one of --config or --resume is required")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from tapfinger.runs import train_main

    try:
        summary = train_main(
            args.config,
            args.overrides,
            device=args.device,
            run_dir=args.run_dir,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except InputError as exc:
        return error_line(exc)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
