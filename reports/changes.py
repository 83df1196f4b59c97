"""The comparison with a baseline (reports/compare.py) in words: terminal lines, the one-line verdict,
and the "changes since the baseline" section at the top of report.html (with the partial-run notice)."""
from __future__ import annotations

import html

from normconf.reports.results import run_label

SHOWN_CASES = 8  # the terminal names this many cases of an entry; the report and results.json name all


def e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page_title(data: dict) -> str:
    label = run_label(data)
    return "normconf conformance report" + (f" ({label})" if label else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict(comparison: dict) -> str:
    """"2 regressions against reports/baselines/pinned.json (1 improved, 483 cells not run)"."""
    where = comparison["baseline"].get("path") or "the baseline"
    if not comparison["compared"]:
        return f"nothing compared against {where}: no cell of this run is in it"
    counts = comparison["counts"]
    others = [f"{counts[k]} {k}" for k in ("improved", "changed", "new") if counts[k]]
    if comparison["not_run"]["cells"]:
        others.append(f"{comparison['not_run']['cells']} cells not run")
    tail = f" ({', '.join(others)})" if others else ""
    return f"{_plural(counts['regressed'], 'regression')} against {where}{tail}"


def _cases(entry: dict, limit: int | None) -> str:
    cells = entry["cells"]
    shown = cells if limit is None else cells[:limit]
    named = ", ".join(c["case"] + (f" [{c['detail']}]" if c["detail"] and len(cells) <= 3 else "") for c in shown)
    more = f", +{len(cells) - len(shown)} more" if len(cells) > len(shown) else ""
    return f"{_plural(len(cells), 'case')}: {named}{more}"


def entry_line(entry: dict, limit: int | None = SHOWN_CASES) -> str:
    label = entry["label"].upper() if entry["label"] == "regressed" else entry["label"]
    return f"{label:<9} {entry['adapter']}: {entry['what']} ({_cases(entry, limit)})"


def version_lines(comparison: dict) -> list[str]:
    lines = [f"{v['package']} {v['before']} -> {v['after']} ({', '.join(v['adapters'])})" for v in comparison["versions"]]
    platform = comparison["platform"]
    if platform["before"] != platform["after"]:
        lines.append(f"platform {platform['before']} -> {platform['after']} (reported, never compared)")
    return lines or ["same versions"]


def not_run_line(comparison: dict) -> str | None:
    """All the baseline's cells this run did not have, in one line."""
    nr = comparison["not_run"]
    if not nr["cells"]:
        return None
    whole = nr["whole"]
    part = [f"{a} {n}" for a, n in nr["adapters"].items() if a not in whole]
    parts = ([f"adapters not run: {', '.join(whole)}"] if whole else []) + (
        [f"cells left out: {', '.join(part)}"] if part else [])
    return f"not run: {_plural(nr['cells'], 'baseline cell')} ({'; '.join(parts)})"


def text_lines(comparison: dict) -> list[str]:
    """The terminal's section: versions, then one line per entry, then what did not run."""
    base = comparison["baseline"]
    partial = " (a partial baseline: only its cells are compared)" if (base.get("run") or {}).get("complete") is False else ""
    lines = [f"baseline {base.get('path') or ''} of {base.get('created')}{partial}"]
    lines += [f"versions: {line}" for line in version_lines(comparison)]
    lines += [entry_line(entry) for entry in comparison["entries"]] or ["no change"]
    lines += [line for line in [not_run_line(comparison)] if line]
    return lines


def changes_html(data: dict) -> str:
    """The top of report.html: a notice for a partial or interrupted run, and the changes since the
    baseline when the run was compared with one.  Everything from the data is escaped."""
    out = []
    run = data.get("run") or {}
    if not run.get("complete", True):
        out.append(f'<p id="run-notice" class="fail">This is a {e(run_label(data))}: '
                   f'{e("; ".join(run.get("reasons", [])))}. Its cells are not the whole catalog.</p>')
    comparison = data.get("comparison")
    if not comparison:
        return "".join(out)
    out.append(f'<section id="changes"><h2>Changes since the baseline</h2><p><b>{e(verdict(comparison))}</b><br>'
               f'<small>baseline of {e(comparison["baseline"].get("created"))}</small></p><ul>')
    out += [f"<li>{e(line)}</li>" for line in version_lines(comparison)]
    out.append("</ul>")
    if comparison["entries"]:
        out.append('<table id="changes-table"><tr><th>change</th><th>adapter</th><th>what</th><th>cases</th></tr>')
        for entry in comparison["entries"]:
            cls = {"regressed": "fail", "improved": "pass", "new": "unsupported"}.get(entry["label"], "xfail")
            cases = "".join(f"<li>{e(c['case'])}{' <small>' + e(c['detail']) + '</small>' if c['detail'] else ''}</li>"
                            for c in entry["cells"])
            out.append(f'<tr data-label="{e(entry["label"])}"><td class="{cls}">{e(entry["label"])}</td>'
                       f'<td>{e(entry["adapter"])}</td><td>{e(entry["what"])}</td>'
                       f'<td>{_plural(len(entry["cells"]), "case")}<ul>{cases}</ul></td></tr>')
        out.append("</table>")
    line = not_run_line(comparison)
    if line:
        out.append(f"<p><small>{e(line)}</small></p>")
    out.append("</section>")
    return "".join(out)
