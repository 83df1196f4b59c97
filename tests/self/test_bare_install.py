"""The suite with only numpy and pytest installed: it runs, the numpy adapter passes, every framework
shows as not installed (with its import error), never as passed."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bare_install_runs_through_the_numpy_adapter(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", str(REPO)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(py), "-m", "pip", "list"], capture_output=True, text=True).stdout.lower()
    assert not any(f"\n{name} " in listed for name in ("torch", "jax", "keras", "pytest-xdist"))
    out = tmp_path / "out"
    run = subprocess.run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--report-dir={out}"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    cells = json.loads((out / "results.json").read_text())["cells"]
    outcomes = Counter((c["adapter"], c["outcome"]) for c in cells)
    assert {o for (a, o) in outcomes if a == "numpy"} == {"pass"}
    assert {o for (a, o) in outcomes if a != "numpy"} == {"not_installed"}
    assert all("No module named" in c["message"] for c in cells if c["outcome"] == "not_installed")
