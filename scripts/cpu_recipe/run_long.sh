#!/usr/bin/env bash
# Start (or continue, --auto_resume) the long CPU runs of docs/cpu_recipe.md in the background, one
# thread each; every run stops by itself when its train.cpu_budget_hours is spent.
#   bash scripts/cpu_recipe/run_long.sh                    # every option file in options/train/GIMSANet/cpu/
#   bash scripts/cpu_recipe/run_long.sh CBSD432            # only those whose name contains one of the words:
#                                                          # the three colour runs of the gradient comparison
#   bash scripts/cpu_recipe/run_long.sh BSD400             # the gray run (6 CPU-hours; finished, so skipped)
#   EXTRA='--force_yml train:cpu_budget_hours=12' bash scripts/cpu_recipe/run_long.sh NoGrad   # continue to 12 h
#   OPTS_DIR=options/train/GIMSANet/real_noise/cpu bash scripts/cpu_recipe/run_long.sh   # the real-noise runs
# Logs: experiments/cpu_logs/<name>.out. Stop them cleanly (state saved): pkill -TERM -f 'options/train/GIMSANet/cpu/'
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/cpu_logs
for opt in "${OPTS_DIR:-options/train/GIMSANet/cpu}"/train_*.yml; do
    name="$(basename "$opt" .yml)"
    if [[ $# -gt 0 ]]; then
        keep=0; for word in "$@"; do [[ "$name" == *"$word"* ]] && keep=1; done
        [[ $keep == 1 ]] || continue
    fi
    # A finished run keeps its final checkpoint but no training state: --auto_resume would refuse it
    # with an error in the log. Skip it with a line here instead.
    exp="experiments/$name"
    if compgen -G "$exp/models/*.pth" > /dev/null && ! compgen -G "$exp/training_states/*.state" > /dev/null; then
        echo "skipped $name: finished (final checkpoint in $exp/models, no training state to resume)"
        continue
    fi
    # shellcheck disable=SC2086  # EXTRA is a list of arguments
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup basicsr train -opt "$opt" --auto_resume ${EXTRA:-} \
        >> "experiments/cpu_logs/$name.out" 2>&1 &
    echo "started $name (pid $!), log experiments/cpu_logs/$name.out"
done
