#!/usr/bin/env bash
# The project's own tests: fixtures unchanged, then the self-tests (reference, fixtures, reports, mutants).
set -euo pipefail
python -m golden check
python -m pytest -n auto -p no:randomly tests/self "$@"
