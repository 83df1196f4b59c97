"""A dead run's partial report, from its journal (normconf/journal.py): the next run into the same
report directory writes it, to <report dir>/recovered/, before it starts: a process that died (os._exit in
a plug-in under -n 0, a kill, a plug-in stopped for swallowing its deadline) still leaves a report naming
the cell it was running.  recovered/ holds the last such report until it is deleted or another replaces it."""
from __future__ import annotations

from pathlib import Path

from normconf import journal
from normconf.judge.verdict import new_cell
from normconf.records import crashed_mutant, mutant_name
from normconf.reports import output, results

RECOVERED_DIR = "recovered"  # its own folder: the next run's report, partial or not, never replaces it


def recover(report_dir: Path, owner: dict) -> str | None:
    """Write the dead owner's partial report; the line saying so, or None when it left no journal."""
    records = journal.read(report_dir / journal.JOURNAL)
    header = next((r["run"] for r in records if "run" in r), None)
    if header is None:
        return None
    expected = {i for r in records for i in r.get("expected", ())}
    cells = {r["nodeid"]: r["cell"] for r in records if "cell" in r and "nodeid" in r}
    cells.update({r["final"]: r["cell"] for r in records if "final" in r})  # stopped for a swallowed deadline
    mutants = {r["nodeid"]: r["mutant"] for r in records if "mutant" in r}
    running = [r["start"] for r in records if "start" in r and r["start"] not in cells and r["start"] not in mutants]
    pid = owner.get("pid", "?")
    why = f"the run's process (pid {pid}) ended while this ran; recovered from the run's journal"
    for nodeid in running:
        if results.split_nodeid(nodeid):
            cells[nodeid] = {**new_cell(*results.split_nodeid(nodeid)), "outcome": "crashed", "message": why}
        elif mutant_name(nodeid):
            mutants[nodeid] = crashed_mutant(mutant_name(nodeid), why)
    unran = len(expected - set(cells) - set(mutants))
    died = f"the process (pid {pid}) died while running {', '.join(running) or 'no cell'}; {unran} selected " \
           f"cells and mutant checks did not run"
    data = results.assemble(
        list(cells.values()), adapters=header["adapters"],
        versions={c["adapter"]: c["versions"] for c in cells.values() if c.get("versions")},
        timings={"wall_s": None, "cell_s_by_adapter": {}, "workers": header.get("workers", 0)}, stale=[],
        expectation_errors=header.get("expectation_errors", []), adapter_info=header.get("adapter_info"),
        warnings=header.get("warnings", []), extra=results.mutant_section(list(mutants.values())),
        run=results.run_status(header.get("partial", []), died))
    written = output.write_report(data, report_dir / RECOVERED_DIR)
    (report_dir / journal.JOURNAL).unlink(missing_ok=True)
    return f"an earlier run into this folder died ({died}): its partial report is in {written[0].parent}"
