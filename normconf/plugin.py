"""normconf's pytest plugin (the `pytest11` entry point): options, adapter selection, the (case, adapter)
parametrization, the xdist scheduler and the controller-only report plugin (normconf/report_plugin.py).

Installing normconf never changes another project's test runs: the options are registered (pytest needs
them before it can parse a command line) but every hook does nothing unless normconf is asked for:
`--normconf`, the `normconf run` command (which passes it), a path or `--pyargs` into normconf.checks, or
`normconf = true` in an ini file (the checkout's pyproject.toml).  Asked for with no path into the checks,
the run collects normconf.checks itself."""
from __future__ import annotations

import gc
import json
import os
import platform
from pathlib import Path

import pytest

CHECKS = Path(__file__).resolve().parent / "checks"
_OPTIONS = ("frameworks", "adapter", "report_dir", "without_family", "baseline", "explore")


def pytest_addoption(parser):
    group = parser.getgroup("normconf")
    group.addoption("--normconf", action="store_true", default=False,
                    help="run normconf's conformance checks (normconf.checks) with these options")
    parser.addini("normconf", type="bool", default=False,
                  help="this project's pytest runs are normconf runs (normconf's own checkout sets it)")
    parser.addini("normconf_report_dir", default="normconf-out",
                  help="where results.json and report.html go, relative to the ini file (default normconf-out)")
    group.addoption("--frameworks", default=None,
                    help="comma-separated adapters or families to run (torch, flax, keras, numpy, keras[jax], ...); "
                         "the eager variants of the jitted adapters, the compiled paths and Keras's other RMS "
                         "paths only by name (flax_linen[eager], torch[compile], keras[jax][rms_op]) or by group "
                         "(eager, compiled, keras_rms)")
    group.addoption("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                    help="add a plug-in adapter (module:attribute or path/file.py:attribute); repeatable")
    group.addoption("--report-dir", default=None,
                    help="where results.json and report.html go (default: the ini value normconf_report_dir, "
                         "else ./normconf-out)")
    group.addoption("--without-family", action="append", default=[], metavar="FAMILY",
                    help="leave a family of golden cases out of the mutant checks (shows what only it catches)")
    group.addoption("--baseline", default=None, metavar="FILE",
                    help="compare this run's results with a baseline results.json (normconf compare)")
    group.addoption("--explore", type=int, default=0, metavar="N",
                    help="a deeper search: N more generated cases per adapter (hypothesis, with its database "
                         "and shrinking); a failure prints a one-line reproduction")


def _into_checks(arg: str, config) -> bool:
    target = arg.split("::")[0]
    if target == "normconf.checks" or target.startswith("normconf.checks."):
        return True  # --pyargs
    path = Path(config.invocation_params.dir, target).resolve()
    return path == CHECKS or CHECKS in path.parents


def active(config) -> bool:
    """Whether this pytest run is a normconf run (see the module docstring); decided once."""
    if not hasattr(config, "_normconf_active"):
        asked = config.getoption("--normconf") or config.getini("normconf")
        into = any(_into_checks(a, config) for a in config.args)
        config._normconf_active = bool(asked or into)
        if asked and not into and not config.getini("normconf"):
            config.args[:] = [str(CHECKS)]  # --normconf alone: the checks are the run
    return config._normconf_active


def family(name: str) -> str:
    return name.split("[")[0].split("_")[0]


def select_adapters(config) -> dict:
    """Built-ins and entry-point plug-ins filtered by --frameworks (names or families), plus every
    --adapter plug-in; --frameworks may name plug-ins too, so a plug-in can run alone."""
    from normconf.adapters import registry
    try:
        discovered = registry.plugins()
        explicit = {a.name: a for a in (registry.load_spec(spec) for spec in config.getoption("--adapter"))}
    except (ValueError, TypeError) as exc:
        raise pytest.UsageError(str(exc)) from None
    for name, adapter in {**discovered, **explicit}.items():
        if name in registry.BUILTINS or name in registry.ON_REQUEST:
            raise pytest.UsageError(f"plug-in {name!r} ({adapter.spec}) is named like a built-in adapter: rename it")
    pool = {**registry.BUILTINS, **discovered, **explicit}
    wanted = config.getoption("--frameworks")
    if wanted is None:
        return pool
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    if not names:
        raise pytest.UsageError("--frameworks is empty: name adapters or families (torch, flax, keras, numpy, ...), "
                                "or leave the option out to run every installed one")
    # on-request adapters run only when named, or all of a group with its name (eager, compiled); a family
    # name never picks them
    on_request = {n: a for n, a in registry.ON_REQUEST.items() if n in names or registry.group_of(a) in names}
    groups = {registry.group_of(a) for a in registry.ON_REQUEST.values()}
    known = {*pool, *(family(n) for n in pool), *registry.ON_REQUEST, *groups}
    unknown = [w for w in names if w not in known]
    if unknown:
        raise pytest.UsageError(f"--frameworks: unknown {', '.join(unknown)}; known adapters: "
                                f"{', '.join([*pool, *registry.ON_REQUEST])} (and the groups "
                                f"{', '.join(sorted(groups))}: every adapter of the group)")
    chosen = {n: a for n, a in pool.items() if n in names or family(n) in names}
    return {**chosen, **on_request, **explicit}


class NormconfSession:
    """Per-process state: the selected adapters, their expectations, availability (computed lazily:
    asking a remote adapter starts its child process)."""

    def __init__(self, config):
        from normconf.adapters import registry
        from normconf.judge.expectations import (
            ExpectationError,
            declared_expectation,
            load_all,
            undocumented,
        )
        from normconf.reports.arguments import declared_arguments
        self.adapters = select_adapters(config)
        self.expectations, self.expectation_errors = load_all()
        self.warnings: list[str] = []
        for adapter in self.adapters.values():
            if registry.is_plugin(adapter):
                try:
                    declared = declared_expectation(adapter)
                    declared_arguments(f"plug-in {adapter.name!r}", getattr(adapter, "arguments", None))
                except (ExpectationError, ValueError) as exc:
                    raise pytest.UsageError(str(exc)) from None
                if declared is None and adapter.name not in self.expectations:
                    # nothing to judge conventions against: they are identified and shown, not judged
                    declared = undocumented(adapter.name)
                    self.warnings.append(f"plug-in {adapter.name} documents nothing: its conventions and defaults "
                                         f"are reported, not judged (declare `documented`, see README)")
                if declared is not None:
                    self.expectations[adapter.name] = declared
        self._unavailable = {}

    def unavailable(self, name) -> str | None:
        if name not in self._unavailable:
            self._unavailable[name] = self.adapters[name].availability() or not_installable().get(name)
        return self._unavailable[name]

    def close(self):
        from normconf.adapters.remote import is_remote
        for adapter in self.adapters.values():
            if is_remote(adapter):
                adapter.close()


def not_installable() -> dict[str, str]:
    """$NORMCONF_NOT_INSTALLABLE: adapter -> why it cannot run in this environment, as JSON; the sweep sets
    it after making each adapter's layers once (normconf/sweep.py smoke_check)."""
    text = os.environ.get("NORMCONF_NOT_INSTALLABLE")
    if not text:
        return {}
    try:
        given = json.loads(text)
    except ValueError:
        given = None
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise pytest.UsageError(f"NORMCONF_NOT_INSTALLABLE: expected a JSON object adapter -> reason, got {text[:80]!r}")
    return given


def _given_without_normconf(config) -> list[str]:
    defaults = {"frameworks": None, "adapter": [], "report_dir": None, "without_family": [], "baseline": None,
                "explore": 0}
    return [f"--{o.replace('_', '-')}" for o in _OPTIONS if config.getoption(o) != defaults[o]]


def pytest_configure(config):
    _run["active"] = False
    if not active(config):
        given = _given_without_normconf(config)
        if given:
            raise pytest.UsageError(f"{', '.join(given)} given, but this is not a normconf run: add --normconf "
                                    f"(or run `normconf run`, or `pytest --pyargs normconf.checks`)")
        return
    _run.update(active=True, findings=[], durations={}, cache_warning=None, generated=[])
    # OpenMP threads (torch's, in this process, xdist workers and Keras children) that wait for work sleep
    # instead of spinning: spinning threads of two workers on two cores stall each other's cells for tens of
    # milliseconds.  The number of threads, and so how reductions are split, stays the framework's default.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    config.addinivalue_line("markers", "conformance: a check of an adapter against the golden fixtures")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
    from normconf.adapters.base import call_timeout_problem
    problem = call_timeout_problem() or _missing_directory_variable()
    if problem:
        raise pytest.UsageError(problem)
    config.normconf = NormconfSession(config)
    if not hasattr(config, "workerinput"):  # once, before any worker or child starts: they inherit "off"
        from normconf.adapters.cache import unusable_cache_warning
        warning = unusable_cache_warning()
        if warning:
            config.normconf.warnings.append(warning)
    from normconf.checks.state import StateGuard
    config.pluginmanager.register(StateGuard(), "normconf-state-guard")
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) writes the reports
        from normconf.report_plugin import ReportPlugin
        conformance = any(_into_checks(a, config) for a in config.args)  # the checks run (not only self-tests)
        config.pluginmanager.register(ReportPlugin(config, report_dir(config), conformance), "normconf-report")


