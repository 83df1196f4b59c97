"""normconf sweep FAMILY VERSION...: the suite for one framework family at several released
versions, each in its own environment, every results file kept under reports/history/<family>/.

Environments: one per (family, version, companions, normconf's dependencies, Python), built with uv when
it is on PATH, else venv + pip, cached under NORMCONF_ENV_CACHE (default ~/.cache/normconf/envs) and
reused.  normconf itself is not installed there: the suite runs from this checkout (PYTHONPATH).
Companions: keras gets the newest tensorflow-cpu, jax and torch that install beside it; flax gets the jax
its release declares as its minimum (the one it was built against), unless an adapter of the family cannot
make its layers there and fewer fail with the newest jax that installs beside it: then that one, and the
build says which and why (kept in the environment's marker and the run's `sweep.companion`); torch before
2.3 gets numpy < 2.
`--with SPEC` pins any of them (e.g. --with torch==2.13.0 for a CPU wheel from a local index).
Without network nothing new can be installed: a version then runs on its cached environment, or on this
interpreter when it has exactly that version, or is skipped, and the sweep says which.
Before the suite, each adapter of the family makes and calls its layers once in the environment: one that
lacks an API it needs is "not installable with ..." for that run (adapter_problems), not a regression.
A kept run says whether its environment was built for it or reused.  --bisect: normconf/bisect.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement  # pytest's own dependency: always there
from packaging.utils import canonicalize_name

from normconf.adapters.compat import TORCH_NUMPY2, version_tuple
from normconf.reports import history

REPO = Path(__file__).resolve().parent.parent
HISTORY = history.CHECKOUT_HISTORY  # the default --out; NORMCONF_HISTORY_DIR or --out elsewhere
MARKER = "normconf-env.json"  # written last: an environment without it is unfinished
RECIPE = 2  # part of every environment's key: bump it when the way environments are built changes


@dataclass(frozen=True)
class Family:
    package: str              # the distribution whose version is swept
    companions: tuple = ()    # installed beside it: the newest that fit, unless --with pins them
    at_minimum: str = ""      # a companion moved to the version the framework declares as its minimum


FAMILIES = {
    "torch": Family("torch"),
    # jax[cpu] pins jaxlib to jax (old jax accepts any jaxlib); flax's minimum jax is the one it was built
    # against: the newest jax breaks older flax (flax 0.12.0's nnx does not import with jax 0.10.2)
    "flax": Family("flax", ("jax[cpu]",), at_minimum="jax"),
    "keras": Family("keras", ("tensorflow-cpu", "jax[cpu]", "torch")),
    "numpy": Family("numpy"),  # the reference adapter alone: cheap, and what the self-tests sweep
}


def cache_root() -> Path:
    return Path(os.environ.get("NORMCONF_ENV_CACHE", Path.home() / ".cache" / "normconf" / "envs"))


def dist_name(spec: str) -> str:
    """"jax[cpu]==0.6.0" -> "jax": the distribution a requirement names, canonicalized."""
    return canonicalize_name(Requirement(spec).name)


def _satisfied(spec: str, have: dict[str, str]) -> bool:
    req = Requirement(spec)
    found = have.get(canonicalize_name(req.name))
    return found is not None and req.specifier.contains(found.split("+")[0], prereleases=True)


def _same_version(found: str | None, wanted: str) -> bool:
    return found is not None and found.split("+")[0] == wanted.split("+")[0]


def normconf_requirements() -> list[str]:
    """What the suite itself needs: the project's dependencies and its dev extra (pytest-xdist ...)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])


def requirements(family: str, version: str, pins: list[str]) -> list[str]:
    """The framework at `version`, its companions, and the pins (a pin narrows a companion)."""
    fam = FAMILIES[family]
    reqs = [f"{fam.package}=={version}", *fam.companions]
    if family == "torch" and version_tuple(version) < version_tuple(TORCH_NUMPY2) and "numpy" not in map(dist_name, pins):
        reqs.append("numpy<2")  # built against numpy 1.x (adapters/compat.py)
    return reqs + list(pins)


