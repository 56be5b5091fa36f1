#!/usr/bin/env bash
# Evaluate:  bash scripts/test.sh CONFIG CHECKPOINT [NUM_PROCS] [--hostfile FILE] [--eval mIoU mDice mFscore] [--aug-test] [--show-dir DIR] [--cfg-options k=v ...]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2p' "$0"; exit 2; }
CONFIG=$1; CKPT=$2; shift 2
NPROCS=1
if [ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then NPROCS=$1; shift; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
(cd "$REPO" && source scripts/setup_env.sh) >&2
source "$REPO/scripts/launch.sh"
launch "$NPROCS" jseg.tools.test "$CONFIG" "$CKPT" "$@"
