# Shared by the training benchmarks (source it after setting PY): resumable train.py runs and
# the one test-seed evaluation of a run's checkpoint.

run() {  # run <run dir> <train.py args...>: skip a finished run, resume a cut-off one
  local dir=$1; shift
  if [[ -f $dir/summary.json ]]; then echo "done: $dir"; return; fi
  if [[ -f $dir/checkpoints/latest.pt ]]; then
    "$PY" train.py --resume "$dir" --no-progress > "$dir.log" 2>&1
  else
    mkdir -p "$(dirname "$dir")"
    "$PY" train.py "$@" --run-dir "$dir" --no-progress > "$dir.log" 2>&1
  fi
  echo "finished: $dir ($(date +%H:%M:%S))"
}

evaluate() {  # evaluate <run dir> <checkpoint>: the 20 test seeds, once, after training
  local dir=$1 ckpt=$2
  if [[ -f $dir/eval/results.json ]]; then return; fi
  "$PY" evaluate.py --config "$dir/config.yaml" --policies tapfinger --checkpoint "$ckpt" \
    --episodes 20 --seed 0 --out "$dir/eval" > "$dir/eval.log" 2>&1
}
