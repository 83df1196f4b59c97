#!/usr/bin/env bash
# The compiled execution paths, too slow for the main job (README "Execution paths"): torch's modules under
# torch.compile (inductor) and exported to ONNX (torch[onnx]), Keras's tensorflow backend under tf.function with
# and without XLA.  Its own report in reports/out-compiled/; inductor's cache and the exported graphs in the
# cache directory.
set -euo pipefail
cd "$(dirname "$0")/.."  # the checkout: its pyproject.toml makes the run a normconf run
python -m pytest -n auto -p no:randomly --frameworks=compiled --report-dir=reports/out-compiled "$@"
