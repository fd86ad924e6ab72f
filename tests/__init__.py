"""The test suite; mirrors the packages (tests/envs, tests/tapfinger/...)."""

from pathlib import Path

#: The repository root (configs/, the CLIs).
ROOT = Path(__file__).resolve().parents[1]
