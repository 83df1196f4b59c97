"""Print how long normconf takes: the full suite serial and with -n auto (warm), and per framework the
import time, the first call and the time per case.  A script that prints figures, not a timed test.

    python scripts/benchmark.py            # everything (about 5 minutes on 2 cores)
    python scripts/benchmark.py --quick    # per-framework figures only
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What each adapter's process imports first (flax includes jax; keras includes its backend).
IMPORTS = {"torch": "import torch", "torch_functional": "import torch", "flax_linen": "import flax.linen",
           "flax_nnx": "import flax.nnx", "keras[tensorflow]": "import keras", "keras[jax]": "import keras",
           "keras[torch]": "import keras", "numpy": "import numpy"}

PER_ADAPTER = r"""
import json, statistics, sys, time
sys.path.insert(0, {repo!r})
from adapters.registry import BUILTINS
from adapters.harness import call
from golden.cases import CASES
from golden.fixtures import load_case
from adapters.base import Unsupported
adapter = BUILTINS[{name!r}]
t0 = time.perf_counter(); reason = adapter.availability(); start = time.perf_counter() - t0
fixtures = [load_case(n) for n in sorted(CASES)]
times = []
for fx in fixtures:
    t = time.perf_counter()
    try:
        call(adapter, fx)
    except Exception:
        pass
    times.append(time.perf_counter() - t)
if hasattr(adapter, "close"):
    adapter.close()
print(json.dumps({{"unavailable": reason, "start_s": start, "first_s": times[0], "rest": times[1:]}}))
"""


def import_time(name: str) -> float:
    env_backend = name[6:-1] if name.startswith("keras[") else None
    code = f"import time; t=time.perf_counter(); {IMPORTS[name]}; print(time.perf_counter()-t)"
    env = None
    if env_backend:
        import os
        env = {**os.environ, "KERAS_BACKEND": env_backend}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")


def per_adapter(name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PER_ADAPTER.format(repo=str(REPO), name=name)],
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def full_run(workers: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-n", workers,
                               f"--report-dir={tmp}"], capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - t
        summary = json.loads((Path(tmp) / "results.json").read_text())["summary"] if proc.returncode in (0, 1) else {}
    return wall, {k: v for k, v in summary.items() if v}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the two full runs")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from adapters.registry import BUILTINS
    print(f"{'adapter':20s} {'import s':>9s} {'start s':>8s} {'first call s':>13s} {'per case ms (median)':>21s} {'cases':>6s}")
    for name in BUILTINS:
        imp = import_time(name)
        r = per_adapter(name)
        if "error" in r or r.get("unavailable"):
            print(f"{name:20s} unavailable: {r.get('error') or r.get('unavailable')}")
            continue
        print(f"{name:20s} {imp:9.2f} {r['start_s']:8.2f} {r['first_s']:13.3f} "
              f"{1000 * statistics.median(r['rest']):21.1f} {len(r['rest']) + 1:6d}")
    if not args.quick:
        full_run("auto")  # warm the file cache and compiled bytecode
        for workers in ("0", "auto"):
            wall, summary = full_run(workers)
            print(f"full suite, pytest -n {workers}: {wall:.1f} s wall  {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
