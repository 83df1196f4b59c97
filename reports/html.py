"""A self-contained HTML report (one file: no network, no scripts, styles inline) from results.json.

Every string that comes from a run (case names, adapter names, error messages, citations) goes
through html.escape: a plug-in's name or a framework's error cannot inject markup.

Matrix cells: the background says what was observed (reports/palette.py: equal labels along a row,
equal colours), the mark says what the documentation says (✓ ✗ ⚠ ? ○ –, with words where it matters),
so the page reads the same without colour.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from normconf.reports.changes import changes_html, page_title
from normconf.reports.details import drilldown
from normconf.reports.gradient_html import gradient_block
from normconf.reports.history import history_html
from normconf.reports.matrix import nonfinite_summary
from normconf.reports.palette import MARKS, label_of, row_colours
from normconf.reports.porting import porting_guide
from normconf.reports.results import OUTCOMES

STRESS_FAMILIES = ("stress", "long", "one_value_per_channel")  # the stress table's; the accuracy table has the rest
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:20px 24px;color:#1d2330;max-width:1352px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ccd}
h3{font-size:15px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #c9ced8;padding:3px 6px;vertical-align:top}
th{background:#eef0f5;text-align:left;font-weight:600}td.num{font-variant-numeric:tabular-nums}
#head{display:flex;gap:28px;align-items:flex-start}#head p{margin:2px 0}
table.small{font-size:12px}table.small td,table.small th{padding:1px 6px}
#matrix{font-size:13px;table-layout:fixed;width:100%}#matrix th.row{width:255px}
#matrix td{overflow-wrap:anywhere}#matrix td.not-run{color:#667;background:#fff}
.mk{font-weight:700;margin:0 3px}.word{font-size:11px;display:block}
.key{font-weight:400;font-size:11px;color:#333}.key i{display:inline-block;width:10px;height:10px;
border:1px solid #777;margin:0 3px 0 6px;vertical-align:-1px}
.legend{font-size:13px}.legend b{margin:0 3px 0 10px}
small,.d{color:#3d4452;font-size:11px}.d{display:block}
.bad{color:#b3261e;font-weight:600}.known{color:#8a5300}.ok{color:#1f6b3a}.muted{color:#667}
.pair{border-left:3px solid #ccd;padding:0 0 0 10px;margin:10px 0}.pair ul{margin:2px 0 6px}
code,pre{font-size:12px}pre{background:#f5f6f9;padding:6px;white-space:pre-wrap;margin:2px 0}
.nowrap{white-space:nowrap}details{margin:2px 0}details.adapter>summary{font-weight:600;font-size:15px}
details details{margin-left:18px}
"""


