#!/usr/bin/env bash
# Retrain the shipped policies, serially, resumable: rerun the script and a run that was cut off
# continues from its latest.pt; a finished run (summary.json) is skipped. Every best.pt is chosen
# by the held-out evaluation seeds (train.eval_seed..) during training, never by the test seeds.
# Usage: benchmarks/retrain_shipped.sh [preset ...]   (default: all shipped presets, seeds 1-3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"1 2 3"}
PRESETS=${*:-"quickstart paper_synthetic testbed paper_hetero6"}

run() {  # run <run dir> <train.py args...>
  local dir=$1; shift
  if [[ -f $dir/summary.json ]]; then echo "done: $dir"; return; fi
  if [[ -f $dir/checkpoints/latest.pt ]]; then
    "$PY" train.py --resume "$dir" --no-progress
  else
    "$PY" train.py "$@" --run-dir "$dir" --no-progress
  fi
}

for preset in $PRESETS; do
  extra=()
  if [[ $preset == quickstart ]]; then
    # The shipped quickstart recipe: the config's PPO from scratch plus an oracle-SJF warm start.
    extra=(--set train.bc_steps=300 --set train.bc_policy=sjf --set train.lr=3.0e-5 --set train.ent_coef=0.0)
  fi
  for seed in $SEEDS; do
    run "runs/${preset}_s${seed}" --config "configs/${preset}.yaml" --set "train.seed=${seed}" "${extra[@]}"
  done
done
