#!/usr/bin/env bash
# Check a machine for jseg in one command (at most ~8 minutes on one GPU):
#   bash scripts/gpu_check.sh [--out DIR] [--cpu] [--wheels DIR] [--torch-python PY] [--skip-torch]
# environment, model parity on CUDA (TF32 off), speed fp32/AMP beside PyTorch/mmseg, 2-rank MPI training;
# DIR/report.json and DIR/report.md; exit status 1 if a check failed.  --cpu: the same at tiny sizes on
# the CPU (the script's own smoke test).  Details: python -m jseg.tools.gpu_check --help, README "GPU".
#
# Python: works offline.  If this Python lacks Jittor 1.3.11 or has NumPy 2 (Jittor 1.3.11 needs NumPy 1),
# a virtualenv is made in DIR/venv (seeing this Python's packages, e.g. torch) and the dependencies are
# installed into it from --wheels DIR (pip --no-index), or from PyPI when no folder is given.  Build the
# folder on a machine with internet, for the target's Python version:
#   pip download -d wheels --python-version 3.12 --only-binary=:all: "numpy<2" tqdm astunparse pyyaml pillow wheel \
#       "opencv-python-headless<4.12" pytest setuptools       # 81 MB; OpenCV (50) is optional: training check
#   pip download -d wheels --no-deps jittor==1.3.11.0                         # Jittor is a source package
#   pip download -d wheels --python-version 3.12 --only-binary=:all: mmengine mmsegmentation==1.2.2 \
#       mmcv-lite ftfy regex                                                  # optional: the PyTorch comparison
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
OUT=gpu_check_report WHEELS="" ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --wheels) WHEELS=$(cd "$2" && pwd); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
log() { echo "[gpu_check setup] $*" >&2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ready() {
  (cd / && "$1" - <<'PYEOF'
import importlib.metadata as md, sys
def ver(n):
    try:
        return md.version(n)
    except md.PackageNotFoundError:
        return None
ok = ver("jittor") == "1.3.11.0" and (ver("numpy") or "9").split(".")[0] == "1" and ver("pyyaml") \
    and ver("pillow") and ver("pytest")
sys.exit(0 if ok else 1)
PYEOF
  )
}
if ! ready "$PY"; then
  VENV="$OUT/venv"
  if [ ! -x "$VENV/bin/python" ]; then
    log "making $VENV (NumPy 1 and Jittor 1.3.11 beside this Python's packages)"
    "$PY" -m venv --system-site-packages "$VENV"
  fi
  PY="$VENV/bin/python"
  if ! ready "$PY"; then
    pkgs=("jittor==1.3.11.0" "numpy<2" pyyaml pillow pytest setuptools wheel)
    if [ -n "$WHEELS" ]; then
      log "pip install from $WHEELS (offline)"
      "$PY" -m pip install -q --no-index --find-links "$WHEELS" "${pkgs[@]}"
      # OpenCV (50 MB) is needed by the data pipeline only: without it the training check is skipped
      "$PY" -c "import cv2" 2>/dev/null || "$PY" -m pip install -q --no-index --find-links "$WHEELS" \
        "opencv-python-headless<4.12" 2>/dev/null || log "no OpenCV in $WHEELS: the training check will be skipped"
      # the PyTorch comparison's pure-Python pieces, when the folder has them
      "$PY" -m pip install -q --no-index --find-links "$WHEELS" mmengine "mmsegmentation==1.2.2" mmcv-lite \
        ftfy regex 2>/dev/null || log "mmseg/mmengine/mmcv-lite not in $WHEELS: the PyTorch comparison will be skipped"
    else
      log "pip install ${pkgs[*]} opencv-python-headless"
      "$PY" -m pip install -q "${pkgs[@]}"
      "$PY" -c "import cv2" 2>/dev/null || "$PY" -m pip install -q "opencv-python-headless<4.12"
    fi
  fi
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
log "warming Jittor (its first import compiles its core: 2-4 minutes)"
for attempt in 1 2; do
  if (cd / && "$PY" -c "import jseg; print('JSEG_READY')" 2>&1 | tail -n 3 | grep -q JSEG_READY); then break; fi
  [ $attempt = 2 ] && { log "ERROR: 'import jseg' failed:"; (cd / && "$PY" -c "import jseg") || true; exit 1; }
done
cd "$REPO"
exec "$PY" -m jseg.tools.gpu_check --out "$OUT" --torch-python "$PY" "${ARGS[@]}"
