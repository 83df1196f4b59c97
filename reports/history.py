"""What changed when: one family's results at successive versions (reports/history/<family>/), as a
timeline in the words of the regression check.

Each step from one version to the next is `reports.compare.compare(previous, next)`: its entries say
each change once per cause, with the cells under it ("REGRESSED keras[jax]: float64 now computed in
float32 (3 cases)").  Beside them: the matrix rows whose reading changed (a cell's label: a measured
default by its name, never by its last digits), and the packages that moved with the version (a
companion's upgrade next to its effect).  A run's label is its `sweep.version` (reports/sweep.py).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
from pathlib import Path

from normconf.adapters.cache import cache_dir
from normconf.adapters.compat import version_tuple
from normconf.judge.gradients import ROWS
from normconf.reports import results
from normconf.reports.changes import entry_line
from normconf.reports.compare import compare
from normconf.reports.gradient_compare import NOT_RECORDED, recorded

CHECKOUT_HISTORY = Path(__file__).resolve().parent / "history"  # the checkout's reports/history/ (not in the wheel)


def history_dir() -> Path | None:
    """Where the version history is read from: $NORMCONF_HISTORY_DIR (one folder per family of
    <version>.json), else the checkout's reports/history/; None outside a checkout without the variable."""
    given = os.environ.get("NORMCONF_HISTORY_DIR")
    if given:
        return Path(given)
    return CHECKOUT_HISTORY if CHECKOUT_HISTORY.is_dir() else None


def label(run: dict) -> str:
    return str(run.get("sweep", {}).get("version") or run.get("created", "?"))


def _row_changes(before: dict, after: dict) -> list[dict]:
    """Matrix rows (per adapter) whose reading changed between two runs."""
    def readings(run):
        return {(row["row"], adapter): cell.get("label", cell.get("observed"))
                for row in run["matrix"]["rows"] for adapter, cell in row["cells"].items()}
    rb, ra = readings(before), readings(after)
    rb.update(_gradient_readings(before))
    ra.update(_gradient_readings(after))
    return [{"row": row, "adapter": adapter, "before": rb[(row, adapter)], "after": ra[(row, adapter)]}
            for row, adapter in ra if (row, adapter) in rb and rb[(row, adapter)] != ra[(row, adapter)]
            and None not in (rb[(row, adapter)], ra[(row, adapter)])]


def _gradient_readings(run: dict) -> dict:
    """(gradient row, adapter) -> its outcome (results.json `gradients.rows`); nothing for a file without them."""
    return {(f"gradient: {ROWS.get(row, row)}", adapter): outcome
            for adapter, rows in (run.get("gradients") or {}).get("rows", {}).items() for row, outcome in rows.items()}


def gradient_note(step: dict) -> str | None:
    """"gradient cells: not recorded in 0.8.4" for a step one of whose files has none (never a regression)."""
    missing = [v for v, had in ((step["from"], step["gradients"]["before"]), (step["to"], step["gradients"]["after"]))
               if not had]
    return f"gradient cells: not recorded in {' and '.join(missing)}" if missing else None


NOT_BLAMED = ("python",)  # reported with the versions, but the same interpreter runs every version of a sweep
MOVES_WITH = {"jaxlib": "jax"}  # jax[cpu] pins jaxlib to jax: a bisection moves them as one


def moved_for(packages: list[dict], adapter: str) -> list[str]:
    """The packages that moved under `adapter` in a step ("jax 0.4.27 -> 0.6.0"), the framework's and its
    companions' alike: any of them can be the cause of a change."""
    return [f"{p['package']} {p['before']} -> {p['after']}" for p in packages
            if adapter in p["adapters"] and p["package"] not in NOT_BLAMED]


def _same_change(entry: dict, other: dict) -> bool:
    cases = {c["case"] for c in entry["cells"]}
    return (other["adapter"], other["label"]) == (entry["adapter"], entry["label"]) and bool(
        cases & {c["case"] for c in other["cells"]})


def blame(entry: dict, bisection: dict[str, list[dict]]) -> list[str]:
    """The packages whose move alone (bisection: package -> the entries of the step's `before` against a run
    that moved only that package) shows the entry's change on at least one of its cases."""
    return sorted(package for package, entries in bisection.items() if any(_same_change(entry, o) for o in entries))


def _attributed(entries: list[dict], packages: list[dict], bisection: dict | None) -> list[dict]:
    out = []
    for entry in entries:
        extra = {"moved": moved_for(packages, entry["adapter"])}
        if bisection:
            extra.update(blame=blame(entry, bisection), bisected=sorted(bisection))
        out.append({**entry, **extra})
    return out


