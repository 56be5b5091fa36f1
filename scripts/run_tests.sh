#!/usr/bin/env bash
# Install what is missing, warm Jittor's compile cache, run the test suite.
#   bash scripts/run_tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
source scripts/setup_env.sh
exec "$PY" -m pytest tests -ra "$@"
