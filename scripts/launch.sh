#!/usr/bin/env bash
# Sourced by train.sh / test.sh: run "$PY -m MODULE ARGS" on NPROCS processes (Open MPI when > 1).
launch() {
  local nprocs=$1; shift
  if [ "$nprocs" -le 1 ]; then
    exec "$PY" -m "$@"
  fi
  command -v mpirun >/dev/null 2>&1 || { echo "mpirun not found: apt-get install openmpi-bin libopenmpi-dev" >&2; exit 1; }
  local flags=()
  [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
  [ "$nprocs" -gt "$(nproc)" ] && flags+=(--oversubscribe)
  exec mpirun "${flags[@]}" -np "$nprocs" -x PYTHONPATH "$PY" -m "$@"
}