def timeline(runs: list[dict], bisections: dict[str, dict] | None = None) -> dict:
    """runs ordered by version -> {"versions", "steps": [{"from", "to", "packages", "rows", "entries"}]}.
    Each entry names the packages that moved under its adapter (`moved`); where the step was bisected
    (`bisections`: the step's `to` label -> package -> runs, bisect_runs), also the ones to blame."""
    steps = []
    for before, after in zip(runs, runs[1:]):
        comparison = compare(before, after)
        bisection = None
        if bisections and label(after) in bisections:
            bisection = {package: compare(before, run)["entries"] for package, run in bisections[label(after)].items()}
        entries = [x for x in comparison["entries"] if x["what"] != NOT_RECORDED]  # said once: gradient_note
        steps.append({"from": label(before), "to": label(after), "packages": comparison["versions"],
                      "rows": _row_changes(before, after),
                      "gradients": {"before": recorded(before), "after": recorded(after)},
                      "entries": _attributed(entries, comparison["versions"], bisection),
                      "bisected": sorted(bisection) if bisection else []})
    return {"versions": [label(r) for r in runs], "steps": steps,
            "gradients_recorded": [label(r) for r in runs if recorded(r)]}


def _unit(moved: str) -> str:
    """'jaxlib 0.4.27 -> 0.6.0' -> 'jax': the package a bisection moved it with."""
    name = moved.split(" ", 1)[0]
    return MOVES_WITH.get(name, name)


def attribution(entry: dict) -> str | None:
    """Who the entry's change belongs to, when more than one package moved under its adapter."""
    moved = entry.get("moved", [])
    if len({_unit(m) for m in moved}) < 2:
        return None
    if "blame" not in entry:
        return f"moved together, not bisected: {', '.join(moved)}"
    blamed = [m for m in moved if _unit(m) in entry["blame"]]
    held = sorted({_unit(m) for m in moved} - set(entry["blame"]))
    unrun = sorted({_unit(m) for m in moved} - set(entry["bisected"]))
    if blamed:
        return f"bisected: {', '.join(blamed)}" + (f" (with {', '.join(held)} held)" if held else "")
    if unrun:
        return (f"bisected: not {', '.join(entry['bisected'])}'s move alone; {', '.join(unrun)}'s alone could not "
                f"be run (moved: {', '.join(moved)})")
    return f"bisected: no single package's move shows it alone (moved: {', '.join(moved)})"


def _packages(step: dict) -> str:
    return ", ".join(f"{p['package']} {p['before']} -> {p['after']}" for p in step["packages"]) or "same packages"


def readings(run: dict) -> list[str]:
    """One run's matrix, a line per row: what a one-version sweep shows, having no step to compare."""
    gradients = {}
    for (row, adapter), outcome in _gradient_readings(run).items():
        gradients.setdefault(row, []).append(f"{adapter} {outcome}")
    return [f"  {row['row']}: " + ", ".join(f"{adapter} {cell.get('label') or cell.get('observed') or '- (not run)'}"
                                            for adapter, cell in row["cells"].items())
            for row in run["matrix"]["rows"]] + [f"  {row}: {', '.join(cells)}" for row, cells in gradients.items()] + (
        [] if recorded(run) else ["  gradient cells: not recorded"])


def render(tl: dict) -> list[str]:
    """Plain lines: per step, the packages, the matrix rows that changed, then one line per cause."""
    lines = [f"versions: {' -> '.join(tl['versions'])}"]
    for step in tl["steps"]:
        lines.append(f"{step['from']} -> {step['to']} ({_packages(step)}):")
        note = gradient_note(step) if tl.get("gradients_recorded") else None
        lines += [f"  {note}"] if note else []
        lines += [f"  matrix: {r['row']} [{r['adapter']}]: {r['before']} -> {r['after']}" for r in step["rows"]]
        for entry in step["entries"]:
            lines.append(f"  {entry_line(entry)}")
            who = attribution(entry)
            lines += [f"      {who}"] if who else []
        if not step["rows"] and not step["entries"]:
            lines.append("  nothing normconf observes changed")
    if not tl.get("gradients_recorded"):  # files from before issue 23: absence is no change
        lines.append("gradient cells: not recorded in any of these versions")
    return lines


