"""Controller-only pytest plugin: gathers the cell records that workers attach to their reports,
fills in crashed and missing cells, writes results.json and report.html at the end, and compares the
run with --baseline.

- The baseline is read and validated when the run starts: a bad file ends it at once (exit 2).
- `--collect-only` writes nothing.  A run that did not cover the whole catalog (-k, --frameworks, --lf,
  deselection) is partial; one stopped early (Ctrl-C, -x, too many crashed workers) is interrupted.
  Both are marked in results.json and the page title, and neither replaces a complete report: where
  the report directory holds one, they go to its `partial/` folder beside it.
- Files are written atomically; an unwritable report directory is one line at the end, not a traceback.
- With --baseline the exit code is the check's: 1 regressions, 2 unusable input or output, 0 otherwise.
  The last line of the run is the verdict, after pytest's own summary line.
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from normconf.judge.verdict import new_cell
from normconf.reports import output, results

PARTIAL_DIR = "partial"
MUTANT_TEST = "::test_mutant_is_caught["


def _mutant_name(nodeid: str) -> str | None:
    return nodeid.split(MUTANT_TEST, 1)[1][:-1] if MUTANT_TEST in nodeid and nodeid.endswith("]") else None


def adapter_info(adapter) -> dict:
    """What an adapter declares about itself, for the report (built-ins and plug-ins alike)."""
    from normconf.adapters.remote import is_remote
    return {"momentum_form": getattr(adapter, "momentum_form", None),
            "execution_mode": getattr(adapter, "execution_mode", None),
            "child_process": getattr(adapter, "reason", None) if is_remote(adapter) else None,
            "plugin": getattr(adapter, "spec", None)}


class ReportPlugin:
    def __init__(self, config, report_dir: Path):
        self.config = config
        self.report_dir = Path(report_dir)
        self.expected: set[str] = set()
        self.expected_mutants: set[str] = set()
        self.reported: set[str] = set()
        self.cells: dict[str, dict] = {}
        self.crashes: dict[str, str] = {}
        self.mutants: dict[str, dict] = {}
        self.started = time.time()
        self.written: list[Path] = []
        self.data: dict | None = None
        self.problem: str | None = None  # the report could not be written
        self.baseline_path = config.getoption("--baseline")
        self.baseline = None
        if self.baseline_path:  # checked now: a bad baseline must not cost a whole run first
            try:
                self.baseline = results.read(self.baseline_path)
            except results.ResultsError as exc:
                pytest.exit(f"--baseline {exc}", returncode=2)

    # -- which cells should exist --
    def _expect(self, ids):
        ids = list(ids)
        self.expected.update(i for i in ids if results.split_nodeid(i))
        self.expected_mutants.update(i for i in ids if _mutant_name(i))

    def pytest_collection_finish(self, session):
        self._expect(i.nodeid for i in session.items)

    @pytest.hookimpl(optionalhook=True)  # only exists when pytest-xdist is installed
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._expect(ids)

    # -- what they were --
    def pytest_runtest_logreport(self, report):
        self.reported.add(report.nodeid)
        for key, value in report.user_properties:
            if key == "normconf_mutant":
                self.mutants[value["mutant"]] = value
        name = _mutant_name(report.nodeid)
        if name and report.failed and name not in self.mutants:
            # no kill record: its worker died (xdist: "worker crashed") or the check itself broke
            self.mutants[name] = crashed_mutant(name, str(report.longrepr)[-2000:])
        if not results.split_nodeid(report.nodeid):
            return
        for key, value in report.user_properties:
            if key == "normconf_cell":
                self.cells[report.nodeid] = value
        if report.failed and report.nodeid not in self.cells:
            self.crashes[report.nodeid] = str(report.longrepr)[-2000:]

    def _all_cells(self, stopped: bool) -> list[dict]:
        out = list(self.cells.values())
        for nodeid in sorted(self.expected - set(self.cells)):
            if stopped and nodeid not in self.reported:
                continue  # never ran: the run was stopped, not the cell
            case, adapter = results.split_nodeid(nodeid)
            cell = new_cell(case, adapter)
            if nodeid in self.crashes:
                cell.update(outcome="crashed", message=self.crashes[nodeid])
            else:
                cell.update(outcome="missing", message="no result reached the controller")
            out.append(cell)
        return out

    def _run_status(self, session, exitstatus, cells) -> dict:
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
        unran = len(self.expected) - len(cells)
        interrupted = None
        if unran > 0:  # xdist keeps its -x / crashed-workers reason on its own session object
            dsession = self.config.pluginmanager.getplugin("dsession")
            why = (session.shouldfail or session.shouldstop or getattr(dsession, "shouldstop", None)
                   or ("Ctrl-C" if exitstatus == pytest.ExitCode.INTERRUPTED else "stopped"))
            interrupted = f"{why}; {unran} selected cells did not run"
        return results.run_status(partial, interrupted)

    def pytest_sessionfinish(self, session, exitstatus):
        if self.config.option.collectonly or not (self.expected or self.expected_mutants):
            return  # collecting only, or not a conformance run (e.g. the self-tests): nothing to write
        ns = self.config.normconf
        stopped = bool(exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldfail or session.shouldstop)
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
            stale=stale_rules(ns, cells), expectation_errors=ns.expectation_errors,
            adapter_info={name: adapter_info(a) for name, a in ns.adapters.items()}, warnings=ns.warnings,
            extra=results.mutant_section(list(self.mutants.values())),
            run=self._run_status(session, exitstatus, cells))
        if self.baseline is not None:
            from normconf.reports.compare import compare, exit_code
            data["comparison"] = compare(self.baseline, data)
            data["comparison"]["baseline"]["path"] = str(self.baseline_path)
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                session.exitstatus = exit_code(data["comparison"])
        self.data = data
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
        lines = [self.problem] if self.problem else []
        if self.data is not None and self.data.get("comparison"):
            from normconf.reports.changes import verdict
            lines.append(verdict(self.data["comparison"]))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line, red="regression" in line and not line.startswith("0 "), bold=True)
            else:
                print(line)


def crashed_mutant(name: str, message: str) -> dict:
    """A kill-table row for a mutant whose check never finished: shown as crashed, not left out."""
    from normconf.judge.mutants import MUTANTS_BY_NAME
    mutant = MUTANTS_BY_NAME.get(name)
    return {"mutant": name, "bug": getattr(mutant, "bug", None), "breaks": getattr(mutant, "breaks", None),
            "killed": False, "named": False, "crashed": True, "message": message, "caught_by": [],
            "named_by": [], "margins": {}, "outcomes": {}}


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
            if not any(rule.applies(a, case) for a in exp.adapters for case in CASES):
                stale.append(f"{rule.id}: names no case of the catalog ({', '.join(rule.cases)})")
    return stale
