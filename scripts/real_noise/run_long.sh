#!/usr/bin/env bash
# Start (or continue, --auto_resume) the real-noise CPU runs of docs/real_noise.md in the background,
# one thread each (scripts/cpu_recipe/run_long.sh on options/train/GIMSANet/real_noise/cpu/):
#   bash scripts/real_noise/run_long.sh                # every run not finished
#   bash scripts/real_noise/run_long.sh RealCamera     # those whose name contains one of the words
#   EXTRA='--force_yml train:cpu_budget_hours=12' bash scripts/real_noise/run_long.sh NoGrad_RealCamera
# The branch run starts from a file made from the shipped weights (experiments/pretrained_models/, not in
# git): it is made here first (the same weights on every machine), so the check of path.pretrain_network_g
# passes on a new machine too. Stop the runs cleanly (state saved): pkill -TERM -f 'options/train/GIMSANet/real_noise/cpu/'
set -euo pipefail
cd "$(dirname "$0")/../.."
python scripts/real_noise/add_gradient_branch.py
OPTS_DIR=options/train/GIMSANet/real_noise/cpu exec bash scripts/cpu_recipe/run_long.sh "$@"