def e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(x, spec=".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "inf"
    return format(x, spec)


def times(error, unit: str = "") -> str:
    """An error in tolerances; None is what NaN or inf outputs leave (no finite error)."""
    return "no finite error" if error is None else f"{_fmt(error)}&times;{unit}"


def mark(status: str, words: bool = False) -> str:
    symbol, word = MARKS.get(status, ("", status))
    text = f'<span class="mk" title="{e(word)}">{e(symbol)}</span>'
    return text + (f'<span class="word">{e(word)}</span>' if words else "")


def _hover(cell: dict, row: dict) -> str:
    """Only what the cell has: never "None"."""
    parts = [MARKS.get(cell["status"], ("", cell["status"]))[1]]
    if cell.get("expected") is not None:
        parts.append(f"documented: {cell['expected']}")
    if cell.get("cite"):
        parts.append(cell["cite"])
    if row["kind"] == "default" and cell.get("detail"):
        parts.append(f"measured: {cell['detail']}")
    if cell.get("cases"):
        parts.append(f"cases: {', '.join(cell['cases'])}")
    if cell.get("unclear"):
        parts.append(f"unclear in: {', '.join(cell['unclear'])}")
    return "\n".join(parts)


def _matrix_cell(row: dict, adapter: str, colours: dict) -> str:
    cell = row["cells"][adapter]
    label, status = label_of(cell), cell["status"]
    if label is None:
        return f'<td class="not-run" data-adapter="{e(adapter)}">not run {mark("not-run")}</td>'
    body = f'<span class="v">{e(label)}</span>{mark(status)}'
    if status == "disagrees":
        body += f'<span class="d">documented: {e(cell.get("expected"))}</span>'
    elif status == "known":
        body += '<span class="d">known deviation</span>'
    if cell.get("detail") and (row["kind"] != "default" or status == "unclear"):
        body += f'<span class="d">{e(cell["detail"])}</span>'
    return (f'<td class="{e(status)}" data-adapter="{e(adapter)}" data-label="{e(label)}" '
            f'title="{e(_hover(cell, row))}" style="background:{colours.get(label, "#fff")}">{body}</td>')


def matrix_table(matrix: dict) -> str:
    adapters = matrix["adapters"]
    out = ['<table id="matrix"><tr><th class="row">convention / default / behaviour</th>']
    # a line may break before "[": keras[tensorflow] then fits its column
    out += [f'<th data-adapter="{e(a)}">{e(a).replace("[", "<wbr>[")}</th>' for a in adapters]
    out.append("</tr>")
    for row in matrix["rows"]:
        colours = row_colours(row, adapters)
        key = "".join(f'<i style="background:{c}"></i>{e(label)}' for label, c in colours.items())
        key = f'<div class="key">{key}</div>' if len(colours) > 1 else ""
        out.append(f'<tr data-row="{e(row["row"])}"><th class="row">{e(row["row"])}{key}</th>')
        out += [_matrix_cell(row, a, colours) for a in adapters]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def matrix_legend() -> str:
    shown = {k: v for k, v in MARKS.items() if k not in ("mixed", "unclear")}
    marks = "".join(f"<b>{e(symbol)}</b>{e(word)}" for symbol, word in shown.values()) + "<b>?</b>mixed or unclear"
    return (f'<p class="legend">Marks: {marks}.<br>Background: along a row, cells with the same value share a colour '
            "and different values get clearly different ones (Paul Tol's colour-blind-safe light palette, assigned "
            "per row: documented values first, then column order), listed under the row's title; a row where all "
            "agree stays white. Colours say nothing about right or wrong: the marks do. Hover a cell for its "
            "citation and cases.</p>")


def _accuracy_status(c: dict) -> str:
    error = (c.get("accuracy") or {}).get("error")
    if error is not None and error <= 1 and not nonfinite_summary(c):
        return "agrees"
    return "known" if c["outcome"] == "xfail" else "disagrees"


def _error(c: dict) -> float:
    error = (c.get("accuracy") or {}).get("error")
    return math.inf if error is None else error


def accuracy_table(cells: list[dict], adapters: list[str]) -> str:
    dtypes = ("float32", "float64", "float16", "bfloat16")
    out = ['<table id="accuracy"><tr><th>adapter</th>']
    out += [f"<th>{d}</th>" for d in dtypes]
    out.append("</tr>")
    for a in adapters:
        out.append(f"<tr><th>{e(a)}</th>")
        for d in dtypes:
            mine = [c for c in cells if c["adapter"] == a and c.get("dtype") == d and c.get("accuracy")
                    and c["family"] not in STRESS_FAMILIES]
            out.append(_accuracy_cell(mine) if mine else '<td class="muted">not run</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _accuracy_cell(mine: list[dict]) -> str:
    worst = max(mine, key=_error)
    ulp = max(mine, key=lambda c: c["accuracy"].get("max_ulp") or 0.0)
    status = _accuracy_status(worst)
    lines = [f'{mark(status)} {times(worst["accuracy"]["error"], " tolerance")} <small>({e(worst["case"])})</small>'
             + (' <span class="known">known deviation</span>' if status == "known" else "")]
    unexpected = [c for c in mine if _accuracy_status(c) == "disagrees"]
    if status == "known" and unexpected:
        other = max(unexpected, key=_error)
        lines.append(f'{mark("disagrees")} {times(other["accuracy"]["error"])} <small>({e(other["case"])})</small>')
    lines.append(f'{_fmt(ulp["accuracy"].get("max_ulp"), ".3g")} ULP <small>({e(ulp["case"])})</small>')
    lines += [f'<span class="bad">{e(nan)}</span> <small>({e(c["case"])})</small>'
              for c in mine if (nan := nonfinite_summary(c))]
    return f'<td class="num">{"<br>".join(lines)}</td>'


def stress_table(cells: list[dict], adapters: list[str]) -> str:
    cases = sorted({c["case"] for c in cells if c.get("family") in STRESS_FAMILIES})
    out = ['<table id="stress"><tr><th>case</th>'] + [f"<th>{e(a)}</th>" for a in adapters] + ["</tr>"]
    by = {(c["case"], c["adapter"]): c for c in cells}
    for case in cases:
        out.append(f"<tr><th>{e(case)}</th>")
        for a in adapters:
            c = by.get((case, a))
            out.append('<td class="muted">-</td>' if c is None else _stress_cell(c))
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _stress_cell(c: dict) -> str:
    if c["outcome"] in ("unsupported", "not_installed", "missing"):
        return f'<td class="muted" data-case="{e(c["case"])}" data-adapter="{e(c["adapter"])}">{e(c["outcome"])}</td>'
    status = ("agrees" if c["outcome"] == "pass" else "known" if c["outcome"] == "xfail" else "disagrees")
    acc = c.get("accuracy") or {}
    first = [e(c["behaviour"])] * bool(c["behaviour"]) + [times(acc.get("error"))] * bool(acc)
    parts = [f'{mark(status)} {" ".join(first) or e(c["outcome"])}']
    if status != "agrees":
        parts.append(f'<span class="{"known" if status == "known" else "bad"}">{e(MARKS[status][1])}</span>')
    nan = nonfinite_summary(c)
    if nan:
        parts.append(f'<span class="bad">{e(nan)}</span>')
    return f'<td data-case="{e(c["case"])}" data-adapter="{e(c["adapter"])}">{"<br>".join(parts)}</td>'


def mutant_section(data: dict) -> str:
    table = data.get("mutant_kill_table")
    if not table:
        return ""
    s = data["mutant_summary"]
    out = [f"<h2>Mutants: can the suite catch plausible bugs?</h2><p>{s['killed']} of {s['total']} killed; "
           f"survivors: {e(', '.join(s['survivors']) or 'none')}.</p><table id=\"mutants\"><tr><th>mutant</th>"
           "<th>bug</th><th>killed</th><th>named by (tolerances missed)</th><th>caught by</th>"
           "<th>only by generated cases</th></tr>"]
    for row in table:
        named = ", ".join(f"{c} ({row['margins'][c]:.3g}x)" if c in row["margins"] else c for c in row["named_by"][:4])
        lost = "crashed" if row.get("crashed") else "SURVIVED"
        killed = f"<td class='nowrap'>{mark('agrees')}killed</td>" if row["killed"] else \
            f"<td class='nowrap bad'>{mark('disagrees')}{lost}</td>"
        out.append(f"<tr><td>{e(row['mutant'])}</td><td>{e(row.get('bug'))}</td>{killed}<td>{e(named)}</td>"
                   f"<td>{len(row.get('caught_by', []))} cases</td><td>{'yes' if row.get('only_generated') else ''}</td></tr>")
    out.append("</table>")
    return "".join(out)


def runs_in(info: dict) -> str:
    """How an adapter runs: its execution mode, and why it has a child process or where a plug-in is from."""
    parts = [info.get("execution_mode") or ""]
    if info.get("child_process"):
        parts.append(f"in a child process: {info['child_process']}")
    if info.get("plugin"):
        parts.append(f"plug-in {info['plugin']}")
    return ", ".join(p for p in parts if p)


def versions_table(data: dict) -> str:
    """Adapters with the same versions share a row; python and numpy, common to all, go in the caption."""
    info = data.get("adapter_info") or {}
    common = {k: v for k, v in sorted(next(iter(data["versions"].values()), {}).items())
              if k in ("python", "numpy") and all(vs.get(k) == v for vs in data["versions"].values())}
    rows: dict[tuple, list[str]] = {}
    for a in data["adapters"]:
        vs = ", ".join(f"{k} {v}" for k, v in sorted(data["versions"].get(a, {}).items()) if k not in common)
        vs = vs or ("numpy only" if data["versions"].get(a) else "-")
        where = runs_in(info.get(a) or {})
        rows.setdefault((vs or "-", where), []).append(a)
    caption = ", ".join(f"{k} {v}" for k, v in common.items())
    body = "".join(f"<tr><td>{e(', '.join(ads))}</td><td>{e(vs)}</td><td>{e(where)}</td></tr>"
                   for (vs, where), ads in rows.items())
    return (f'<table class="small" id="versions"><tr><th>adapters</th><th>versions ({e(caption)})</th>'
            f"<th>runs in</th></tr>{body}</table>")


def header(data: dict) -> str:
    order = list(OUTCOMES) + sorted(set(data["summary"]) - set(OUTCOMES))  # the same from memory or from JSON
    summary = " · ".join(f"{e(k)} {data['summary'][k]}" for k in order if data["summary"].get(k))
    warnings = "".join(f'<p class="bad">{mark("disagrees")} {e(w)}</p>' for w in data.get("warnings", []))
    return (f'<div id="head"><div><h1>normconf: LayerNorm and BatchNorm conformance</h1>'
            f"<p><small>{e(data.get('created'))} · {e(data['platform'].get('system'))} · "
            f"python {e(data['platform'].get('python'))}</small></p><p>Outcomes: {summary}</p></div>"
            f"{versions_table(data)}</div>{warnings}")


def render(data: dict) -> str:
    """The page: header (outcomes, versions, warnings), then what changed since a baseline where the
    regression check adds it, the matrix, the porting guide, accuracy, stress, mutants, every cell."""
    cells, adapters = data["cells"], data["adapters"]
    dec = data.get("decisiveness", {})
    stale = "".join(f"<li>{e(s)}</li>" for s in data.get("stale_expectations", []) + data.get("expectation_errors", []))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(page_title(data))}</title>
<style>{STYLE}</style></head><body>
{header(data)}
{changes_html(data)}
<h2>Conformance matrix</h2>
{matrix_legend()}
{matrix_table(data['matrix'])}
<p><small>Smallest decisiveness margin of the fixtures: {_fmt(dec.get('smallest_fixture_margin'))}x
({e(dec.get('smallest_fixture_margin_case'))}); smallest margin seen in this run: {_fmt(dec.get('smallest_observed_margin'))}x
({e(dec.get('smallest_observed_margin_cell'))}).</small></p>
{('<h2>Expectation entries that matched nothing</h2><ul>' + stale + '</ul>') if stale else ''}
<h2>Porting guide</h2>
<p><small>Per pair of frameworks, in each one's own argument names. Adapters that behave alike are one group.
Cells that are mixed, unclear or not shown give no advice.</small></p>
{porting_guide(data['matrix'], data.get('adapter_info'), data.get('gradients'))}
<h2>Accuracy per framework and dtype</h2>
<p><small>Over the non-stress cases: the worst error in tolerances and the worst ULP error, each with its case
(they may differ). ULPs are the output dtype's spacing at max(|expected|, rms(expected)), so outputs near zero
do not inflate them. NaN and inf counts where the formula gives numbers.</small></p>
{accuracy_table(cells, adapters)}
<h2>Stress inputs</h2>
<p><small>Error in tolerances (&times;), what the layer did where it is a behaviour, NaN and inf counts.</small></p>
{stress_table(cells, adapters)}
{gradient_block(data)}
{mutant_section(data)}
{history_html()}
<h2>Every cell</h2>
<p><small>Grouped by adapter and outcome, failures and deviations first; each with a snippet that reproduces it.</small></p>
{drilldown(data)}
</body></html>
"""


def write_html(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
