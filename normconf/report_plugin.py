"""Controller-only pytest plugin: gathers the cell records that workers attach to their reports,
fills in crashed and missing cells, writes results.json and report.html at the end, and compares the
run with --baseline.

- The baseline is read and validated when the run starts: a bad file ends it at once (exit 2).
- `--collect-only` writes nothing.  A run that did not cover the whole catalog (-k, --frameworks, --lf,
  deselection) is partial; one where a collected cell or mutant check never reported (Ctrl-C, -x, xdist
  giving up after crashed workers) is interrupted, with the count of what did not run and why.
  Both are marked in results.json and the page title, and neither replaces a complete report: where
  the report directory holds one, they go to its `partial/` folder beside it.
- Files are written atomically; an unwritable report directory is one line at the end, not a traceback.
- A conformance run holds the report directory's lock and keeps a journal there (normconf/journal.py):
  a second run into the folder is refused, naming the first's pid; a run that died is recovered into
  recovered/ by the next (normconf/recovery.py).
- With --baseline the exit code is the check's: 1 regressions, 2 unusable input or output, 0 otherwise.
  The last line of the run is the verdict, after pytest's own summary line.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

from normconf.judge.verdict import new_cell
from normconf.records import crashed_mutant, mutant_name
from normconf.reports import output, results
from normconf.reports.gradients import gradient_section

PARTIAL_DIR = "partial"


def adapter_info(adapter) -> dict:
    """What an adapter declares about itself, for the report (built-ins and plug-ins alike)."""
    from normconf.adapters.remote import is_remote
    return {"momentum_form": getattr(adapter, "momentum_form", None),
            "execution_mode": getattr(adapter, "execution_mode", None),
            "child_process": getattr(adapter, "reason", None) if is_remote(adapter) else None,
            "plugin": getattr(adapter, "spec", None),
            "arguments": getattr(adapter, "arguments", None)}  # a plug-in's framework names (checked at start)


class ReportPlugin:
    def __init__(self, config, report_dir: Path, conformance: bool = True):
        self.config = config
        self.report_dir = Path(report_dir)
        self.expected: set[str] = set()
        self.expected_mutants: set[str] = set()
        self.reported: set[str] = set()
        self.cells: dict[str, dict] = {}
        self.crashes: dict[str, str] = {}
        self.mutants: dict[str, dict] = {}
        self.gradient_cells: dict[str, dict] = {}  # issue 23: results.json's `gradients` section
        self.started = time.time()
        self.written: list[Path] = []
        self.data: dict | None = None
        self.problem: str | None = None  # the report could not be written
        self.nothing_ran: str | None = None  # every selected adapter failed to import
        self.baseline_path = config.getoption("--baseline")
        self.baseline = None
        if self.baseline_path:  # checked now: a bad baseline must not cost a whole run first
            try:
                self.baseline = results.read(self.baseline_path)
            except results.ResultsError as exc:
                pytest.exit(f"--baseline {exc}", returncode=2)
        self.journal: Path | None = None
        if conformance and not config.option.collectonly:  # not for the self-tests' runs, nor --collect-only
            self._start_journal()

    # -- the folder's lock and the run's journal (normconf/journal.py) --
    def _start_journal(self):
        from normconf import journal
        from normconf.recovery import recover
        ns = self.config.normconf
        try:
            previous = journal.acquire(self.report_dir)
            if previous is not None:
                line = recover(self.report_dir, previous)
                if line:
                    ns.warnings.append(line)
        except journal.RunInUse as exc:
            pytest.exit(f"normconf: {exc}", returncode=2)
        except OSError:
            return  # an unwritable report directory: said once, when the report is written
        self.journal = self.report_dir / journal.JOURNAL
        self.journal.unlink(missing_ok=True)
        os.environ[journal.ENV] = str(self.journal)  # xdist workers inherit it (judge/verdict.py deadline)
        frameworks = self.config.getoption("--frameworks")
        self._log({"run": {"adapters": list(ns.adapters), "partial": [f"--frameworks={frameworks}"] if frameworks else [],
                           "adapter_info": {n: adapter_info(a) for n, a in ns.adapters.items()},
                           "warnings": ns.warnings, "expectation_errors": ns.expectation_errors,
                           "workers": getattr(self.config.option, "numprocesses", None) or 0}})

    def _log(self, record: dict):
        if self.journal is not None:
            from normconf import journal
            journal.append(record, self.journal)

    def pytest_runtest_logstart(self, nodeid, location):
        if results.split_nodeid(nodeid) or mutant_name(nodeid):
            self._log({"start": nodeid})

    # -- which cells should exist --
    def _expect(self, ids):
        ids = list(ids)
        if not (self.expected or self.expected_mutants):  # the first collection names the run's cells
            self._log({"expected": [i for i in ids if results.split_nodeid(i) or mutant_name(i)]})
        self.expected.update(i for i in ids if results.split_nodeid(i))
        self.expected_mutants.update(i for i in ids if mutant_name(i))

    def pytest_collection_finish(self, session):
        self._expect(i.nodeid for i in session.items)

    @pytest.hookimpl(optionalhook=True)  # only exists when pytest-xdist is installed
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._expect(ids)

    # -- what they were --
    def pytest_runtest_logreport(self, report):
        self.reported.add(report.nodeid)
        for key, value in report.user_properties:
            if key == "normconf_mutant" and value["mutant"] not in self.mutants:  # call and teardown carry it
                self.mutants[value["mutant"]] = value
                self._log({"nodeid": report.nodeid, "mutant": value})
        name = mutant_name(report.nodeid)
        if name and report.failed and name not in self.mutants:
            # no kill record: its worker died (xdist: "worker crashed") or the check itself broke
            self.mutants[name] = crashed_mutant(name, str(report.longrepr)[-2000:])
        for key, value in report.user_properties:
            if key == "normconf_gradient_cell":
                self.gradient_cells.setdefault(report.nodeid, value)
        if not results.split_nodeid(report.nodeid):
            return
        for key, value in report.user_properties:
            if key == "normconf_cell" and report.nodeid not in self.cells:
                self.cells[report.nodeid] = value
                self._log({"nodeid": report.nodeid, "cell": value})
        if report.failed and report.nodeid not in self.cells and self.journal is not None:
            from normconf import journal  # a worker that stopped itself left the cell's record first
            final = journal.final_cell(self.journal, report.nodeid)
            if final is not None:
                self.cells[report.nodeid] = final
        if report.failed and report.nodeid not in self.cells:
            self.crashes[report.nodeid] = str(report.longrepr)[-2000:]

    def _all_cells(self, stopped: bool) -> list[dict]:
        out = list(self.cells.values())
        for nodeid in sorted(self.expected - set(self.cells)):
            if stopped and nodeid not in self.reported:
                continue  # never ran: the run was stopped, not the cell (counted in _run_status)
            case, adapter = results.split_nodeid(nodeid)
            cell = new_cell(case, adapter)
            if nodeid in self.crashes:
                cell.update(outcome="crashed", message=self.crashes[nodeid])
            else:
                cell.update(outcome="missing", message="no result reached the controller")
            out.append(cell)
        return out

    def _stop_reason(self, session, exitstatus) -> str | None:
        """Why the run stopped early: -x, Ctrl-C, or xdist giving up after crashed workers.  xdist keeps
        its reasons on its own session object, not pytest's: -x in `shouldstop`, "maximum crashed workers
        reached" only in `_summary_report` (pytest-xdist 3.8; read defensively, it is private)."""
        dsession = self.config.pluginmanager.getplugin("dsession")
        return (session.shouldfail or session.shouldstop or getattr(dsession, "shouldstop", None)
                or getattr(dsession, "_summary_report", None)
                or ("Ctrl-C" if exitstatus == pytest.ExitCode.INTERRUPTED else None))

    def _run_status(self, session, exitstatus) -> dict:
        from normconf.golden.cases import CASES
        from normconf.judge.mutants import MUTANTS
        ns, partial = self.config.normconf, []
        frameworks = self.config.getoption("--frameworks")
        if frameworks:
            partial.append(f"--frameworks={frameworks}")
        catalog = [n for n in self.expected if "::test_golden[" in n]  # generated cells come on top
        left_out = len(CASES) * len(ns.adapters) - len(catalog)
        if left_out > 0:
            partial.append(f"{left_out} of {len(CASES) * len(ns.adapters)} cells not selected")
        if "numpy" in ns.adapters and len(self.expected_mutants) < len(MUTANTS):
            partial.append(f"{len(MUTANTS) - len(self.expected_mutants)} of {len(MUTANTS)} mutant checks not selected")
        # complete means every collected cell and mutant check reported: compare what was collected with
        # what reached this process, not with the cells assembled (those include stand-ins for the lost)
        unran_cells = len(self.expected - self.reported)
        # without the numpy adapter the mutant checks are skips: not running them loses nothing
        unran_mutants = len(self.expected_mutants - self.reported) if "numpy" in ns.adapters else 0
        if not (unran_cells or unran_mutants):
            return results.run_status(partial, None)
        why = self._stop_reason(session, exitstatus) or "a worker or the run ended before they ran"
        counts = [f"{n} selected {what} did not run" for n, what in
                  ((unran_cells, "cells"), (unran_mutants, "mutant checks")) if n]
        return results.run_status(partial, f"{why}; {' and '.join(counts)}")

    def pytest_sessionfinish(self, session, exitstatus):
        if self.config.option.collectonly or not (self.expected or self.expected_mutants):
            return  # collecting only, or not a conformance run (e.g. the self-tests): nothing to write
        ns = self.config.normconf
        stopped = bool(self._stop_reason(session, exitstatus))
        cells = self._all_cells(stopped)
        versions, seconds = {}, defaultdict(float)
        for c in cells:
            if c.get("versions"):
                versions[c["adapter"]] = c["versions"]
            seconds[c["adapter"]] += c.get("seconds") or 0.0
        data = results.assemble(
            cells, adapters=list(ns.adapters), versions=versions,
            timings={"wall_s": round(time.time() - self.started, 2), "cell_s_by_adapter": dict(seconds),
                     "workers": getattr(self.config.option, "numprocesses", None) or 0},
            stale=stale_rules(ns, cells + list(self.gradient_cells.values())), expectation_errors=ns.expectation_errors,
            adapter_info={name: adapter_info(a) for name, a in ns.adapters.items()}, warnings=ns.warnings,
            extra={**results.mutant_section(list(self.mutants.values())),
                   **gradient_section(list(self.gradient_cells.values()))},
            run=self._run_status(session, exitstatus))
        if self.baseline is not None:
            from normconf.reports.compare import compare, exit_code
            data["comparison"] = compare(self.baseline, data)
            data["comparison"]["baseline"]["path"] = str(self.baseline_path)
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                session.exitstatus = exit_code(data["comparison"])
        self.data = data
        self.nothing_ran = results.nothing_ran(data)
        if self.nothing_ran and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = 2  # an empty matrix is no result: say why, and fail
        out = self.report_dir
        try:
            self.written = write_report(data, out)
        except OSError as exc:
            self.problem = f"normconf: cannot write the report to {out}: {exc.strerror or exc}"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = 2

    def pytest_terminal_summary(self, terminalreporter):
        if self.data is None:
            return
        from normconf.reports.changes import text_lines
        from normconf.reports.table import text_matrix
        data = self.data
        tr = terminalreporter
        tr.section("normconf conformance matrix")
        for warning in data["warnings"]:
            tr.write_line(f"WARNING: {warning}", yellow=True)
        tr.write_line(text_matrix(data["matrix"]))
        for adapter, why in results.unavailable_adapters(data).items():
            tr.write_line(f"NOT INSTALLED {adapter}: {why}", yellow=True)
        tr.write_line("outcomes: " + ", ".join(f"{k} {v}" for k, v in data["summary"].items() if v))
        if data.get("mutant_summary"):
            m = data["mutant_summary"]
            crashed = f", crashed: {', '.join(m['crashed'])}" if m.get("crashed") else ""
            tr.write_line(f"mutants: {m['killed']} of {m['total']} killed, survivors: "
                          f"{', '.join(m['survivors']) or 'none'}{crashed}")
        for rule in data["stale_expectations"]:
            tr.write_line(f"STALE expectation: {rule}")
        for err in data["expectation_errors"]:
            tr.write_line(f"EXPECTATION ERROR: {err}")
        if self.written:
            label = results.run_label(data)
            tr.write_line(f"wrote {' and '.join(p.name for p in self.written)} to {self.written[0].parent}"
                          + (f" ({label}: {'; '.join(data['run']['reasons'])})" if label else ""))
            if self.written[0].parent.name == PARTIAL_DIR:
                tr.write_line(f"the last complete report stays in {self.written[0].parent.parent}")
        if data.get("comparison"):
            tr.section("normconf: changes since the baseline")
            for line in text_lines(data["comparison"]):
                tr.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config):
        """After pytest's summary line: the write problem and the verdict, the run's last words."""
        if self.journal is not None:  # ended (normally, by Ctrl-C, -x or a crash limit): nothing to recover
            from normconf import journal
            journal.release(self.report_dir)
            os.environ.pop(journal.ENV, None)
        lines = [line for line in (self.problem, self.nothing_ran) if line]
        if self.data is not None and self.data.get("comparison"):
            from normconf.reports.changes import verdict
            lines.append(verdict(self.data["comparison"]))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line, red="regression" in line and not line.startswith("0 "), bold=True)
            else:
                print(line)


