"""A plain (non-editable) install carries the presets: ``pip install`` + a preset name works."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_presets_and_an_installed_copy_loads_them(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = wheels.glob("tapfinger-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {p.name for p in (ROOT / "envs" / "presets").glob("*.yaml")}
    assert presets and {f"envs/presets/{p}" for p in presets} <= names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    code = (
        "import envs; from envs import edge_cluster_v0 as e, preset_names;"
        "env = e.parallel_env('quickstart'); env.reset(seed=0);"
        "print(envs.__file__); print(','.join(preset_names()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    where, listed = run.stdout.strip().splitlines()
    assert where.startswith(str(target))  # the installed copy, not the checkout
    assert set(listed.split(",")) >= {"quickstart", "paper_synthetic", "testbed"}
