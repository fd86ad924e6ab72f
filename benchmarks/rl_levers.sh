#!/usr/bin/env bash
# The RL levers of DESIGN 5.3.1, one at a time, from one shared warm start per (preset, seed):
# 1. runs/levers/<preset>_s<k>/warm: the warm start alone (imitation of the teacher; its
#    checkpoints/warm_start.pt is what every PPO variant starts from);
# 2. runs/levers/<preset>_s<k>/<variant>: PPO from that warm start (train.init_from), each
#    variant changing one lever (critic extras, input-dependent baseline on shared arrivals,
#    entropy schedule, longer training), with a critic warm-up first (BC never trains the critic).
# Every best.pt follows the held-out evaluation seeds (train.eval_seed..), never the test seeds;
# the test seeds (0-19) are played once at the end, by evaluate.py, into each run's eval/.
# Table: python benchmarks/levers_table.py results/<preset> runs/levers/<preset>_s<k>
# Serial and resumable: a finished run (summary.json) is skipped, a cut-off one resumes.
# Usage: benchmarks/rl_levers.sh [preset ...]  (env: SEEDS="1 2 3", VARIANTS="plain ...",
#        STEPS=PPO steps per variant, TEACHER=bc_policy, CURRICULUM="[48,96,192]")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"1"}
PRESETS=${*:-"paper_synthetic"}
STEPS=${STEPS:-100000}
VARIANTS=${VARIANTS:-"plain extras inputbase inputbase_ent"}
FAST=(--set train.rollout_workers=1 --set train.overlap=true)
# shellcheck source=benchmarks/train_runs.sh
source benchmarks/train_runs.sh

variant_args() {  # the one lever each variant turns
  case $1 in
    plain) echo "" ;;
    extras) echo "--set model.critic_extras=true" ;;
    # The input-dependent baseline needs no critic for its advantages: no critic warm-up.
    inputbase) echo "--set train.same_arrivals=4 --set train.critic_warmup=0" ;;
    inputbase_ent) echo "--set train.same_arrivals=4 --set train.critic_warmup=0 --set train.ent_coef=0.01 --set train.ent_coef_final=0.0" ;;
    inputbase_lr) echo "--set train.same_arrivals=4 --set train.critic_warmup=0 --set train.lr=1.0e-4" ;;
    # inputbase_lr with a curriculum over episode length (env CURRICULUM, in tasks per episode).
    inputbase_lr_curr) echo "--set train.same_arrivals=4 --set train.critic_warmup=0 --set train.lr=1.0e-4 --set train.curriculum_tasks=${CURRICULUM:-[48,96,192]}" ;;
    # The levers that helped, together, three times longer (the held-out JCT still fell at
    # the end of the entropy-schedule run).
    combined_long) echo "--set train.same_arrivals=4 --set train.critic_warmup=0 --set train.lr=1.0e-4 --set train.ent_coef=0.01 --set train.ent_coef_final=0.0 --set train.total_steps=300000" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

for preset in $PRESETS; do
  teacher=${TEACHER:-sjf}
  for seed in $SEEDS; do
    base="runs/levers/${preset}_s${seed}"
    run "$base/warm" --config "configs/${preset}.yaml" --set "train.seed=${seed}" \
      --set train.bc_steps=400 --set "train.bc_policy=${teacher}" --set train.total_steps=1 \
      --set train.eval_every=1000000 "${FAST[@]}"
    for v in $VARIANTS; do
      # shellcheck disable=SC2046
      run "$base/$v" --config "configs/${preset}.yaml" --set "train.seed=${seed}" \
        --set train.bc_steps=0 --set "train.init_from=$base/warm/checkpoints/warm_start.pt" \
        --set "train.total_steps=${STEPS}" --set train.eval_every=10000 \
        --set train.critic_warmup=10 "${FAST[@]}" $(variant_args "$v")
    done
    evaluate "$base/warm" "$base/warm/checkpoints/warm_start.pt"
    for v in $VARIANTS; do evaluate "$base/$v" "$base/$v/checkpoints/best.pt"; done
  done
done
