#!/usr/bin/env bash
# Train the CPU-recipe pilots (docs/cpu_recipe.md), two at a time, one thread each. Every pilot stops
# by itself when its train.cpu_budget_hours is spent; running this again continues unfinished pilots
# (--auto_resume) and leaves finished ones alone. Logs: experiments/pilot_logs/<name>.out
#   bash scripts/cpu_recipe/run_pilots.sh [PARALLEL]     # default 2 (one per core)
# Then: python scripts/cpu_recipe/score_runs.py --runs 'experiments/train_GIMSANet_Pilot_*' --out docs/cpu_recipe/pilots.csv
set -euo pipefail
cd "$(dirname "$0")/../.."
parallel="${1:-2}"
mkdir -p experiments/pilot_logs
ls options/train/GIMSANet/pilots/train_GIMSANet_Pilot_*.yml | xargs -P "$parallel" -I{} bash -c '
    name="$(basename "{}" .yml)"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 basicsr train -opt "{}" --auto_resume > "experiments/pilot_logs/$name.out" 2>&1 \
        && echo "finished $name" || echo "FAILED $name (see experiments/pilot_logs/$name.out)"'
