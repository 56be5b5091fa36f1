#!/usr/bin/env bash
# Sourced by run_tests.sh / train.sh / test.sh: install what is missing, then warm Jittor.
# On a fresh machine: system packages (as root with apt: libdnnl-dev for fast CPU convs,
# Open MPI for multi-process), the Python dependencies, jseg in editable mode; then one
# `import jseg` until Jittor has compiled its core (the first import can exit early
# with "jit_utils updated, please rerun").  Expects REPO and PY to be set.
log() { echo "[jseg setup] $*"; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  pkgs=()
  dpkg -s libdnnl-dev >/dev/null 2>&1 || pkgs+=(libdnnl-dev)
  command -v mpirun >/dev/null 2>&1 || pkgs+=(openmpi-bin)
  dpkg -s libopenmpi-dev >/dev/null 2>&1 || pkgs+=(libopenmpi-dev)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "apt-get install ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
fi

# Python dependencies: pip only if something is missing or at the wrong version (works offline when warm).
if ! (cd / && "$PY" - <<'PYEOF'
import importlib.metadata as md, sys
def ver(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
ok = ver("jittor") == "1.3.11.0" and (ver("numpy") or "9").split(".")[0] == "1" \
    and ver("pillow") and ver("pyyaml") and ver("pytest") and ver("scipy") \
    and (ver("opencv-python") or ver("opencv-python-headless"))
sys.exit(0 if ok else 1)
PYEOF
); then
  log "pip install dependencies"
  # pytest, scipy: tests only (scipy: an independent .mat writer for the SBD converter's reader)
  "$PY" -m pip install -q "jittor==1.3.11.0" "numpy<2" pillow "opencv-python>=4.5,<4.12" pyyaml pytest scipy
fi

# jseg itself, editable, from this checkout.
if ! (cd / && "$PY" -c "import importlib.util as u, os, sys; s = u.find_spec('jseg'); \
sys.exit(0 if s and os.path.realpath(os.path.dirname(s.origin)) == os.path.realpath('$REPO/jseg') else 1)" 2>/dev/null); then
  log "pip install -e . (jseg from $REPO)"
  "$PY" -m pip install -q --no-deps --no-build-isolation -e "$REPO"
fi

log "warming Jittor (the first run compiles its core: 2-4 minutes)"
ready=0
for attempt in 1 2 3; do
  if out=$(cd / && "$PY" -c "import jseg; print('JSEG_READY')" 2>&1) && grep -q JSEG_READY <<<"$out"; then
    ready=1
    break
  fi
  log "import attempt $attempt did not finish; retrying"
  tail -n 5 <<<"$out"
done
if [ $ready != 1 ]; then
  log "ERROR: 'import jseg' failed:"
  echo "$out"
  exit 1
fi

