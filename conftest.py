"""normconf's pytest wiring: options, adapter selection, the (case, adapter) parametrization, and the
controller-only report plugin (reports/plugin.py)."""
from __future__ import annotations

import gc
import os
import platform

import pytest

from adapters import registry
from judge.expectations import Expectation, ExpectationError, load_all
from adapters.remote import RemoteAdapter

# OpenMP threads (torch's, in this process, xdist workers and Keras children) that wait for work sleep
# instead of spinning: spinning threads of two workers on two cores stall each other's cells for tens of
# milliseconds.  The number of threads, and so how reductions are split, stays the framework's default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_addoption(parser):
    group = parser.getgroup("normconf")
    group.addoption("--frameworks", default=None,
                    help="comma-separated adapters or families to run (torch, flax, keras, numpy, keras[jax], ...); "
                         "eager variants of the jitted adapters only by name (flax_linen[eager]) or all with eager")
    group.addoption("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                    help="add a plug-in adapter (module:attribute or path/file.py:attribute); repeatable")
    group.addoption("--report-dir", default="reports/out", help="where results.json and report.html go")
    group.addoption("--without-family", action="append", default=[], metavar="FAMILY",
                    help="leave a family of golden cases out of the mutant checks (shows what only it catches)")
    group.addoption("--baseline", default=None, metavar="FILE",
                    help="compare this run's results with a baseline results.json (python -m reports compare)")


def family(name: str) -> str:
    return name.split("[")[0].split("_")[0]


def select_adapters(config) -> dict:
    """Built-ins and entry-point plug-ins filtered by --frameworks (names or families), plus every
    --adapter plug-in; --frameworks may name plug-ins too, so a plug-in can run alone."""
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
    if not wanted:
        return pool
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    # eager variants run only when named, or all of them with "eager"; a family name never picks them
    on_request = {n: a for n, a in registry.ON_REQUEST.items() if n in names or "eager" in names}
    known = {*pool, *(family(n) for n in pool), *registry.ON_REQUEST, "eager"}
    unknown = [w for w in names if w not in known]
    if unknown:
        raise pytest.UsageError(f"--frameworks: unknown {', '.join(unknown)}; known adapters: "
                                f"{', '.join([*pool, *registry.ON_REQUEST])} (and eager: every eager variant)")
    chosen = {n: a for n, a in pool.items() if n in names or family(n) in names}
    return {**chosen, **on_request, **explicit}


def adapter_info(adapter) -> dict:
    """What an adapter declares about itself, for the report (built-in types only)."""
    return {"momentum_form": getattr(adapter, "momentum_form", None),
            "execution_mode": getattr(adapter, "execution_mode", None),
            "child_process": getattr(adapter, "reason", None) if isinstance(adapter, RemoteAdapter) else None,
            "plugin": getattr(adapter, "spec", None)}


class NormconfSession:
    """Per-process state: the selected adapters, their expectations, availability (computed lazily:
    asking a remote adapter starts its child process)."""

    def __init__(self, config):
        self.adapters = select_adapters(config)
        self.expectations, self.expectation_errors = load_all()
        self.warnings: list[str] = []
        for adapter in self.adapters.values():
            if isinstance(adapter, registry.PluginAdapter):
                try:
                    declared = registry.declared_expectation(adapter)
                except ExpectationError as exc:
                    raise pytest.UsageError(str(exc)) from None
                if declared is None and adapter.name not in self.expectations:
                    # nothing to judge conventions against: they are identified and shown, not judged
                    declared = Expectation(f"plug-in {adapter.name!r}", (adapter.name,), {})
                    self.warnings.append(f"plug-in {adapter.name} documents nothing: its conventions and defaults "
                                         f"are reported, not judged (declare `documented`, see README)")
                if declared is not None:
                    self.expectations[adapter.name] = declared
        self._unavailable = {}

    def unavailable(self, name) -> str | None:
        if name not in self._unavailable:
            self._unavailable[name] = self.adapters[name].availability()
        return self._unavailable[name]

    def close(self):
        for adapter in self.adapters.values():
            if isinstance(adapter, RemoteAdapter):
                adapter.close()


def pytest_configure(config):
    from adapters.base import CALL_TIMEOUT_PROBLEM
    if CALL_TIMEOUT_PROBLEM:
        raise pytest.UsageError(CALL_TIMEOUT_PROBLEM)
    config.normconf = NormconfSession(config)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) writes the reports
        from reports.plugin import ReportPlugin
        config.pluginmanager.register(ReportPlugin(config), "normconf-report")


def pytest_unconfigure(config):
    session = getattr(config, "normconf", None)
    if session is not None:
        session.close()
    if hasattr(config, "workerinput"):
        # An xdist worker exits next, and the run waits for it: the interpreter's final garbage collections
        # over torch's and jax's objects took most of a second.  Frozen objects are left to the exit.
        # (Not in the main process: pytest.main() may be embedded in one that goes on.)
        gc.freeze()


def pytest_generate_tests(metafunc):
    if {"case_name", "adapter_name"} <= set(metafunc.fixturenames):
        from golden.cases import CASES
        adapters = metafunc.config.normconf.adapters
        # Under xdist, pytest_xdist_make_scheduler below sends the cells sharing a framework start-up to one
        # worker (not xdist's loadgroup: it deadlocks after a worker crash in pytest-xdist 3.8.0,
        # pytest-dev/pytest-xdist#1323, #1378).
        params = [pytest.param(case, name, id=f"{case}@{name}") for name in adapters for case in sorted(CASES)]
        metafunc.parametrize(("case_name", "adapter_name"), params)


@pytest.hookimpl(optionalhook=True)  # only exists when pytest-xdist is installed
def pytest_xdist_make_scheduler(config, log):
    """-n N with the default --dist load: each framework starts in as few workers as the load allows
    (adapters/scheduling.py).  Any other --dist is xdist's own."""
    if config.getvalue("dist") != "load":
        return None
    from adapters.scheduling import StartupScheduling, read_durations
    from tests.self.mutants import MUTANTS
    return StartupScheduling(config, log, config.normconf.adapters, read_durations(),
                             {m.name: m.requires for m in MUTANTS})


def pytest_report_header(config):
    lines = [f"normconf: platform {platform.platform()}, python {platform.python_version()}"]
    for name, adapter in config.normconf.adapters.items():
        versions = ", ".join(f"{k} {v}" for k, v in adapter.versions().items() if k != "python")
        where = f" (in a child process: {adapter.reason})" if isinstance(adapter, RemoteAdapter) else ""
        mode = getattr(adapter, "execution_mode", None)
        lines.append(f"  {name}: {versions}{f', {mode}' if mode else ''}{where}")
    for error in config.normconf.expectation_errors:
        lines.append(f"  expectations error: {error}")
    return lines


def pytest_runtest_logreport(report):
    """In the controller (under xdist too): how long each cell took, for the next run's scheduling, and
    findings a test reports as ("jit_agreement", text) (tests/self/test_jit_agreement.py), for the summary."""
    from adapters.scheduling import scheduled
    if scheduled(report.nodeid):
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
    if report.when == "call":
        _findings.extend(text for key, text in report.user_properties if key == "jit_agreement")


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        from adapters.scheduling import write_durations
        write_durations(_durations)


def pytest_terminal_summary(terminalreporter):
    if _findings:
        terminalreporter.section("jit vs eager (XLA fusion, in tolerances of each case)")
        for text in sorted(_findings):
            terminalreporter.write_line(text)


_findings: list[str] = []
_durations: dict[str, float] = {}

