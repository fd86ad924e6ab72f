"""evaluate.py: compare policies on the same episodes; a thin CLI over tapfinger.evaluation.

Example:
    python evaluate.py --config configs/paper_synthetic.yaml --policies all --episodes 20 \\
        --out results/paper_synthetic

Writes ``results.json``, ``results.csv``, ``episodes.csv``, ``report.md`` and PNG plots into the
output folder (see the README's section "Evaluation (`evaluate.py`)"), prints the table and the
wall time. Bad input prints one line ``error: ...`` to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from envs.errors import InputError
from tapfinger.cli import OneLineParser, add_set_argument, error_line


def build_parser() -> argparse.ArgumentParser:
    """The command line of evaluate.py."""
    p = OneLineParser(
        prog="evaluate.py",
        description="Evaluate policies on the same episodes: table, report, plots.",
    )
    p.add_argument("--config", required=True, help="experiment YAML (or a preset name)")
    p.add_argument(
        "--policies",
        help="comma-separated policy names, or 'all' (default: the config's eval.policies)",
    )
    p.add_argument("--episodes", type=int, help="episodes per policy (default: eval.episodes)")
    p.add_argument("--seed", type=int, help="first seed; episode i uses seed + i (eval.seed)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--trace", help="trace file replayed in every episode instead of generating")
    add_set_argument(p)
    p.add_argument("--checkpoint", help="checkpoint for learned policies (e.g. tapfinger)")
    p.add_argument(
        "--elastic-checkpoint",
        help="checkpoint of an elastic-mode training, evaluated as tapfinger@elastic on the "
        "same arrivals (added to --policies)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="play the episodes as Ray tasks: a local Ray, or the cluster at ADDRESS "
        "(e.g. ray://head:10001; needs the ray extra)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace results already in the output folder"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or an argument error already printed as one line
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from tqdm import tqdm

    from tapfinger.eval_types import OUTPUT_FILES, EpisodeFailed, EpisodeResult
    from tapfinger.evaluation import check_output_dir, evaluate, resolve_request
    from tapfinger.reports import markdown_table, write_outputs

    start = time.perf_counter()
    try:
        request = resolve_request(
            args.config,
            overrides=args.overrides,
            policies=args.policies,
            episodes=args.episodes,
            seed=args.seed,
            trace=args.trace,
            checkpoint=args.checkpoint,
            workers=args.workers,
            elastic_checkpoint=args.elastic_checkpoint,
            ray_address=args.ray,
        )
        out = check_output_dir(args.out, args.overwrite)
        try:  # fail now, not after the episodes, when the folder cannot be made
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {args.out}: {exc.strerror}") from None
        total = len(request.policies) * len(request.seeds)
        with tqdm(total=total, unit="episode", disable=None, file=sys.stderr) as bar:

            def progress(result: EpisodeResult) -> None:
                bar.set_postfix_str(result.policy, refresh=False)
                bar.update()

            evaluation = evaluate(request, on_episode=progress)
        write_outputs(out, evaluation)
    except InputError as exc:
        return error_line(exc)
    except EpisodeFailed as exc:  # not bad input: the run failed (exit 1), with its seed
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(markdown_table(evaluation.results))
    best = evaluation.results["best_baseline"]
    print(f"\nbest baseline: {best if best else 'n/a'}")
    for note in evaluation.results["notes"]:
        print(f"note: {note}")
    print(f"wrote {out}/ ({', '.join(OUTPUT_FILES)})")
    print(
        f"wall time: {time.perf_counter() - start:.1f} s "
        f"({len(request.policies)} polic{'ies' if len(request.policies) > 1 else 'y'} x "
        f"{len(request.seeds)} episodes, "
        + (
            f"on Ray ({request.ray_address}))"
            if request.ray_address
            else f"{request.workers} worker{'s' if request.workers > 1 else ''})"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
