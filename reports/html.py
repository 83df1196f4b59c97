"""A self-contained HTML report (one file: no network, no scripts, styles inline) from results.json.

Every string that comes from a run (case names, adapter names, error messages, citations) goes
through html.escape: a plug-in's name or a framework's error cannot inject markup.
"""
from __future__ import annotations

import hashlib
import html
import math
from pathlib import Path

from adapters.harness import snippet_for
from reports.changes import changes_html, page_title
from reports.matrix import nonfinite_summary
from reports.porting import porting_guide

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1500px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #c9ced8;padding:4px 7px;vertical-align:top}
th{background:#eef0f5;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.agrees{box-shadow:inset 4px 0 #2e9d55}td.disagrees{box-shadow:inset 4px 0 #d0342c;font-weight:600}
td.known{box-shadow:inset 4px 0 #d08a2c}td.not-run,td.no-doc{color:#667}
.legend span{display:inline-block;padding:2px 8px;margin-right:8px;border:1px solid #c9ced8}
.pass{color:#1f7a3f}.fail,.error,.bad_output,.crashed,.missing,.timeout,.xpass{color:#b3261e;font-weight:600}
.xfail{color:#a86614}.unsupported,.not_installed{color:#667}
pre{background:#f5f6f9;padding:6px;white-space:pre-wrap;margin:2px 0;font-size:12px}
details{margin:2px 0}small{color:#556}
"""


def e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _variant_colour(value: str) -> str:
    """The same observed variant gets the same background in every column: agreement between
    frameworks is visible as equal colours along a row."""
    if not value:
        return "#ffffff"
    hue = int(hashlib.sha256(value.encode()).hexdigest()[:4], 16) % 360
    return f"hsl({hue},55%,90%)"


def _fmt(x, spec=".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "inf"
    return format(x, spec)


def matrix_table(matrix: dict) -> str:
    adapters = matrix["adapters"]
    out = ['<table id="matrix"><tr><th>convention / default / behaviour</th>']
    out += [f'<th data-adapter="{e(a)}">{e(a)}</th>' for a in adapters]
    out.append("</tr>")
    for row in matrix["rows"]:
        out.append(f'<tr data-row="{e(row["row"])}"><th>{e(row["row"])}</th>')
        for a in adapters:
            cell = row["cells"][a]
            observed = cell["observed"] or "-"
            title = f"documented: {cell.get('expected')}; {cell.get('cite') or ''}; cases: {', '.join(cell.get('cases', []))}"
            doc = "" if cell.get("expected") in (None, cell["observed"]) else f"<br><small>documented: {e(cell['expected'])}</small>"
            out.append(f'<td class="{e(cell["status"])}" data-adapter="{e(a)}" title="{e(title)}" '
                       f'style="background:{_variant_colour(cell["observed"] or "")}">{e(observed)}{doc}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def accuracy_table(cells: list[dict], adapters: list[str]) -> str:
    dtypes = ("float32", "float64", "float16", "bfloat16")
    out = ["<table id=\"accuracy\"><tr><th>adapter</th>"]
    out += [f"<th>{d}: worst ULP / error vs tolerance</th>" for d in dtypes]
    out.append("</tr>")
    for a in adapters:
        out.append(f"<tr><th>{e(a)}</th>")
        for d in dtypes:
            mine = [c for c in cells if c["adapter"] == a and c.get("dtype") == d and (c.get("accuracy") or {}).get("error")
                    is not None and c["family"] not in ("stress", "long")]
            if not mine:
                out.append('<td class="not-run">-</td>')
                continue
            worst = max(mine, key=lambda c: c["accuracy"]["error"])
            ratio = worst["accuracy"]["error"]
            cls = "agrees" if ratio <= 1 else "disagrees"
            out.append(f'<td class="num {cls}">{_fmt(max(c["accuracy"]["max_ulp"] or 0 for c in mine), ".1f")} ULP / '
                       f'{_fmt(ratio)}x <small>({e(worst["case"])})</small></td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def stress_table(cells: list[dict], adapters: list[str]) -> str:
    cases = sorted({c["case"] for c in cells if c.get("family") in ("stress", "long", "one_value_per_channel")})
    out = ["<table id=\"stress\"><tr><th>case</th>"] + [f"<th>{e(a)}</th>" for a in adapters] + ["</tr>"]
    by = {(c["case"], c["adapter"]): c for c in cells}
    for case in cases:
        out.append(f"<tr><th>{e(case)}</th>")
        for a in adapters:
            c = by.get((case, a))
            if c is None:
                out.append("<td>-</td>")
                continue
            error = (c.get("accuracy") or {}).get("error")
            ratio = "" if error is None else f" {_fmt(error)}x tol"
            behaviour = f" ({e(c['behaviour'])})" if c.get("behaviour") else ""
            nan = nonfinite_summary(c)
            nan = f"<br><small>{e(nan)}</small>" if nan else ""
            out.append(f'<td class="{e(c["outcome"])}">{e(c["outcome"])}{ratio}{behaviour}{nan}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def drilldown(cells: list[dict]) -> str:
    out = []
    for c in cells:
        acc = c.get("accuracy") or {}
        ratio = "" if acc.get("error") is None else f"error {_fmt(acc['error'])}x tolerance {_fmt(c['tolerance'])}; "
        out.append(
            f'<details class="cell" data-case="{e(c["case"])}" data-adapter="{e(c["adapter"])}">'
            f'<summary><span class="{e(c["outcome"])}">{e(c["outcome"])}</span> {e(c["case"])} @ {e(c["adapter"])}</summary>'
            f"<small>{e(ratio)}max abs {_fmt(acc.get('max_abs'))}, max rel {_fmt(acc.get('max_rel'))}, "
            f"max ULP {_fmt(acc.get('max_ulp'))}</small>"
            f"<pre>{e(c.get('message'))}</pre>"
            f"<small>{e(_conventions_text(c))}</small>"
            f"<pre>{e(snippet_for(c['adapter'], c['case']))}</pre></details>")
    return "".join(out)


def _conventions_text(c: dict) -> str:
    parts = [f"{k}: {v['observed']} (documented {v.get('expected')}, nearest rival {_fmt(v.get('margin'))}x)"
             for k, v in c.get("conventions", {}).items() if v["state"] != "not_shown"]
    parts += [f"{k}: {m['display']}" for k, m in c.get("measured", {}).items()]
    return "; ".join(parts)


def mutant_section(data: dict) -> str:
    table = data.get("mutant_kill_table")
    if not table:
        return ""
    s = data["mutant_summary"]
    out = [f"<h2>Mutants: can the suite catch plausible bugs?</h2><p>{s['killed']} of {s['total']} killed; "
           f"survivors: {e(', '.join(s['survivors']) or 'none')}.</p><table id=\"mutants\"><tr><th>mutant</th>"
           "<th>bug</th><th>killed</th><th>named by (tolerances missed)</th><th>caught by</th></tr>"]
    for row in table:
        cls = "pass" if row["killed"] else "fail"
        named = ", ".join(f"{c} ({row['margins'][c]:.3g}x)" if c in row["margins"] else c for c in row["named_by"][:4])
        out.append(f"<tr><td>{e(row['mutant'])}</td><td>{e(row.get('bug'))}</td>"
                   f"<td class=\"{cls}\">{'killed' if row['killed'] else 'crashed' if row.get('crashed') else 'SURVIVED'}</td><td>{e(named)}</td>"
                   f"<td>{len(row.get('caught_by', []))} cases</td></tr>")
    out.append("</table>")
    return "".join(out)


def render(data: dict) -> str:
    cells, adapters = data["cells"], data["adapters"]
    versions = "; ".join(f"{a}: " + ", ".join(f"{k} {v}" for k, v in vs.items()) for a, vs in data["versions"].items())
    summary = ", ".join(f'<span class="{e(k)}">{e(k)} {v}</span>' for k, v in data["summary"].items() if v)
    dec = data.get("decisiveness", {})
    stale = "".join(f"<li>{e(s)}</li>" for s in data.get("stale_expectations", []) + data.get("expectation_errors", []))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(page_title(data))}</title>
<style>{STYLE}</style></head><body>
<h1>normconf: LayerNorm and BatchNorm conformance</h1>
<p><small>{e(data.get('created'))} · {e(data['platform'].get('system'))} · python {e(data['platform'].get('python'))}<br>{e(versions)}</small></p>
<p>{summary}</p>
{changes_html(data)}
<h2>Conformance matrix</h2>
<p class="legend"><span style="box-shadow:inset 4px 0 #2e9d55">as documented</span><span style="box-shadow:inset 4px 0 #d0342c">differs from the documentation</span><span style="box-shadow:inset 4px 0 #d08a2c">known deviation</span>
Same background colour along a row = same behaviour in those frameworks. Hover a cell for its citation and cases.</p>
{matrix_table(data['matrix'])}
<p><small>Smallest decisiveness margin of the fixtures: {_fmt(dec.get('smallest_fixture_margin'))}x
({e(dec.get('smallest_fixture_margin_case'))}); smallest margin seen in this run: {_fmt(dec.get('smallest_observed_margin'))}x
({e(dec.get('smallest_observed_margin_cell'))}).</small></p>
{('<h2>Expectation entries that matched nothing</h2><ul>' + stale + '</ul>') if stale else ''}
<h2>Porting guide</h2>
{porting_guide(data['matrix'])}
<h2>Accuracy per framework and dtype</h2>
<p><small>Worst ULP error of the output dtype and worst error against the case's tolerance, over the non-stress cases.</small></p>
{accuracy_table(cells, adapters)}
<h2>Stress inputs</h2>
{stress_table(cells, adapters)}
{mutant_section(data)}
<h2>Every cell</h2>
{drilldown(cells)}
</body></html>
"""


def write_html(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
