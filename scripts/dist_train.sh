#!/usr/bin/env bash
# Distributed training with torchrun on one machine.
#
#   scripts/dist_train.sh NPROC OPT.yml [extra basicsr train arguments, e.g. --auto_resume]
#
# NPROC processes (one per GPU; on a CPU-only machine they train with gloo). The backend follows
# the device (NCCL on GPUs, gloo on CPU) unless `dist_params.backend` in OPT.yml says otherwise.
# Environment: PORT (default: a free port), PYTHON (default: python), NNODES/NODE_RANK/MASTER_ADDR
# for several machines: see docs/distributed_and_resume.md (torchrun rendezvous) for the details.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 NPROC OPT.yml [basicsr train arguments ...]" >&2
    exit 2
fi
NPROC=$1
OPT=$2
shift 2
PYTHON=${PYTHON:-python}
if [ -z "${PORT:-}" ]; then
    PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}

# one OpenMP thread per process unless told otherwise (torchrun would set 1 anyway, with a warning)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --nproc_per_node="$NPROC" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" \
    -m gimsanet_arch.train -opt "$OPT" --launcher pytorch "$@"
