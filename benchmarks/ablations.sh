#!/usr/bin/env bash
# The ablations of issue 12 (DESIGN 5.3.1), each over several training seeds, under the default
# information regime, with the curriculum recipe of benchmarks/rl_levers.sh (variant
# inputbase_lr_curr) at a reduced budget (env BC_STEPS, STEPS) so that the grid fits an afternoon
# on 2 cores. Per (preset, seed) and setting:
# 1. runs/ablations/<preset>_s<k>/<arch>/warm: the warm start (DAgger from the oracle SJF), one
#    per network architecture: full, mlp (no graph network), nopointer, multi (multi-task mode);
# 2. runs/ablations/<preset>_s<k>/<setting>/ppo: PPO from that warm start (train.init_from).
#    nobayes and the critic settings (mappo_gae, ippo_gae) reuse full's warm start: behaviour
#    cloning never trains the critic, and the Bayes rule only resolves conflicts while acting.
#    With the input-dependent baseline (the recipe) the critic does not enter the advantages, so
#    MAPPO vs IPPO is compared under GAE on the critic (train.same_arrivals=1, a critic warm-up);
# 3. each warm start and each PPO run's best.pt (chosen by the held-out seeds, 10,000 up) is
#    played once on the 20 test seeds (0-19) into its eval/.
# Table: python benchmarks/ablation_table.py results/<preset> runs/ablations/<preset>_s1 ...
# Serial and resumable: a finished run (summary.json) is skipped, a cut-off one resumes.
# Usage: benchmarks/ablations.sh [preset ...]  (env: SEEDS="1 2 3", SETTINGS="full mlp ...",
#        BC_STEPS=200, STEPS=40000, CURRICULUM="[48,96,192]")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"1 2 3"}
PRESETS=${*:-"paper_synthetic"}
SETTINGS=${SETTINGS:-"full mlp nopointer nobayes multi mappo_gae ippo_gae"}
BC_STEPS=${BC_STEPS:-200}
STEPS=${STEPS:-40000}
CURRICULUM=${CURRICULUM:-"[48,96,192]"}
FAST=(--set train.rollout_workers=1 --set train.overlap=true)
# shellcheck source=benchmarks/train_runs.sh
source benchmarks/train_runs.sh

arch() {  # the warm start a setting starts from
  case $1 in
    nobayes|mappo_gae|ippo_gae) echo full ;;
    *) echo "$1" ;;
  esac
}

arch_args() {  # what a network architecture changes (warm start and PPO)
  case $1 in
    full) echo "" ;;
    mlp) echo "--set model.backbone=mlp" ;;
    nopointer) echo "--set model.pointer=false" ;;
    multi) echo "--set scenario.mode=multi" ;;
    *) echo "unknown architecture $1" >&2; exit 2 ;;
  esac
}

ppo_args() {  # what a setting's PPO changes against the recipe
  local recipe="--set train.same_arrivals=4 --set train.critic_warmup=0 --set train.lr=1.0e-4"
  recipe="$recipe --set train.curriculum_tasks=$CURRICULUM"
  case $1 in
    full|mlp|nopointer|multi) echo "$recipe $(arch_args "$1")" ;;
    nobayes) echo "$recipe --set model.bayes=false" ;;
    mappo_gae|ippo_gae)
      local critic=central
      [[ $1 == ippo_gae ]] && critic=local
      echo "--set train.same_arrivals=1 --set train.critic_warmup=10 --set train.lr=1.0e-4" \
        "--set train.curriculum_tasks=$CURRICULUM --set model.critic=$critic" ;;
    *) echo "unknown setting $1" >&2; exit 2 ;;
  esac
}

for preset in $PRESETS; do
  for setting in $SETTINGS; do
    a=$(arch "$setting")
    for seed in $SEEDS; do
      base="runs/ablations/${preset}_s${seed}"
      # shellcheck disable=SC2046
      run "$base/$a/warm" --config "configs/${preset}.yaml" --set "train.seed=${seed}" \
        --set "train.bc_steps=${BC_STEPS}" --set train.bc_policy=sjf --set train.total_steps=1 \
        --set train.eval_every=1000000 "${FAST[@]}" $(arch_args "$a")
      evaluate "$base/$a/warm" "$base/$a/warm/checkpoints/warm_start.pt"
      # shellcheck disable=SC2046
      run "$base/$setting/ppo" --config "configs/${preset}.yaml" --set "train.seed=${seed}" \
        --set train.bc_steps=0 --set "train.init_from=$base/$a/warm/checkpoints/warm_start.pt" \
        --set "train.total_steps=${STEPS}" --set train.eval_every=10000 "${FAST[@]}" \
        $(ppo_args "$setting")
      evaluate "$base/$setting/ppo" "$base/$setting/ppo/checkpoints/best.pt"
    done
  done
done
