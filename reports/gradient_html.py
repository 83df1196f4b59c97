"""The report's gradient block (issue 23 item 4): per adapter, the gradient matrix rows (through the batch
statistics, dtype, dgamma/dbeta accumulation in float16/bfloat16, accuracy at large offsets, eval-mode
gradients) with the worst gradient and its case, then every gradient cell's figures; and the porting guide's
gradient advice.  Self-contained like the page (reports/html.py): every string from a run is escaped."""
from __future__ import annotations

import html

from normconf.golden.gradient_cases import GRADIENT_CASES
from normconf.judge.gradients import ROWS
from normconf.reports.gradient_rows import porting_lines, readings
from normconf.reports.palette import MARKS

STATUS = {"within": "agrees", "misses": "disagrees", "unsupported": "no-doc", "not run": "not-run"}
OUTPUTS = ("y", "dx", "dgamma", "dbeta")


def e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _mark(reading) -> str:
    status = "known" if reading.outcome == "xfail" else STATUS[reading.kind]
    symbol, word = MARKS[status]
    return f'<span class="mk" title="{e(word)}">{e(symbol)}</span>'


def _ratio(r) -> str:
    return "non-finite" if r is None else f"{r:.3g}"


def rows_table(gradients: dict, adapters: list[str]) -> str:
    table = readings(gradients, adapters)
    out = ['<table id="gradient-rows"><tr><th>gradient row</th>'] + [f"<th>{e(a)}</th>" for a in adapters] + ["</tr>"]
    for row, title in ROWS.items():
        out.append(f'<tr data-row="{e(row)}"><th>{e(title)}</th>')
        for a in adapters:
            r = table[row][a]
            cls = "not-run" if r.kind == "not run" else ""
            out.append(f'<td class="{cls}" data-adapter="{e(a)}" data-outcome="{e(r.outcome)}">{_mark(r)} '
                       f'{e(r.text())}<span class="d">{e(", ".join(r.cases))}</span></td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def cells_details(gradients: dict, adapters: list[str]) -> str:
    """Every gradient cell per adapter, folded unless one of its cells fails."""
    out = []
    for a in adapters:
        mine = [c for c in gradients.get("cells", []) if c["adapter"] == a]
        if not mine:
            continue
        bad = any(c["outcome"] not in ("pass", "xfail", "unsupported", "not_installed") for c in mine)
        out.append(f'<details class="gradient-cells"{" open" if bad else ""}><summary>{e(a)}: {len(mine)} gradient '
                   'cells</summary><table class="small"><tr><th>case</th><th>row</th><th>dtype</th><th>outcome</th>'
                   + "".join(f"<th>{o} (&times; tol.)</th>" for o in OUTPUTS) + "<th>conventions</th><th>message</th></tr>")
        for c in mine:
            case = GRADIENT_CASES.get(c["case"])
            ratios = "".join(f'<td class="num">{_ratio(c["ratios"][o]) if o in c.get("ratios", {}) else "-"}</td>'
                             for o in OUTPUTS)
            conventions = ", ".join(f"{k}: {v}" for k, v in c.get("conventions", {}).items())
            out.append(f'<tr data-case="{e(c["case"])}"><td>{e(c["case"])}</td>'
                       f'<td>{e(ROWS.get(case.row, case.row) if case else "-")}</td><td>{e(case.dtype if case else "-")}'
                       f'</td><td class="{e(c["outcome"])}">{e(c["outcome"])}</td>{ratios}<td>{e(conventions)}</td>'
                       f'<td><small>{e(c["message"])}</small></td></tr>')
        out.append("</table></details>")
    return "".join(out)


def gradient_block(data: dict) -> str:
    """The report's "Gradients" section; one line where the run recorded no gradient cells."""
    gradients = data.get("gradients")
    if not gradients or not gradients.get("cells"):
        return ('<h2 id="gradients">Gradients</h2><p><small>No gradient cells in this run (results files from '
                'before issue 23 did not record them).</small></p>')
    adapters = [a for a in data["adapters"] if a in gradients["rows"]]
    return (f'<h2 id="gradients">Gradients</h2><p><small>Per adapter, each gradient row: the worst of its cells '
            f'(dx, dgamma, dbeta and the forward y of one call, each against the float64 analytic reference in '
            f'its own derived tolerance), the worst output with its case, and the known deviation that explains '
            f'a miss. {MARKS["agrees"][0]} within tolerance, {MARKS["known"][0]} known deviation, '
            f'{MARKS["disagrees"][0]} misses.</small></p>{rows_table(gradients, adapters)}'
            f'<h3>Every gradient cell</h3>{cells_details(gradients, adapters)}')


def porting_html(gradients: dict | None, adapters: list[str]) -> str:
    """The porting guide's gradient part: where two frameworks' gradients differ, from the measured rows."""
    ran = [a for a in adapters if a in (gradients or {}).get("rows", {})]
    if len(ran) < 2:  # no pair to advise
        return ""
    lines = porting_lines(gradients, ran)
    body = "".join(f"<li>{e(line)}</li>" for line in lines) or "<li>every pair's gradients agree</li>"
    return f'<div class="pair" id="porting-gradients"><h3>Gradients: where they differ</h3><ul>{body}</ul></div>'
