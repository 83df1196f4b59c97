"""Print how long normconf takes: per framework the import, the start, the first call and the time per
case; then the full matrix with -n 0 and -n auto, cold (an empty cache directory) and warm, and the ratio.
A script that prints figures, not a timed test.

    python scripts/benchmark.py              # everything (about 7 minutes on 2 cores)
    python scripts/benchmark.py --quick      # per-framework figures only
    python scripts/benchmark.py --repeat 5   # median of 5 warm pairs (default 3)
    python scripts/benchmark.py --against ../base --against-python ../base/.venv/bin/python
                                             # the main job (-n auto, warm) of this checkout and another in
                                             # turn, --repeat pairs: the ratio of their medians

Cold runs get a fresh, empty cache directory each.  Warm runs use the cache directory the suite uses
(NORMCONF_CACHE_DIR, see adapters/cache.py), after one warm-up run; so do the per-framework figures
(with --quick, after one warm-up pass of their own).  Each full run reports the CPU seconds of its process
tree and of everything else on the machine meanwhile ("others"): on a shared machine, a run with others
busy is not a figure of normconf.  Before each run the script waits (--quiet-wait seconds at most) until
the machine has been idle for two seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What each adapter's process imports first (flax includes jax; keras includes its backend).
IMPORTS = {"torch": "import torch", "flax": "import flax.linen, flax.nnx", "keras": "import keras", "numpy": "import numpy"}

PER_ADAPTER = r"""
import json, statistics, sys, time
sys.path.insert(0, {repo!r})
from normconf.adapters.registry import get
from normconf.adapters.harness import call
from normconf.golden.cases import CASES
from normconf.golden.fixtures import load_case
adapter = get({name!r})
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


def _env(**extra) -> dict:
    """The environment the suite's processes get (OMP_WAIT_POLICY: as normconf/plugin.py sets it)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), **extra}


def import_time(name: str) -> float:
    """Seconds to import the adapter's framework in a fresh process (keras: with its backend)."""
    family = name.split("[")[0].split("_")[0]
    backend = name.split("[")[1].rstrip("]") if family == "keras" else None
    code = f"import time; t=time.perf_counter(); {IMPORTS.get(family, 'pass')}; print(time.perf_counter()-t)"
    env = _env(**({"KERAS_BACKEND": backend} if backend else {}))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")


def per_adapter(name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PER_ADAPTER.format(repo=str(REPO), name=name)],
                         capture_output=True, text=True, cwd=REPO, env=_env())
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_cpu_s() -> float:
    """CPU seconds spent so far by the whole machine, every CPU (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float) -> None:
    """Wait until the machine spends under a tenth of a CPU on others' work over two seconds."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        before = machine_cpu_s()
        time.sleep(2.0)
        if machine_cpu_s() - before < 0.2:
            return


def full_run(workers: str, cache_dir: str | None = None, quiet_wait: float = 0.0, repo: Path = REPO,
             python: str = sys.executable) -> dict:
    """One `pytest -n WORKERS` of the whole matrix (in `repo`, with `python`): wall and CPU seconds, outcomes,
    others' CPU seconds."""
    env = _env(**({"NORMCONF_CACHE_DIR": cache_dir} if cache_dir else {}))
    if repo != REPO:  # another checkout: its own code on the path, not this one's
        env["PYTHONPATH"] = str(repo)
    wait_quiet(quiet_wait)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = machine_cpu_s()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:randomly",
                               "-n", workers, f"--report-dir={tmp}"], capture_output=True, text=True, cwd=repo, env=env)
        wall = time.perf_counter() - t
        path = Path(tmp) / "results.json"
        summary = json.loads(path.read_text())["summary"] if path.exists() else {"no results": proc.returncode}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "others": max(0.0, machine_cpu_s() - machine - cpu),
            "summary": {k: v for k, v in summary.items() if v}}


def show(label: str, run: dict) -> None:
    print(f"  {label:28s} {run['wall']:6.1f} s wall  {run['cpu']:6.1f} s CPU  (others {run['others']:5.1f} s CPU)  "
          f"{run['summary']}", flush=True)


