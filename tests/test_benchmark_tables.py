"""benchmarks/ablation_table.py on hand-made evaluations: the figures it prints are the paired
means over training seeds computed by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load_table():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("ablation_table", BENCH / "ablation_table.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def write_eval(folder: Path, policy: str, jcts: list[float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["policy,seed,mean_jct"] + [f"{policy},{s},{j}" for s, j in enumerate(jcts)]
    (folder / "episodes.csv").write_text("\n".join(lines) + "\n")


def setting_row(out: str, setting: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(f"| {setting} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_ablation_table_pairs_seed_means(tmp_path, capsys):
    main_dir = tmp_path / "results"
    write_eval(main_dir, "optimus@elastic", [10.0, 10.0, 10.0, 10.0])
    (main_dir / "results.json").write_text(
        json.dumps({"scenario": "toy", "best_baseline": "optimus@elastic"})
    )
    seeds = [tmp_path / "s1", tmp_path / "s2"]
    # full: warm 9 then 8 (seed 1) and 7 (seed 2): seed mean 7.5, RL gain -1.5 on every episode.
    write_eval(seeds[0] / "full/warm/eval", "tapfinger", [9.0] * 4)
    write_eval(seeds[1] / "full/warm/eval", "tapfinger", [9.0] * 4)
    write_eval(seeds[0] / "full/ppo/eval", "tapfinger", [8.0] * 4)
    write_eval(seeds[1] / "full/ppo/eval", "tapfinger", [7.0] * 4)
    # nobayes reuses full's warm start; after PPO 9 and 10: seed mean 9.5, +2 vs full.
    write_eval(seeds[0] / "nobayes/ppo/eval", "tapfinger", [9.0] * 4)
    write_eval(seeds[1] / "nobayes/ppo/eval", "tapfinger", [10.0] * 4)
    # mlp is evaluated on one seed only: left out, and named.
    write_eval(seeds[0] / "mlp/warm/eval", "tapfinger", [9.0] * 4)
    write_eval(seeds[0] / "mlp/ppo/eval", "tapfinger", [9.0] * 4)
    table = load_table()
    assert table.main([str(main_dir)] + [str(s) for s in seeds]) == 0
    out = capsys.readouterr().out
    full = setting_row(out, "full")
    assert full[1] == "9.00" and full[2].startswith("7.50")
    assert full[3] == "—"
    assert full[4].startswith("-2.50") and "(-25.0%)" in full[4]
    assert full[5].startswith("-1.50") and "(-16.7%)" in full[5]
    assert full[6] == "2 of 2"
    nobayes = setting_row(out, "nobayes")
    assert nobayes[1] == "9.00" and nobayes[2].startswith("9.50")
    assert nobayes[3].startswith("+2.00") and "(+26.7%)" in nobayes[3]
    assert nobayes[6] == "0 of 2"
    assert "| mlp |" not in out and "mlp" in out.splitlines()[-1]


def test_ablation_table_refuses_other_seeds(tmp_path):
    main_dir = tmp_path / "results"
    write_eval(main_dir, "fifo", [10.0, 10.0])
    (main_dir / "results.json").write_text(json.dumps({"scenario": "toy", "best_baseline": "fifo"}))
    write_eval(tmp_path / "s1/full/warm/eval", "tapfinger", [9.0] * 3)
    write_eval(tmp_path / "s1/full/ppo/eval", "tapfinger", [8.0] * 3)
    with pytest.raises(SystemExit, match="other seeds"):
        load_table().main([str(main_dir), str(tmp_path / "s1")])