def env_key(family: str, version: str, pins: list[str]) -> str:
    blob = json.dumps([RECIPE, requirements(family, version, pins), normconf_requirements(), platform.python_version()])
    return f"{family}-{version}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _installer_env() -> dict:
    """uv does not read pip's settings: hand over the index and find-links a user set for pip."""
    env = dict(os.environ)
    for pip_var, uv_var in (("PIP_INDEX_URL", "UV_INDEX_URL"), ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
                            ("PIP_FIND_LINKS", "UV_FIND_LINKS")):
        if env.get(pip_var) and not env.get(uv_var):
            env[uv_var] = env[pip_var]
    return env


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def _python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _install(env_dir: Path, specs: list[str]) -> None:
    uv = shutil.which("uv")
    # uv may otherwise take a companion's pre-release (it chose tensorflow-cpu 2.22.0rc0 beside keras 3.0.0
    # to fit the newest jax); pip takes one only when asked, as "explicit" does
    cmd = ([uv, "pip", "install", "--prerelease", "explicit", "-p", _python(env_dir)] if uv
           else [_python(env_dir), "-m", "pip", "install", "-q"])
    proc = _run(cmd + specs, env=_installer_env())
    if proc.returncode != 0:
        raise RuntimeError(f"installing {' '.join(specs)} failed:\n{(proc.stdout + proc.stderr).strip()[-1500:]}")


def installed(python) -> dict[str, str]:
    """Every distribution in an environment, name -> version."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    proc = _run([python, "-c", code])
    return {canonicalize_name(k): v for k, v in json.loads(proc.stdout).items()} if proc.returncode == 0 else {}


def imported_version(python, module: str) -> str | None:
    proc = _run([python, "-c", f"import {module}; print({module}.__version__)"])
    return proc.stdout.strip() if proc.returncode == 0 else None


def _declared_minimum(python, package: str, dependency: str) -> str | None:
    """'jax>=0.4.27' among flax's requirements -> '0.4.27'."""
    code = f"import importlib.metadata as m, json; print(json.dumps(m.requires({package!r}) or []))"
    proc = _run([python, "-c", code])
    for req in map(Requirement, json.loads(proc.stdout) if proc.returncode == 0 else []):
        if canonicalize_name(req.name) == dependency and req.marker is None:
            return next((s.version for s in req.specifier if s.operator == ">="), None)
    return None


def build(env_dir: Path, family: str, version: str, pins: list[str]) -> dict:
    """Create the environment and write its marker; raises RuntimeError with the installer's words."""
    uv = shutil.which("uv")
    tmp = env_dir.with_name(env_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    made = _run([uv, "venv", "-q", "-p", sys.executable, tmp] if uv else [sys.executable, "-m", "venv", tmp])
    if made.returncode != 0:
        raise RuntimeError(f"creating the environment failed: {(made.stdout + made.stderr).strip()[-800:]}")
    try:
        _install(tmp, normconf_requirements() + requirements(family, version, pins))
        choice = _companion_at_minimum(tmp, family, pins)
    except RuntimeError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta = {"family": family, "version": version, "with": pins, "installer": "uv" if uv else "pip",
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **({"companion": choice} if choice else {})}
    (tmp / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(env_dir, ignore_errors=True)
    tmp.rename(env_dir)
    return meta


def _companion_at_minimum(env_dir: Path, family: str, pins: list[str]) -> dict | None:
    """Move the family's `at_minimum` companion to the version the framework declares.  Where an adapter of
    the family cannot make its layers there (flax.nnx lacks jax.sharding.AbstractMesh on jax 0.4.27, flax
    0.10.4's minimum), move it back to the newest version that installed beside the framework, if fewer
    adapters fail there.  The choice and why, or None where nothing moved (pinned, no declared minimum)."""
    companion = FAMILIES[family].at_minimum
    if not companion or companion in map(dist_name, pins):
        return None
    python = _python(env_dir)
    minimum = _declared_minimum(python, FAMILIES[family].package, companion)
    newest = installed(python).get(companion)
    if not minimum or newest is None or newest == minimum:
        return None
    spec = next(c for c in FAMILIES[family].companions if dist_name(c) == companion)
    _install(env_dir, [f"{spec}=={minimum}"])
    at_minimum = _adapter_problems_in(python, family)
    declared = f"{companion} {minimum}, {family}'s declared minimum"
    if not at_minimum:
        return {"package": companion, "version": minimum, "why": declared}
    _install(env_dir, [f"{spec}=={newest}"])
    at_newest = _adapter_problems_in(python, family)
    failing = "; ".join(f"{a}: {why}" for a, why in sorted(at_minimum.items()))
    if len(at_newest) >= len(at_minimum):
        _install(env_dir, [f"{spec}=={minimum}"])
        return {"package": companion, "version": minimum, "why": f"{declared} (the newest, {newest}, works no "
                                                                  f"better; at the minimum {failing})"}
    return {"package": companion, "version": newest, "minimum": minimum,
            "why": f"{companion} {newest}, the newest that installs beside {family}: at {declared}, {failing}"}


def _adapter_problems_in(python, family: str) -> dict[str, str]:
    """smoke_check in an environment being built, with this normconf staged beside it."""
    with tempfile.TemporaryDirectory(prefix="normconf-check-") as tmp:
        staged = stage(Path(tmp) / "code")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(staged), os.environ.get("PYTHONPATH")]))}
        return smoke_check(str(python), family, env, Path(tmp))


