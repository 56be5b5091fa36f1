#!/usr/bin/env bash
# Install what is missing, warm Jittor's compile cache, run the test suite.
#   bash scripts/run_tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
source scripts/setup_env.sh
# test-only: onnx + onnxruntime for the ONNX export tests (pinned below the releases that need NumPy 2)
if ! (cd / && "$PY" -c "import onnx, onnxruntime" 2>/dev/null); then
  echo "[jseg setup] pip install onnx onnxruntime (test dependencies)"
  "$PY" -m pip install -q "onnx>=1.14,<1.18" "onnxruntime>=1.16,<1.21" "numpy<2"
fi
exec "$PY" -m pytest tests -ra "$@"
