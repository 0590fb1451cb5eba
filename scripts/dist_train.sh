#!/usr/bin/env bash
# Distributed training with torchrun, on one machine or several.
#
#   scripts/dist_train.sh NPROC OPT.yml [extra basicsr train arguments, e.g. --auto_resume]
#
# NPROC processes on this machine (one per GPU; on a CPU-only machine they train with gloo). The
# backend follows the device (NCCL on GPUs, gloo on CPU) unless `dist_params.backend` in OPT.yml says
# otherwise. Environment:
#   PORT            this machine's rendezvous port (default: a free one)
#   PYTHON          the interpreter (default: python)
#   MAX_RESTARTS    torchrun --max-restarts (default 0): a restarted group resumes by itself
# Several machines (the same command on every node, e.g. 2 nodes):
#   NNODES=2 RDZV_ENDPOINT=HOST:29400 scripts/dist_train.sh 8 OPT.yml
#   RDZV_ENDPOINT   HOST:PORT that every node reaches (c10d rendezvous; no node ranks needed)
#   RDZV_ID         names the job at the endpoint (default: gimsanet)
#   LOCAL_ADDR      this node's address as the others reach it (default: its host name)
# or with fixed node ranks: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=HOST PORT=29400 (the same PORT on every node)
# See docs/distributed_and_resume.md (the multi-node command there is the one the tests run).
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 NPROC OPT.yml [basicsr train arguments ...]" >&2
    exit 2
fi
NPROC=$1
OPT=$2
shift 2
PYTHON=${PYTHON:-python}
NNODES=${NNODES:-1}

# one OpenMP thread per process unless told otherwise (torchrun would set 1 anyway, with a warning)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

LAUNCH=(--nnodes="$NNODES" --nproc_per_node="$NPROC" --max-restarts="${MAX_RESTARTS:-0}")
if [ -n "${RDZV_ENDPOINT:-}" ]; then
    LAUNCH+=(--rdzv_backend=c10d --rdzv_endpoint="$RDZV_ENDPOINT" --rdzv_id="${RDZV_ID:-gimsanet}")
    if [ -n "${LOCAL_ADDR:-}" ]; then
        LAUNCH+=(--local_addr="$LOCAL_ADDR")
    fi
else  # fixed node ranks (as before): NODE_RANK=0..NNODES-1 and MASTER_ADDR=rank 0's node on every node
    if [ -z "${PORT:-}" ]; then
        PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    LAUNCH+=(--node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT")
fi

exec "$PYTHON" -m torch.distributed.run "${LAUNCH[@]}" -m gimsanet_arch.train -opt "$OPT" --launcher pytorch "$@"
