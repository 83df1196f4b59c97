"""normconf from its wheel, outside the checkout: built here, installed into a fresh virtual environment
that has only numpy and pytest (linked from this environment, offline), and run from an empty directory
through the `normconf` command, through plain pytest, and with a plug-in file of that directory."""
from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# what the fresh environment gets besides the wheel: normconf's own requirements and pytest's
BESIDE = ("numpy", "ml_dtypes", "pytest", "pluggy", "iniconfig", "packaging", "pygments", "hypothesis",
          "sortedcontainers", "attrs")


SOURCES = ("pyproject.toml", "README.md", "normconf", "golden", "adapters", "judge", "reports")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources: setuptools writes build/ beside them, and two xdist workers
    building in the checkout at once would share it."""
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    skip = shutil.ignore_patterns("__pycache__", "history", "baselines", "out", "out-compiled", "*.egg-info")
    for name in SOURCES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, source / name, **(
            {"ignore": skip} if (REPO / name).is_dir() else {}))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(out.glob("normconf-*.whl"))


def _link_distributions(site: Path) -> None:
    """Each distribution of BESIDE, its top-level names and its metadata, linked into `site`."""
    for name in BESIDE:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # pygments: pytest before 8.4 does without; attrs: newer hypothesis does
        base = Path(dist.locate_file(""))
        for top in {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "bin")}:
            source, target = base / top, site / top
            if source.exists() and not target.exists():
                target.symlink_to(source)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, wheel) -> Path:
    """A virtual environment outside the checkout: the wheel installed, numpy and pytest beside it."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    linked = venv / "linked"
    linked.mkdir()
    _link_distributions(linked)
    (site / "beside.pth").write_text(str(linked) + "\n")
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def _in(venv: Path, cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd), "NORMCONF_CACHE_DIR": "off"}
    return subprocess.run([str(venv / "bin" / cmd[0]), *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def test_the_wheels_only_top_level_name_is_normconf(wheel):
    names = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {n for n in names if not n.endswith(".dist-info")} == {"normconf"}
    listed = set(zipfile.ZipFile(wheel).namelist())
    assert "normconf/golden/data/manifest.json" in listed and "normconf/adapters/expectations/numpy.toml" in listed


def _numpy_cells(out: Path) -> Counter:
    data = json.loads((out / "results.json").read_text())
    assert (out / "report.html").is_file()
    return Counter((c["adapter"], c["outcome"]) for c in data["cells"]), data


def test_normconf_run_from_an_empty_directory(fresh, tmp_path):
    proc = _in(fresh, tmp_path, "normconf", "run", "--frameworks=numpy", "--report-dir=out", "-p", "no:randomly", "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    outcomes, data = _numpy_cells(tmp_path / "out")
    assert set(outcomes) == {("numpy", "pass")} and outcomes[("numpy", "pass")] == len(data["cells"]) > 50
    assert data["mutant_summary"]["killed"] == data["mutant_summary"]["total"] > 0
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    # the only skips: mutants that wrap torch, which this environment does not have; none for a missing file
    assert all("wraps a framework that is not installed: torch" in line for line in skips), skips
    import_root = _in(fresh, tmp_path, "python", "-c", "import normconf.golden as g; print(g.__file__)")
    assert str(REPO) not in import_root.stdout and "site-packages" in import_root.stdout


def test_a_plugin_file_of_that_directory_runs_alone(fresh, tmp_path):
    readme = (REPO / "README.md").read_text()
    example = re.search(r"```python\n(import numpy as np\nfrom normconf\.api import DEFAULT\n.*?)```", readme, re.S)
    (tmp_path / "my_ln.py").write_text(example.group(1))
    proc = _in(fresh, tmp_path, "normconf", "run", "--frameworks=my_layernorm", "--adapter=./my_ln.py:MyLayerNorm",
               "--report-dir=out2", "-p", "no:randomly")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    outcomes, _ = _numpy_cells(tmp_path / "out2")
    assert {a for a, _ in outcomes} == {"my_layernorm"} and ("my_layernorm", "pass") in outcomes


def test_plain_pytest_from_another_project(fresh, tmp_path):
    (tmp_path / "test_theirs.py").write_text("def test_their_own():\n    assert True\n")
    theirs = _in(fresh, tmp_path, "python", "-m", "pytest", "-q", "-p", "no:randomly")
    assert theirs.returncode == 0 and "1 passed" in theirs.stdout, theirs.stdout[-2000:]
    assert "normconf" not in theirs.stdout and not (tmp_path / "normconf-out").exists()  # installed, inert
    ours = _in(fresh, tmp_path, "python", "-m", "pytest", "-q", "-p", "no:randomly", "--pyargs", "normconf.checks",
               "--frameworks=numpy", "-k", "ln_ or mutant")
    assert ours.returncode == 0, ours.stdout[-3000:] + ours.stderr[-2000:]
    assert (tmp_path / "normconf-out" / "results.json").is_file()  # the documented default report folder
    misuse = _in(fresh, tmp_path, "python", "-m", "pytest", "-q", "--frameworks=numpy")
    assert misuse.returncode == 4 and "not a normconf run" in misuse.stderr, misuse.stderr[-2000:]
