"""The report's "Every cell": one section per adapter, outcomes in order of urgency (failures, then
known deviations, then what did not run, then passes), each cell with its figures, failures, NaN counts,
conventions and a snippet that reproduces it (a plug-in's through its spec)."""
from __future__ import annotations

import html
import math

from normconf.adapters.harness import snippet_for
from normconf.reports.matrix import nonfinite_summary

ORDER = ("fail", "error", "bad_output", "timeout", "crashed", "missing", "xpass", "xfail", "unsupported",
         "not_installed", "pass")
OPEN = ORDER[:8]  # groups shown unfolded: something needs a look, or a known deviation
PROBLEMS = ORDER[:7]  # an adapter with one of these is shown unfolded
MARK = {"pass": "✓", "xfail": "⚠", "unsupported": "–", "not_installed": "–"}


def e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _g(x) -> str:
    return "-" if x is None else "inf" if isinstance(x, float) and not math.isfinite(x) else f"{x:.3g}"


def _figures(c: dict) -> str:
    acc = c.get("accuracy") or {}
    parts = []
    if acc:
        error = "no finite error" if acc.get("error") is None else f"error {_g(acc['error'])}x tolerance"
        parts.append(f"{error} ({_g(c.get('tolerance'))}) in {acc.get('worst_output')}")
        parts.append(f"max abs {_g(acc.get('max_abs'))}, max rel {_g(acc.get('max_rel'))}, max ULP {_g(acc.get('max_ulp'))}")
    nan = nonfinite_summary(c)
    if nan:
        parts.append(f"non-finite: {nan}")
    if c.get("graph"):  # an ONNX column: what its graph held (BatchNormalization training_mode, stash_type)
        parts.append(f"graph: {c['graph']}")
    return "; ".join(parts)


def _conventions(c: dict) -> str:
    rows = [f"<tr><td>{e(k)}</td><td>{e(v['observed'])}</td><td>{e(v.get('expected') or '-')}</td>"
            f"<td>{e(v.get('status'))}</td><td>{_g(v.get('margin'))}</td></tr>"
            for k, v in c.get("conventions", {}).items() if v.get("state") != "not_shown"]
    rows += [f"<tr><td>{e(k)}</td><td>{e(m.get('display'))}</td><td>{e(m.get('expected') if m.get('expected') is not None else '-')}"
             f"</td><td>{e(m.get('status'))}</td><td></td></tr>" for k, m in c.get("measured", {}).items()]
    if not rows:
        return ""
    return ('<table class="small"><tr><th>convention / default</th><th>observed</th><th>documented</th>'
            f"<th>status</th><th>nearest rival (tolerances)</th></tr>{''.join(rows)}</table>")


def _message(c: dict) -> str:
    """The message, less what the failures list already says (a known deviation keeps its reason)."""
    message = c.get("message") or ""
    if not c.get("failures"):
        return message
    known = message.rpartition(" [known: ")[2].rstrip("]") if " [known: " in message else ""
    return f"known deviation {c.get('rule')}: {known}" if known else f"rule: {c['rule']}" if c.get("rule") else ""


def _cell(c: dict, spec: str | None) -> str:
    failures = "".join(f"<li><b>{e(f['kind'])}</b>: {e(f['message'])}</li>" for f in c.get("failures", []))
    message = _message(c)
    return (f'<details class="cell" data-case="{e(c["case"])}" data-adapter="{e(c["adapter"])}">'
            f'<summary>{e(MARK.get(c["outcome"], "✗"))} {e(c["case"])} <small>{e(_figures(c))}</small></summary>'
            + (f"<ul>{failures}</ul>" if failures else "") + (f"<pre>{e(message)}</pre>" if message else "")
            + _conventions(c) + f"<pre>{e(snippet_for(c['adapter'], c['case'], spec))}</pre></details>")


def drilldown(data: dict) -> str:
    info = data.get("adapter_info") or {}
    out = []
    for adapter in data["adapters"]:
        mine = [c for c in data["cells"] if c["adapter"] == adapter]
        spec = (info.get(adapter) or {}).get("plugin")
        by = {o: [c for c in mine if c["outcome"] == o] for o in ORDER}
        by.update({o: [c for c in mine if c["outcome"] == o] for o in {c["outcome"] for c in mine} - set(ORDER)})
        counts = ", ".join(f"{o} {len(cs)}" for o, cs in by.items() if cs)
        groups = "".join(
            f'<details class="outcome" data-outcome="{e(o)}"{" open" if o in OPEN else ""}>'
            f'<summary>{e(o)} ({len(cs)})</summary>{"".join(_cell(c, spec) for c in cs)}</details>'
            for o, cs in by.items() if cs)
        problems = any(by[o] for o in PROBLEMS)
        out.append(f'<details class="adapter" data-adapter="{e(adapter)}"{" open" if problems else ""}>'
                   f"<summary>{e(adapter)}: {e(counts)}</summary>{groups}</details>")
    return "".join(out)
