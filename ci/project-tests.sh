#!/usr/bin/env bash
# The project's own tests: fixtures unchanged, then the self-tests (reference, fixtures, reports, mutants).
set -euo pipefail
cd "$(dirname "$0")/.."  # the checkout: its pyproject.toml makes the run a normconf run
normconf golden check
python -m pytest -n auto -p no:randomly tests/self "$@"
