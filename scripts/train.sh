#!/usr/bin/env bash
# Train:  bash scripts/train.sh CONFIG [NUM_PROCS] [--hostfile FILE] [--work-dir DIR] [--seed N] [--resume CKPT] [--cfg-options k=v ...]
# NUM_PROCS > 1 runs under Open MPI (the config's batch_size is the global batch); --hostfile FILE and
# MPI_ARGS="..." (extra mpirun options) for several nodes: see scripts/launch.sh and README "GPU".
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,4p' "$0"; exit 2; }
CONFIG=$1; shift
NPROCS=1
if [ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then NPROCS=$1; shift; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
(cd "$REPO" && source scripts/setup_env.sh) >&2
source "$REPO/scripts/launch.sh"
launch "$NPROCS" jseg.tools.train "$CONFIG" "$@"
