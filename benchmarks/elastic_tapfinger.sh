#!/usr/bin/env bash
# Elastic TapFinger: train a policy that may resize and pause its running tasks
# (scenario.elastic=true), warm-started by imitating a preemptive teacher (default the oracle
# srpt, which reads the true work during training only; the student sees the default regime's
# observation), then PPO with the input-dependent baseline; then evaluate it as tapfinger@elastic
# beside the shipped non-elastic checkpoint and every baseline of both modes, on the 20 test
# seeds (results/elastic/<preset>). best.pt follows the held-out seeds only.
# Serial, resumable (a finished run is skipped, a cut-off one resumes).
# Usage: benchmarks/elastic_tapfinger.sh [preset ...]  (env: SEEDS, TEACHER, BC_STEPS, STEPS,
#        LR: the PPO learning rate, default the config's; CURRICULUM="[50,100,200]", default none)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"1"}
PRESETS=${*:-"paper_hetero6"}
TEACHER=${TEACHER:-srpt}
BC_STEPS=${BC_STEPS:-400}
STEPS=${STEPS:-40000}
PPO=()
[[ -n ${LR:-} ]] && PPO+=(--set "train.lr=${LR}")
[[ -n ${CURRICULUM:-} ]] && PPO+=(--set "train.curriculum_tasks=${CURRICULUM}")
# shellcheck source=benchmarks/train_runs.sh
source benchmarks/train_runs.sh

for preset in $PRESETS; do
  for seed in $SEEDS; do
    dir="runs/elastic/${preset}_s${seed}"
    run "$dir" --config "configs/${preset}.yaml" \
      --set scenario.elastic=true --set "train.seed=${seed}" \
      --set "train.bc_policy=${TEACHER}" --set "train.bc_steps=${BC_STEPS}" \
      --set "train.total_steps=${STEPS}" --set train.eval_every=10000 \
      --set train.same_arrivals=4 --set train.critic_warmup=0 \
      --set train.rollout_workers=1 --set train.overlap=true "${PPO[@]}"
    out="results/elastic/${preset}_s${seed}"
    mkdir -p results/elastic
    plain=()  # the shipped non-elastic policy, where there is one
    [[ -f checkpoints/${preset}.pt ]] && plain=(--checkpoint "checkpoints/${preset}.pt")
    if [[ ! -f $out/results.json ]]; then
      "$PY" evaluate.py --config "configs/${preset}.yaml" --policies all "${plain[@]}" \
        --elastic-checkpoint "$dir/checkpoints/best.pt" \
        --episodes 20 --seed 0 --workers 2 --out "$out" > "$out.log" 2>&1 || {
        cat "$out.log"; exit 1; }
    fi
  done
done
