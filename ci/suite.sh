#!/usr/bin/env bash
# The main job: every golden case through every installed adapter, the mutant kill table, and the
# regression check against the baseline of the pinned versions.  Writes reports/out/.
set -euo pipefail
cd "$(dirname "$0")/.."  # the checkout: its pyproject.toml makes the run a normconf run
python -m pytest -n auto --baseline=reports/baselines/pinned.json "$@"
