#!/usr/bin/env bash
# The main job: every golden case through every installed adapter, the mutant kill table, and the
# regression check against the baseline of the pinned versions.  Writes reports/out/.
set -euo pipefail
cd "$(dirname "$0")/.."  # the checkout: its pyproject.toml makes the run a normconf run
# -c: the checkout's ini even when an argument is `--option VALUE` with VALUE outside the checkout (pytest
# reads such a VALUE as a path when it picks its rootdir, before the plugin that knows the option loads)
python -m pytest -c pyproject.toml -n auto --baseline=reports/baselines/pinned.json "$@"