def _missing_directory_variable() -> str | None:
    """A directory variable set to something that is not a directory: named now, not as an error in every
    cell ("manifest missing", "no expectations file") that hides which setting caused it."""
    for variable, what in (("NORMCONF_GOLDEN_DIR", "the fixture directory"),
                           ("NORMCONF_EXPECTATIONS_DIR", "the expectations directory")):
        value = os.environ.get(variable)
        if value and not Path(value).is_dir():
            return f"{variable}={value}: not a directory ({what}; unset the variable to use normconf's own)"
    return None


def report_dir(config) -> Path:
    """--report-dir (relative to the invocation directory), else the ini's normconf_report_dir (relative to
    the ini file: the checkout's reports/out), else ./normconf-out."""
    given = config.getoption("--report-dir")
    if given:
        return Path(config.invocation_params.dir, given)
    base = Path(config.inipath).parent if config.inipath else Path(config.invocation_params.dir)
    return base / config.getini("normconf_report_dir")


def pytest_unconfigure(config):
    if not _run["active"]:
        return
    session = getattr(config, "normconf", None)
    if session is not None:
        session.close()
    if hasattr(config, "workerinput"):
        # An xdist worker exits next, and the run waits for it: the interpreter's final garbage collections
        # over torch's and jax's objects took most of a second.  Frozen objects are left to the exit.
        # (Not in the main process: pytest.main() may be embedded in one that goes on.)
        gc.freeze()