def resolve(family: str, version: str, pins: list[str], *, offline: bool, say=print) -> str | None:
    """The Python to run `family` at `version` with, saying where it comes from; None when there is none."""
    package = FAMILIES[family].package
    have = installed(sys.executable)
    here = have.get(package)
    if _same_version(here, version) and all(_satisfied(p, have) for p in pins):
        say(f"{family} {version}: this interpreter has {package} {here}: running here ({sys.executable})")
        return sys.executable
    env_dir = cache_root() / env_key(family, version, pins)
    if (env_dir / MARKER).exists():
        say(f"{family} {version}: cached environment {env_dir}")
        return str(_python(env_dir))
    if offline:
        say(f"{family} {version}: SKIPPED: no cached environment, this interpreter has {package} "
            f"{here or 'not installed'}, and --offline installs nothing")
        return None
    say(f"{family} {version}: building {env_dir} with {'uv' if shutil.which('uv') else 'venv + pip'} ...")
    try:
        meta = build(env_dir, family, version, pins)
    except RuntimeError as exc:
        offline_hint = " (no network?)" if re.search(r"fetch|connect|resolve host|name resolution|unreachable",
                                                      str(exc), re.I) else ""
        say(f"{family} {version}: SKIPPED: could not build an environment{offline_hint}: {exc}")
        return None
    if "companion" in meta:
        say(f"{family} {version}: with {meta['companion']['why']}")
    return str(_python(env_dir))


NOT_INSTALLABLE = "NORMCONF_NOT_INSTALLABLE"  # adapter -> why, for the plugin: set by the sweep only
# Run in a built environment before the suite: each adapter of the family that imports makes and calls its
# layers once; an ImportError or AttributeError then (an API the adapter needs is missing from what got
# installed) makes it "not installable with ..." for this run, not a cell-by-cell regression.
SMOKE = "import json, sys; from normconf.sweep import adapter_problems; print(json.dumps(adapter_problems(sys.argv[1])))"


def adapter_problems(family: str, adapters: dict | None = None) -> dict[str, str]:
    """adapter -> "not installable with <its packages>: <error>" for each adapter of `family` (default: the
    built-ins) that imports but cannot make and call its layers for lack of an API (ImportError,
    AttributeError).  Any other error is the framework's behaviour, for the suite to judge."""
    from normconf.adapters.harness import call
    from normconf.golden.fixtures import load_case
    if adapters is None:
        from normconf.adapters.registry import BUILTINS as adapters
    problems = {}
    for name, adapter in adapters.items():
        if name != family and not name.startswith((family + "_", family + "[")) or adapter.availability():
            continue
        try:
            for case in ("ln_last1", "bn1d_nc"):
                call(adapter, load_case(case))
        except (ImportError, AttributeError) as exc:
            packages = ", ".join(f"{k} {v}" for k, v in sorted(adapter.versions().items()) if k not in ("python", "numpy"))
            problems[name] = f"not installable with {packages}: {type(exc).__name__}: {exc}"
        except Exception:
            pass
    return problems


def smoke_check(python: str, family: str, env: dict, cwd: Path) -> dict[str, str]:
    """adapter -> "not installable with ...: <error>" for the family's adapters that cannot make their layers.
    Run where the suite runs (`cwd`): from a checkout's folder `python -c` would import its normconf/ folder."""
    proc = _run([python, "-c", SMOKE, family], env=env, cwd=cwd)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else _unchecked(proc)
    except (ValueError, IndexError):
        return _unchecked(proc)


