#!/usr/bin/env bash
# Install senet with its test dependencies into ./.venv (created if missing) and run the test-suite.
# Usage: scripts/test.sh [pytest args...]    e.g. scripts/test.sh -m "not slow" tests/layers
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
senet_env test
# Lint and formatting first: cheap, and a failure here names the file and line.
ruff check src tests benchmarks examples
ruff format --check --quiet src tests benchmarks examples
# One torch thread per xdist worker: two workers on two cores beat one worker with two threads.
export OMP_NUM_THREADS=1
python -m pytest -n "${SENET_TEST_WORKERS:-2}" --durations=15 "$@"