def pytest_generate_tests(metafunc):
    if active(metafunc.config) and {"case_name", "adapter_name"} <= set(metafunc.fixturenames):
        from normconf.golden.cases import CASES
        adapters = metafunc.config.normconf.adapters
        # Under xdist, pytest_xdist_make_scheduler below sends the cells sharing a framework start-up to one
        # worker (not xdist's loadgroup: it deadlocks after a worker crash in pytest-xdist 3.8.0,
        # pytest-dev/pytest-xdist#1323, #1378).
        params = [pytest.param(case, name, id=f"{case}@{name}") for name in adapters for case in sorted(CASES)]
        metafunc.parametrize(("case_name", "adapter_name"), params)
    if active(metafunc.config) and {"generated_name", "adapter_name"} <= set(metafunc.fixturenames):
        adapters = metafunc.config.normconf.adapters
        names = sorted(generated_specs())  # the same on every run and in every xdist worker (a fixed seed)
        metafunc.parametrize(("generated_name", "adapter_name"),
                             [pytest.param(case, name, id=f"{case}@{name}") for name in adapters for case in names])
    if active(metafunc.config) and {"gradient_case", "adapter_name"} <= set(metafunc.fixturenames):
        from normconf.golden.gradient_cases import GRADIENT_CASES
        adapters = metafunc.config.normconf.adapters
        metafunc.parametrize(("gradient_case", "adapter_name"), [pytest.param(case, name, id=f"{case}@{name}")
                                                                 for name in adapters for case in sorted(GRADIENT_CASES)])
    if active(metafunc.config) and "explore_adapter" in metafunc.fixturenames:
        explore = metafunc.config.getoption("--explore")
        metafunc.parametrize("explore_adapter", list(metafunc.config.normconf.adapters) if explore > 0 else [])


