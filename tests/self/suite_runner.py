"""Run the conformance suite in a subprocess, as a user would, and read its results."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_suite(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 600) -> tuple[int, dict, str]:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pytest", "-q", f"--report-dir={out}", "-p", "no:cacheprovider", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    results_path = out / "results.json"
    data = json.loads(results_path.read_text()) if results_path.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def cells_without_timings(data: dict) -> list[dict]:
    return [{k: v for k, v in c.items() if k != "seconds"} for c in data["cells"]]


def write_plugin(tmp_path: Path, body: str, name: str = "plugin_adapter.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path