def _unchecked(proc) -> dict:
    print(f"  WARNING: the adapters could not be checked before the suite (exit {proc.returncode}): "
          f"{(proc.stdout + proc.stderr).strip()[-300:]}")
    return {}


def run_suite(python: str, family: str, out_dir: Path, workers: int) -> dict | None:
    """The conformance suite for one family, from this checkout; its results, or None."""
    xdist = _run([python, "-c", "import xdist"]).returncode == 0
    # the golden cases only: the mutant checks test normconf, not the framework
    staged = stage(out_dir / "code")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(staged), os.environ.get("PYTHONPATH")]))}
    # where normconf is installed, pytest loads the plugin by its entry point (loading it twice is an error).
    # Asked where pytest runs: from a checkout's folder, `python -c` also sees its normconf.egg-info, whose
    # entry point pytest in out_dir would not (the plugin then never loads: "unrecognized arguments").
    installed = _run([python, "-c", "import importlib.metadata as m, sys; "
                      "sys.exit(not any(e.name == 'normconf' for e in m.entry_points(group='pytest11')))"],
                     cwd=out_dir, env=env)
    plugin = [] if installed.returncode == 0 else ["-p", "normconf.plugin"]
    cmd = [python, "-m", "pytest", str(staged / "normconf" / "checks" / "test_golden.py"), "-q", *plugin,
           "-p", "no:randomly", "-p", "no:cacheprovider", "--normconf", f"--frameworks={family}",
           f"--report-dir={out_dir}", f"--rootdir={out_dir}"]
    cmd += ["-n", str(workers)] if xdist and workers else []
    problems = smoke_check(python, family, env, out_dir)
    for name, why in problems.items():
        print(f"  {name}: {why}")
    env[NOT_INSTALLABLE] = json.dumps(problems)
    proc = _run(cmd, cwd=out_dir, env=env)
    path = out_dir / "results.json"
    if not path.exists():
        print(f"  the suite wrote no results (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}")
        return None
    return json.loads(path.read_text())


def stage(directory: Path) -> Path:
    """This normconf, importable as `normconf` from `directory` on PYTHONPATH in an environment where it is
    not installed: symbolic links to the running package's folders (a wheel's or the checkout's, which
    pyproject.toml maps under normconf)."""
    import normconf
    from normconf import adapters, golden, judge, reports
    root = Path(directory) / "normconf"
    root.mkdir(parents=True, exist_ok=True)
    top = Path(normconf.__file__).resolve().parent
    for entry in top.iterdir():
        if entry.name != "__pycache__":
            (root / entry.name).symlink_to(entry)
    for package in (golden, adapters, judge, reports):
        (root / package.__name__.rsplit(".", 1)[1]).symlink_to(Path(package.__file__).resolve().parent)
    return Path(directory)


def run_version(family: str, version: str, pins: list[str], *, offline: bool, workers: int) -> dict | None:
    """The suite for `family` at `version` with `pins`, in its environment; its results with a `sweep`
    entry, or None (skipped, said why)."""
    reused = (cache_root() / env_key(family, version, list(pins)) / MARKER).exists()
    python = resolve(family, version, list(pins), offline=offline)
    if python is None:
        return None
    with tempfile.TemporaryDirectory(prefix="normconf-sweep-") as tmp:
        data = run_suite(python, family, Path(tmp), workers)
    if data is None:
        return None
    data["sweep"] = {"family": family, "version": version, "with": list(pins),
                     "environment": _environment_label(python, reused),
                     "installed": installed(python)}
    marker = Path(python).parent.parent / MARKER
    if python != sys.executable and marker.exists() and "companion" in json.loads(marker.read_text()):
        data["sweep"]["companion"] = json.loads(marker.read_text())["companion"]  # what the build chose, and why
    # the module that imports, not only the metadata: another distribution can overwrite its files
    # (tensorflow-cpu 2.22.0rc0 brings keras-nightly, which replaced keras 3.5.0's code)
    found = imported_version(python, FAMILIES[family].package)
    data["sweep"]["imported"] = found
    if not _same_version(found, version):
        print(f"  WARNING: asked for {version}, but {FAMILIES[family].package} imports as {found}")
    return data


