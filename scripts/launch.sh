#!/usr/bin/env bash
# Sourced by train.sh / test.sh:  launch NPROCS MODULE [ARGS...]  runs "$PY -m MODULE ARGS" on NPROCS
# processes, through Open MPI when NPROCS > 1 or when mpirun options are given:
#   --hostfile FILE (anywhere in ARGS)  the nodes and their slots (Open MPI hostfile: "node1 slots=8")
#   MPI_ARGS="..."                      more mpirun options, split on spaces (e.g. "--map-by ppr:8:node")
# Each rank then uses the GPU of its local rank (jseg/_env.py).  On several nodes the project, its Python
# and the data must be at the same paths on every node; the variables listed in FORWARD below are
# passed to the remote ranks.
FORWARD=(PYTHONPATH JITTOR_HOME use_tensorcore use_cuda log_silent cc_flags nvcc_path use_mkl
         JSEG_GPU_SHARE JSEG_RANK_GPU JSEG_DEBUG CUDA_VISIBLE_DEVICES)
launch() {
  local nprocs=$1 module=$2; shift 2
  local hostfile="" args=()
  while [ $# -gt 0 ]; do
    case $1 in
      --hostfile) [ $# -ge 2 ] || { echo "--hostfile needs a file name" >&2; exit 2; }; hostfile=$2; shift 2 ;;
      --hostfile=*) hostfile=${1#*=}; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  if [ -n "$hostfile" ] && [ ! -r "$hostfile" ]; then
    echo "--hostfile $hostfile: no such readable file (expected lines like 'node1 slots=8')" >&2; exit 2
  fi
  if [ "$nprocs" -le 1 ] && [ -z "$hostfile" ] && [ -z "${MPI_ARGS:-}" ]; then
    exec "$PY" -m "$module" "${args[@]}"
  fi
  command -v mpirun >/dev/null 2>&1 || { echo "mpirun not found: apt-get install openmpi-bin libopenmpi-dev" >&2; exit 1; }
  local flags=(-np "$nprocs")
  [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
  if [ -n "$hostfile" ]; then
    flags+=(--hostfile "$hostfile")
  elif [ "$nprocs" -gt "$(nproc)" ]; then
    flags+=(--oversubscribe)
  fi
  local name
  for name in "${FORWARD[@]}"; do
    [ -n "${!name+x}" ] && flags+=(-x "$name")
  done
  local extra=()
  read -r -a extra <<<"${MPI_ARGS:-}"
  exec mpirun "${flags[@]}" "${extra[@]}" "$PY" -m "$module" "${args[@]}"
}
