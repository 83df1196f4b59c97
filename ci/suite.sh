#!/usr/bin/env bash
# The main job: every golden case through every installed adapter, the mutant kill table, and the
# regression check against the baseline of the pinned versions.  Writes reports/out/.
set -euo pipefail
python -m pytest -n auto --baseline=reports/baselines/pinned.json "$@"
