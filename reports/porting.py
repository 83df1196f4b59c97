"""The porting guide, derived from the measured matrix: for each pair of adapters, the arguments that
make them agree and what no argument can reconcile."""
from __future__ import annotations

import html
import itertools


def _row(matrix, name):
    return next((r for r in matrix["rows"] if r["row"] == name), None)


def _observed(matrix, row_name, adapter):
    row = _row(matrix, row_name)
    return None if row is None else row["cells"][adapter]["observed"]


def pair_advice(matrix: dict, a: str, b: str) -> tuple[list[str], list[str]]:
    """(translations that make a and b agree, differences no argument removes)."""
    fix, cannot = [], []
    fa, fb = _observed(matrix, "momentum_form", a), _observed(matrix, "momentum_form", b)
    if fa and fb and fa != fb and {fa, fb} == {"weight_on_new", "weight_on_old"}:
        new, old = (a, b) if fa == "weight_on_new" else (b, a)
        fix.append(f"momentum: {new} momentum m is {old} momentum 1 - m (e.g. 0.1 is 0.9)")
    for row in matrix["rows"]:
        ca, cb = row["cells"][a], row["cells"][b]
        va, vb = ca["observed"], cb["observed"]
        if not va or not vb or va == vb or row["kind"] in ("derived", "measured") \
                or {ca["status"], cb["status"]} & {"mixed", "unclear", "not-run"}:
            continue
        if row["kind"] == "default":  # an explicit argument removes the difference
            what = row["key"].removeprefix("default_")
            fix.append(f"{row['row']}: {a} defaults to {va}, {b} to {vb}: pass {what} explicitly")
        elif row["row"] == "BatchNorm channels-last input":
            fix.append(f"channels-last BatchNorm: {a} {va}, {b} {vb}: pass the feature axis (axis=-1) where there is "
                       "an axis argument, move channels to dim 1 (movedim) where there is not")
        elif row["kind"] == "behaviour":
            cannot.append(f"{row['row']}: {a} {va}, {b} {vb}")
        elif row["row"] != "momentum_form":  # a convention: no argument changes it
            hint = " (rescale running_var by N/(N-1) or (N-1)/N when porting weights)" \
                if row["row"] == "running_variance" else ""
            cannot.append(f"{row['row']}: {a} {va}, {b} {vb}: no argument changes it{hint}")
    return fix, cannot


def porting_guide(matrix: dict) -> str:
    e = html.escape
    out = ['<table id="porting"><tr><th>from / to</th><th>set these to agree</th><th>cannot be made to agree</th></tr>']
    for a, b in itertools.combinations(matrix["adapters"], 2):
        fix, cannot = pair_advice(matrix, a, b)
        if not fix and not cannot:
            continue
        out.append(f"<tr><th>{e(a)} &harr; {e(b)}</th><td>{'<br>'.join(e(x) for x in fix) or '-'}</td>"
                   f"<td>{'<br>'.join(e(x) for x in cannot) or '-'}</td></tr>")
    out.append("</table>")
    return "".join(out)
