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
from normconf.reports import results
from normconf.reports.changes import entry_line
from normconf.reports.compare import compare

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
    return [{"row": row, "adapter": adapter, "before": rb[(row, adapter)], "after": ra[(row, adapter)]}
            for row, adapter in ra if (row, adapter) in rb and rb[(row, adapter)] != ra[(row, adapter)]
            and None not in (rb[(row, adapter)], ra[(row, adapter)])]


def timeline(runs: list[dict]) -> dict:
    """runs ordered by version -> {"versions", "steps": [{"from", "to", "packages", "rows", "entries"}]}."""
    steps = []
    for before, after in zip(runs, runs[1:]):
        comparison = compare(before, after)
        steps.append({"from": label(before), "to": label(after), "packages": comparison["versions"],
                      "rows": _row_changes(before, after), "entries": comparison["entries"]})
    return {"versions": [label(r) for r in runs], "steps": steps}


def _packages(step: dict) -> str:
    return ", ".join(f"{p['package']} {p['before']} -> {p['after']}" for p in step["packages"]) or "same packages"


def render(tl: dict) -> list[str]:
    """Plain lines: per step, the packages, the matrix rows that changed, then one line per cause."""
    lines = [f"versions: {' -> '.join(tl['versions'])}"]
    for step in tl["steps"]:
        lines.append(f"{step['from']} -> {step['to']} ({_packages(step)}):")
        lines += [f"  matrix: {r['row']} [{r['adapter']}]: {r['before']} -> {r['after']}" for r in step["rows"]]
        lines += [f"  {entry_line(e)}" for e in step["entries"]]
        if not step["rows"] and not step["entries"]:
            lines.append("  nothing normconf observes changed")
    return lines


def paths(directory) -> list[Path]:
    """The results files of one family's history folder (<version>.json), oldest version first."""
    return sorted(Path(directory).glob("*.json"), key=lambda p: version_tuple(p.stem))


def load(directory) -> list[dict]:
    """Every results file of the folder, validated (reports/results.read: a bad file is a ResultsError)."""
    return [results.read(p) for p in paths(directory)]


# The modules a timeline is computed by: a change to any of them computes it again.
_TIMELINE_CODE = [Path(__file__).with_name(n) for n in ("history.py", "compare.py", "changes.py", "results.py",
                                                        "schema.py")]


def cached_timeline(family: Path) -> dict:
    """timeline(load(family)), kept in the cache directory (adapters/cache.py) under a key of the history
    files' bytes and the code that computes it: every report shows the history, and reading and comparing
    its 16 MB costs about half a second that a run need not pay again.  A file that cannot be read is
    never cached."""
    digest = hashlib.sha256()
    for path in paths(family) + _TIMELINE_CODE:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    directory = cache_dir()
    entry = directory / "history" / f"{family.name}-{digest.hexdigest()[:32]}.json" if directory else None
    try:
        return json.loads(entry.read_text())
    except (AttributeError, OSError, ValueError):
        pass  # caching off, not there yet, or unreadable: compute it
    tl = timeline(load(family))
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
        out.append(f"<h3>{e(family.name)}: {e(' → '.join(tl['versions']))}</h3>"
                   '<table class="history"><tr><th>version</th><th>matrix rows that changed</th><th>causes</th></tr>')
        for step in tl["steps"]:
            rows = "<br>".join(e(f"{r['row']} [{r['adapter']}]: {r['before']} → {r['after']}") for r in step["rows"])
            causes = "<br>".join(e(entry_line(x, limit=4)) for x in step["entries"])
            out.append(f"<tr><td>{e(step['from'])} → {e(step['to'])}<br><small>{e(_packages(step))}</small></td>"
                       f"<td>{rows or '-'}</td><td>{causes or 'nothing normconf observes changed'}</td></tr>")
        out.append("</table>")
    return "".join(out)
