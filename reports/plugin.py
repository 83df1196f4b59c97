"""Controller-only pytest plugin: gathers the cell records that workers attach to their reports,
fills in crashed and missing cells, and writes results.json and report.html at the end."""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from reports import results
from judge.verdict import new_cell


class ReportPlugin:
    def __init__(self, config):
        self.config = config
        self.expected: set[str] = set()
        self.cells: dict[str, dict] = {}
        self.crashes: dict[str, str] = {}
        self.mutants: dict[str, dict] = {}
        self.started = time.time()
        self.written: list[Path] = []
        self.data: dict | None = None
        self.regressions: list[str] | None = None

    # -- which cells should exist --
    def pytest_collection_finish(self, session):
        self.expected.update(i.nodeid for i in session.items if results.split_nodeid(i.nodeid))

    @pytest.hookimpl(optionalhook=True)  # only exists when pytest-xdist is installed
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.expected.update(i for i in ids if results.split_nodeid(i))

    # -- what they were --
    def pytest_runtest_logreport(self, report):
        for key, value in report.user_properties:
            if key == "normconf_mutant":
                self.mutants[value["mutant"]] = value
        if not results.split_nodeid(report.nodeid):
            return
        for key, value in report.user_properties:
            if key == "normconf_cell":
                self.cells[report.nodeid] = value
        if report.failed and report.nodeid not in self.cells:
            # no record: the worker died (xdist reports "worker crashed") or the test itself broke
            self.crashes[report.nodeid] = str(report.longrepr)[-2000:]

    def _all_cells(self) -> list[dict]:
        out = list(self.cells.values())
        for nodeid in sorted(self.expected - set(self.cells)):
            case, adapter = results.split_nodeid(nodeid)
            cell = new_cell(case, adapter)
            if nodeid in self.crashes:
                cell.update(outcome="crashed", message=self.crashes[nodeid])
            else:
                cell.update(outcome="missing", message="no result reached the controller")
            out.append(cell)
        return out

    def pytest_sessionfinish(self, session, exitstatus):
        if not self.expected:
            return  # not a conformance run (e.g. the self-tests)
        from conftest import adapter_info
        ns = self.config.normconf
        cells = self._all_cells()
        versions, seconds = {}, defaultdict(float)
        for c in cells:
            if c.get("versions"):
                versions[c["adapter"]] = c["versions"]
            seconds[c["adapter"]] += c.get("seconds") or 0.0
        adapters = list(ns.adapters)
        data = results.assemble(
            cells, adapters=adapters, versions=versions,
            timings={"wall_s": round(time.time() - self.started, 2), "cell_s_by_adapter": dict(seconds),
                     "workers": getattr(self.config.option, "numprocesses", None) or 0},
            stale=stale_rules(ns, cells), expectation_errors=ns.expectation_errors,
            adapter_info={name: adapter_info(a) for name, a in ns.adapters.items()}, warnings=ns.warnings,
            extra=results.mutant_section(list(self.mutants.values())))
        out = Path(self.config.getoption("--report-dir"))
        if not out.is_absolute():
            out = Path(self.config.rootpath) / out
        results.write(data, out / "results.json")
        self.data = data
        from reports.html import write_html
        write_html(data, out / "report.html")
        self.written = [out / "results.json", out / "report.html"]
        baseline = self.config.getoption("--baseline")
        if baseline:
            from reports.compare import compare_files
            code, lines = compare_files(baseline, out / "results.json")
            self.regressions = lines
            if code != 0 and session.exitstatus == 0:
                session.exitstatus = code

    def pytest_terminal_summary(self, terminalreporter):
        if not self.written:
            return
        from reports.matrix import text_matrix
        data = self.data
        tr = terminalreporter
        tr.section("normconf conformance matrix")
        for warning in data["warnings"]:
            tr.write_line(f"WARNING: {warning}", yellow=True)
        tr.write_line(text_matrix(data["matrix"]))
        tr.write_line("outcomes: " + ", ".join(f"{k} {v}" for k, v in data["summary"].items() if v))
        if data.get("mutant_summary"):
            m = data["mutant_summary"]
            tr.write_line(f"mutants: {m['killed']} of {m['total']} killed, survivors: {', '.join(m['survivors']) or 'none'}")
        for rule in data["stale_expectations"]:
            tr.write_line(f"STALE expectation: {rule}")
        for err in data["expectation_errors"]:
            tr.write_line(f"EXPECTATION ERROR: {err}")
        for p in self.written:
            tr.write_line(f"wrote {p}")
        if self.regressions is not None:
            tr.section("normconf regression check against the baseline")
            for line in self.regressions or ["no regressions"]:
                tr.write_line(line)


def stale_rules(ns, cells) -> list[str]:
    """Rules that matched nothing: their globs name no case of the catalog, or they apply to cells of
    this run and explain none of them (the framework changed, or the entry was wrong)."""
    from golden.cases import CASES
    used = {c.get("rule") for c in cells}
    applicable = {}
    for c in cells:
        exp = ns.expectations.get(c["adapter"])
        if exp is None or c["outcome"] in ("not_installed", "missing"):
            continue
        for rule in exp.outcomes + exp.deviations:
            if rule.applies(c["adapter"], c["case"]):
                applicable[rule.id] = rule
    stale = [f"{rid}: applies to cells of this run but explained none ({rule.reason or rule.match})"
             for rid, rule in sorted(applicable.items()) if rid not in used]
    files = {exp.path: exp for exp in ns.expectations.values()}
    for exp in files.values():
        for rule in exp.outcomes + exp.deviations:
            if not any(rule.applies(a, case) for a in exp.adapters for case in CASES):
                stale.append(f"{rule.id}: names no case of the catalog ({', '.join(rule.cases)})")
    return stale
