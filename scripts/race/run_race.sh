#!/usr/bin/env bash
# Train the four entrants of the same-budget race (docs/race.md) side by side, one thread each.
# Each run stops by itself after train.cpu_budget_hours of its own CPU time; running this script
# again continues unfinished runs (--auto_resume) and leaves finished ones as they are.
#   bash scripts/race/run_race.sh            # all four, in the background; logs in experiments/race_logs/
#   bash scripts/race/run_race.sh GIMSANet   # only the entrants whose option name contains GIMSANet
# Then score them: python scripts/race/score_race.py
set -euo pipefail
cd "$(dirname "$0")/../.."
filter="${1:-}"
mkdir -p experiments/race_logs
for opt in options/train/Race/train_*_Race_PackagePhotos.yml; do
    name="$(basename "$opt" .yml)"
    [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
    # one thread: CPU time = core time, and runs sharing the machine do not change each other's count
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup basicsr train -opt "$opt" --auto_resume \
        > "experiments/race_logs/$name.out" 2>&1 &
    echo "started $name (pid $!), log experiments/race_logs/$name.out"
done