def paths(directory) -> list[Path]:
    """The results files of one family's history folder (<version>.json), oldest version first."""
    return sorted(Path(directory).glob("*.json"), key=lambda p: version_tuple(p.stem))


def load(directory) -> list[dict]:
    """Every results file of the folder, validated (reports/results.read: a bad file is a ResultsError)."""
    return [results.read(p) for p in paths(directory)]


def bisect_paths(directory) -> list[Path]:
    """The bisection runs of a family folder: bisect/<step's to-version>/<package>.json (normconf sweep
    --bisect), each the step's `before` with only that package moved to its `after` version."""
    return sorted(Path(directory).glob("bisect/*/*.json"))


def load_bisections(directory) -> dict[str, dict[str, dict]]:
    """to-version -> package -> results, for timeline()."""
    out: dict[str, dict[str, dict]] = {}
    for path in bisect_paths(directory):
        out.setdefault(path.parent.name, {})[path.stem] = results.read(path)
    return out


# The modules a timeline is computed by: a change to any of them computes it again.
_TIMELINE_CODE = [Path(__file__).with_name(n) for n in ("history.py", "compare.py", "changes.py", "results.py",
                                                        "schema.py", "gradient_compare.py")]


def cached_timeline(family: Path) -> dict:
    """timeline(load(family)), kept in the cache directory (adapters/cache.py) under a key of the history
    files' bytes and the code that computes it: every report shows the history, and reading and comparing
    its 16 MB costs about half a second that a run need not pay again.  A file that cannot be read is
    never cached."""
    digest = hashlib.sha256()
    for path in paths(family) + bisect_paths(family) + _TIMELINE_CODE:
        if path.parent.parent.name == "bisect":
            digest.update(path.parent.name.encode() + b"/")  # the step a bisection run belongs to
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    directory = cache_dir()
    entry = directory / "history" / f"{family.name}-{digest.hexdigest()[:32]}.json" if directory else None
    try:
        return json.loads(entry.read_text())
    except (AttributeError, OSError, ValueError):
        pass  # caching off, not there yet, or unreadable: compute it
    tl = timeline(load(family), load_bisections(family))
    if entry is not None:
        try:
            results.write_text(entry, json.dumps(tl))
        except OSError:
            pass  # a read-only cache only costs the time
    return tl


def history_html(directory=None) -> str:
    """The report's "Version history" section: per family folder under `directory` (default:
    history_dir()), its timeline.  A folder whose files cannot be read says so in one line, instead of a
    timeline; no history at all says where one would be read from."""
    e = html.escape
    directory = directory or history_dir()
    if directory is None:
        return ('<h2 id="history">Version history</h2><p><small>No version history: set NORMCONF_HISTORY_DIR '
                'to a folder of per-family results (normconf sweep), or run from normconf\'s checkout.</small></p>')
    families = sorted(p for p in Path(directory).glob("*") if p.is_dir()) if Path(directory).is_dir() else []
    if not families:
        return ""
    out = ['<h2 id="history">Version history</h2><p><small>From reports/history/ (python -m reports sweep): '
           'per family, what normconf observed to change from one version to the next.</small></p>']
    for family in families:
        try:
            tl = cached_timeline(family)
        except results.ResultsError as exc:
            out.append(f"<h3>{e(family.name)}</h3><p class=\"fail\">cannot read the history: {e(str(exc))}</p>")
            continue
        unrecorded = ("" if tl.get("gradients_recorded")
                      else "<p><small>gradient cells: not recorded in any of these versions</small></p>")
        out.append(f"<h3>{e(family.name)}: {e(' → '.join(tl['versions']))}</h3>{unrecorded}"
                   '<table class="history"><tr><th>version</th><th>matrix rows that changed</th><th>causes</th></tr>')
        for step in tl["steps"]:
            note = gradient_note(step) if tl.get("gradients_recorded") else None
            rows = "<br>".join([e(f"{r['row']} [{r['adapter']}]: {r['before']} → {r['after']}") for r in step["rows"]]
                               + ([f"<small>{e(note)}</small>"] if note else []))
            causes = "<br>".join(e(entry_line(x, limit=4)) + (f"<br><small>{e(attribution(x))}</small>"
                                                              if attribution(x) else "") for x in step["entries"])
            out.append(f"<tr><td>{e(step['from'])} → {e(step['to'])}<br><small>{e(_packages(step))}</small></td>"
                       f"<td>{rows or '-'}</td><td>{causes or 'nothing normconf observes changed'}</td></tr>")
        out.append("</table>")
    return "".join(out)