def _environment_label(python: str, reused: bool) -> str:
    if python == sys.executable:
        return "this interpreter"
    return "cached environment (reused)" if reused else "environment built for this run"


def keep_run(data: dict, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")
    print(f"  {_outcomes(data)} -> {target}")


def sweep(family: str, versions: list[str], pins: list[str] = (), *, offline: bool = False, out: Path = HISTORY,
          workers: int = 2) -> tuple[list[dict], list[str]]:
    """Run every version; keep each results file under out/<family>/<version>.json.  Returns the runs
    (results dicts with a `sweep` entry) in the order given, and the versions skipped."""
    runs, skipped = [], []
    for version in versions:
        data = run_version(family, version, list(pins), offline=offline, workers=workers)
        if data is None:
            skipped.append(version)
            continue
        keep_run(data, Path(out) / family / f"{version}.json")
        runs.append(data)
    return runs, skipped


def _outcomes(data: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in data.get("summary", {}).items() if v)


def pins_of(family: str, version: str, out: Path = HISTORY) -> list[str]:
    """The --with pins a kept run was made with (for --rerun)."""
    path = Path(out) / family / f"{version}.json"
    return list(json.loads(path.read_text()).get("sweep", {}).get("with", []))


def add_commands(sub) -> None:
    swp = sub.add_parser("sweep", help="the suite for FAMILY at each VERSION, each in its own cached environment; "
                                       "results kept in reports/history/FAMILY/, then the timeline")
    swp.add_argument("family", choices=sorted(FAMILIES))
    swp.add_argument("versions", nargs="*")
    swp.add_argument("--with", dest="pins", action="append", default=[], metavar="SPEC",
                     help="pin a companion or add a package, e.g. --with torch==2.13.0 (repeatable)")
    swp.add_argument("--rerun", action="store_true", help="the versions kept in the history folder, with their pins")
    swp.add_argument("--offline", action="store_true", help="install nothing: cached environments or this interpreter")
    swp.add_argument("--bisect", metavar="VERSION", help="re-run the kept step that ends at VERSION once per package "
                     "that moved in it, the others held (kept in FAMILY/bisect/VERSION/)")
    swp.add_argument("--out", default=HISTORY, help="history folder (default reports/history)")
    swp.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers per run")
    tln = sub.add_parser("timeline", help="what changed at which version, from the history folder")
    tln.add_argument("family")
    tln.add_argument("--out", default=HISTORY)


def cli(args) -> int:
    """normconf sweep | timeline.  sweep: exit 0 when every version ran, 1 when one was skipped."""
    if args.command == "timeline":
        if not history.paths(Path(args.out) / args.family):
            print(f"normconf timeline: no results for {args.family!r} in {Path(args.out) / args.family} "
                  f"(families there: {', '.join(sorted(p.name for p in Path(args.out).glob('*') if p.is_dir())) or 'none'})",
                  file=sys.stderr)
            return 2
        folder = Path(args.out) / args.family
        print("\n".join(history.render(history.timeline(history.load(folder), history.load_bisections(folder)))))
        return 0
    versions = [p.stem for p in history.paths(Path(args.out) / args.family)] if args.rerun else list(args.versions)
    if not versions:
        print(f"sweep {args.family}: no versions given" + (f" and none kept in {Path(args.out) / args.family}"
                                                           if args.rerun else ""))
        return 2
    runs, skipped = [], []
    for version in versions:  # one at a time: a rerun keeps each version's own pins
        pins = pins_of(args.family, version, args.out) if args.rerun else args.pins
        done, missed = sweep(args.family, [version], pins, offline=args.offline, out=args.out, workers=args.workers)
        runs += done
        skipped += missed
    runs.sort(key=lambda r: version_tuple(history.label(r)))
    print(f"\ntimeline of {args.family}:")
    print("\n".join(history.render(history.timeline(runs))))
    if len(runs) == 1:  # no step to show: the version's own readings
        print(f"readings at {history.label(runs[0])}:")
        print("\n".join(history.readings(runs[0])))
    if skipped:
        print(f"\nskipped (see above): {', '.join(skipped)}")
    return 1 if skipped else 0