def pytest_collection_modifyitems(config, items):
    """Without --explore the search is not part of the run: deselected, not a skip with an empty parameter set."""
    if not active(config) or config.getoption("--explore") > 0:
        return
    search = [item for item in items if item.originalname == "test_explore"]
    if search:
        items[:] = [item for item in items if item.originalname != "test_explore"]
        config.hook.pytest_deselected(items=search)


def generated_specs() -> dict[str, dict]:
    """The default draw of generated cases, kept in the cache directory (golden/generated.py)."""
    from normconf.adapters.cache import cache_dir
    from normconf.golden.generated import draw_specs
    return draw_specs(store=cache_dir())


@pytest.hookimpl(optionalhook=True)  # only exists when pytest-xdist is installed
def pytest_xdist_make_scheduler(config, log):
    """-n N with the default --dist load: each framework starts in as few workers as the load allows
    (normconf/scheduling.py).  Any other --dist is xdist's own."""
    if not active(config) or config.getvalue("dist") != "load":
        return None
    from normconf.judge.mutants import MUTANTS
    from normconf.scheduling import StartupScheduling, read_durations
    return StartupScheduling(config, log, config.normconf.adapters, read_durations(),
                             {m.name: m.requires for m in MUTANTS})


def pytest_report_header(config):
    if not active(config):
        return []
    from normconf.adapters.remote import is_remote
    lines = [f"normconf: platform {platform.platform()}, python {platform.python_version()}"]
    for name, adapter in config.normconf.adapters.items():
        versions = ", ".join(f"{k} {v}" for k, v in adapter.versions().items() if k != "python")
        where = f" (in a child process: {adapter.reason})" if is_remote(adapter) else ""
        mode = getattr(adapter, "execution_mode", None)
        lines.append(f"  {name}: {versions}{f', {mode}' if mode else ''}{where}")
    for error in config.normconf.expectation_errors:
        lines.append(f"  expectations error: {error}")
    return lines


def pytest_runtest_logreport(report):
    """In the controller (under xdist too): how long each cell took, for the next run's scheduling, and
    findings a test reports as ("jit_agreement", text) (tests/self/test_jit_agreement.py), for the summary."""
    if not _run["active"]:
        return
    from normconf.scheduling import scheduled
    if scheduled(report.nodeid):
        _run["durations"][report.nodeid] = _run["durations"].get(report.nodeid, 0.0) + report.duration
    if report.when == "call":
        _run["findings"].extend(text for key, text in report.user_properties if key == "jit_agreement")
        _run["generated"].extend(value for key, value in report.user_properties if key == "generated")


def pytest_sessionfinish(session):
    if _run["active"] and not hasattr(session.config, "workerinput"):
        from normconf.scheduling import write_durations
        _run["cache_warning"] = write_durations(_run["durations"])


def pytest_terminal_summary(terminalreporter):
    if _run["active"] and _run.get("cache_warning"):  # the cache failed mid-run: shown, never fatal
        terminalreporter.write_line(f"WARNING: {_run['cache_warning']}", yellow=True)
    if _run["active"] and _run["generated"]:
        from normconf.judge.verdict import NOT_RUN, PASSING
        terminalreporter.section("generated cases (golden/generated.py)")
        per_adapter: dict[str, int] = {}
        for adapter, _, _ in _run["generated"]:
            per_adapter[adapter] = per_adapter.get(adapter, 0) + 1
        terminalreporter.write_line("ran per adapter: " + ", ".join(f"{a} {n}" for a, n in sorted(per_adapter.items())))
        failed = [(a, o, r) for a, o, r in _run["generated"] if o not in PASSING + NOT_RUN]
        terminalreporter.write_line(f"failures: {len(failed)}" + (", each reproduced by:" if failed else ""))
        for adapter, outcome, line in sorted(failed):
            terminalreporter.write_line(f"  {outcome}: {line}")
    if _run["active"] and _run["findings"]:
        terminalreporter.section("compiled vs eager (XLA and inductor fusion, in tolerances of each case)")
        for text in sorted(_run["findings"]):
            terminalreporter.write_line(text)


_run: dict = {"active": False, "findings": [], "durations": {}, "cache_warning": None,
              "generated": []}  # this process's run (pytest_configure resets it)