def write_report(data: dict, out: Path) -> list[Path]:
    """results.json and report.html, atomically.  A partial or interrupted run goes to out/partial/
    where `out` holds a complete report; a complete run clears out/partial/ (it is older)."""
    target = out
    if not results.is_complete(data):
        try:
            if results.is_complete(results.read(out / "results.json")):
                target = out / PARTIAL_DIR
        except results.ResultsError:
            pass  # nothing complete (or nothing readable) to keep
    written = output.write_report(data, target)
    if target == out:
        for stale in (out / PARTIAL_DIR / "results.json", out / PARTIAL_DIR / "report.html"):
            stale.unlink(missing_ok=True)
    return written


def stale_rules(ns, cells) -> list[str]:
    """Rules that matched nothing: their globs name no case of the catalog, or they apply to cells of
    this run and explain none of them (the framework changed, or the entry was wrong)."""
    from normconf.golden.cases import CASES
    from normconf.golden.gradient_cases import GRADIENT_CASES
    catalog = [*CASES, *GRADIENT_CASES]
    used = {c.get("rule") for c in cells}
    applicable = {}
    for c in cells:
        exp = ns.expectations.get(c["adapter"])
        if exp is None or c["outcome"] in ("not_installed", "missing") or c.get("family") == "generated":
            continue  # a rule names a region of generated cases, not every draw in it shows the deviation
        for rule in exp.outcomes + exp.deviations:
            if rule.applies(c["adapter"], c["case"]):
                applicable[rule.id] = rule
    stale = [f"{rid}: applies to cells of this run but explained none ({rule.reason or rule.match_text})"
             for rid, rule in sorted(applicable.items()) if rid not in used]
    files = {exp.path: exp for exp in ns.expectations.values()}
    for exp in files.values():
        for rule in exp.outcomes + exp.deviations:
            generated_only = all(pattern.startswith("gen_") for pattern in rule.cases)  # a region of draws
            if not generated_only and not any(rule.names(a, case) for a in exp.adapters for case in catalog):
                stale.append(f"{rule.id}: names no case of the catalog ({', '.join(rule.cases)})")
    return stale
