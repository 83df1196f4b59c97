#!/usr/bin/env bash
# The main job: every golden case through every installed adapter; writes reports/out/.
set -euo pipefail
python -m pytest -n auto "$@"