def per_framework(warm_up: bool) -> None:
    sys.path.insert(0, str(REPO))
    from normconf.adapters.registry import BUILTINS, ON_REQUEST
    print("per framework, warm cache, one process each")
    print(f"{'adapter':20s} {'mode':6s} {'import s':>9s} {'start s':>8s} {'first call s':>13s} "
          f"{'per case ms (median)':>21s} {'cases':>6s}")
    for name, adapter in {**BUILTINS, **ON_REQUEST}.items():
        imp = import_time(name)
        if warm_up:
            per_adapter(name)  # fills the compilation cache
        r = per_adapter(name)
        if "error" in r or r.get("unavailable"):
            print(f"{name:20s} unavailable: {r.get('error') or r.get('unavailable')}")
            continue
        print(f"{name:20s} {getattr(adapter, 'execution_mode', '?'):6s} {imp:9.2f} {r['start_s']:8.2f} "
              f"{r['first_s']:13.3f} {1000 * statistics.median(r['rest']):21.1f} {len(r['rest']) + 1:6d}")


def paired(other: Path, other_python: str, repeat: int, quiet_wait: float) -> None:
    """The main job's warm wall time here and in `other`, alternately (one warm-up each first, each checkout
    with its own cache directory): the ratio of the medians is a figure of the code, not of the machine's
    drift, which both sides share."""
    sides = {"this": (REPO, sys.executable), "other": (Path(other).resolve(), other_python)}
    caches = {k: tempfile.mkdtemp(prefix=f"normconf-bench-{k}-") for k in sides}
    print(f"paired main job, pytest -n auto, warm: this = {REPO}, other = {sides['other'][0]}")
    for k, (repo, py) in sides.items():
        show(f"warm-up, {k}", full_run("auto", caches[k], quiet_wait, repo, py))
    walls = {k: [] for k in sides}
    for i in range(repeat):
        for k, (repo, py) in sides.items():
            run = full_run("auto", caches[k], quiet_wait, repo, py)
            walls[k].append(run["wall"])
            show(f"#{i + 1}, {k}", run)
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"median of {repeat}: this {med['this']:.1f} s, other {med['other']:.1f} s, "
          f"ratio this/other {med['this'] / med['other']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", metavar="DIR", help="time the main job here and in checkout DIR in turn")
    parser.add_argument("--against-python", metavar="PY", default=sys.executable,
                        help="the interpreter for --against's checkout (its own environment)")
    parser.add_argument("--quick", action="store_true", help="per-framework figures only")
    parser.add_argument("--repeat", type=int, default=3, help="warm (-n 0, -n auto) pairs; the median is reported")
    parser.add_argument("--quiet-wait", type=float, default=120.0, metavar="S",
                        help="before each full run, wait up to S seconds for the machine to be idle")
    args = parser.parse_args()
    print(f"normconf benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs")
    if args.against:
        paired(args.against, args.against_python, args.repeat, args.quiet_wait)
        return 0
    if not args.quick:
        print("full matrix (every case through every built-in adapter, plus the mutants)")
        for workers in ("0", "auto"):
            with tempfile.TemporaryDirectory() as empty:
                show(f"cold, pytest -n {workers}", full_run(workers, empty, args.quiet_wait))
        show("warm-up, pytest -n auto", full_run("auto"))
    per_framework(warm_up=args.quick)
    if args.quick:
        return 0
    print("full matrix, warm")
    warm = {"0": [], "auto": []}
    for i in range(args.repeat):
        for workers in ("0", "auto"):
            warm[workers].append(full_run(workers, quiet_wait=args.quiet_wait))
            show(f"warm #{i + 1}, pytest -n {workers}", warm[workers][-1])
    for name, pick in (("median", statistics.median), ("best", min)):  # others' work only ever adds
        wall = {w: pick(r["wall"] for r in runs) for w, runs in warm.items()}
        print(f"warm, {name} of {args.repeat}: -n 0 {wall['0']:.1f} s, -n auto {wall['auto']:.1f} s, "
              f"ratio {wall['0'] / wall['auto']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
