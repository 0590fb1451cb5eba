#!/usr/bin/env bash
# Run the real-noise pilots (options/train/GIMSANet/real_noise/pilots/), two at a time, one thread
# each, in the background; each stops by itself after its 0.25 CPU-hour (--auto_resume continues a
# parked one). Logs: experiments/cpu_logs/<name>.out. Then score them on the hold-out:
#   python scripts/real_noise/score_real.py holdout --runs 'experiments/train_GIMSANet_RealPilot_*' \
#       --out docs/real_noise/pilots.csv
#   bash scripts/real_noise/run_pilots.sh              # every pilot
#   bash scripts/real_noise/run_pilots.sh clip scaled  # those whose name contains one of the words
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/cpu_logs
python scripts/real_noise/add_gradient_branch.py  # the pilots' start (kept if it exists)
opts=()
for opt in options/train/GIMSANet/real_noise/pilots/train_*.yml; do
    name="$(basename "$opt" .yml)"
    if [[ $# -gt 0 ]]; then
        keep=0; for word in "$@"; do [[ "$name" == *"$word"* ]] && keep=1; done
        [[ $keep == 1 ]] || continue
    fi
    opts+=("$opt")
done
printf '%s\n' "${opts[@]}" | OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup xargs -P 2 -I{} \
    sh -c 'basicsr train -opt "$1" --auto_resume >> "experiments/cpu_logs/$(basename "$1" .yml).out" 2>&1' _ {} \
    > /dev/null 2>&1 &
echo "started ${#opts[@]} pilot(s), two at a time (xargs pid $!); logs in experiments/cpu_logs/"
