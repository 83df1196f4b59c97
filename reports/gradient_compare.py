"""The regression check for gradient cells (issue 23): results.json's `gradients` section compared
cell by cell with the baseline's, into the same grouped entries as the forward cells (reports/compare.py),
kind "gradient", worded with the matrix row the cell answers ("gradient, dgamma/dbeta accumulation: ...").

Facts, never text, on compare.py's scales:
- the outcome class (compare.outcome_label): a gradient cell that passed and fails now is regressed;
- an identified gradient convention: a variant named on both sides ("neither" names none) and different,
  towards the documented one (first in GRADIENT_CONVENTIONS) improves, away from it regresses;
- accuracy: the worst output's error in tolerances, changed when over one tolerance and 2x apart;
- output dtypes, as categories: a coarser one regresses.
A results file without the section (older runs) recorded no gradient cells: its side is "not recorded",
never a regression.  The per-adapter rows of the section are the worst of their cells, so a row that
regressed is a cell that regressed, named here.
"""
from __future__ import annotations

import math

from normconf.golden.gradient_cases import GRADIENT_CASES, GRADIENT_CONVENTIONS
from normconf.judge.gradients import ROWS

GOOD = ("pass", "xpass")
DTYPES = ("float64", "float32", "float16", "bfloat16")
NOT_RECORDED = "gradient cells not recorded in the baseline"


def recorded(data: dict) -> bool:
    return bool((data.get("gradients") or {}).get("cells"))


def gradient_cells(data: dict) -> dict[str, dict]:
    """case@adapter -> the gradient cells that ran (not_installed never did)."""
    return {f"{c['case']}@{c['adapter']}": c for c in (data.get("gradients") or {}).get("cells", [])
            if c["outcome"] != "not_installed"}


def row_of(case_name: str) -> str:
    case = GRADIENT_CASES.get(case_name)
    return ROWS.get(case.row, case.row) if case else "unknown row"


def missed(cell: dict) -> list[str]:
    """The outputs off by more than their tolerance (None: non-finite or missing)."""
    return [k for k, r in cell.get("ratios", {}).items() if r is None or r > 1]


def worst(cell: dict) -> tuple[str | None, float | None]:
    """(output, error in tolerances; inf for a non-finite one), or (None, None) when the cell has no ratios."""
    ratios = {k: math.inf if r is None else r for k, r in cell.get("ratios", {}).items()}
    if not ratios:
        return None, None
    name = max(ratios, key=ratios.get)
    return name, ratios[name]


def _documented_label(convention: str, before: str, after: str) -> str:
    documented = GRADIENT_CONVENTIONS[convention][0]
    return "improved" if after == documented else "regressed" if before == documented else "changed"


def _convention_facts(b: dict, a: dict, row: str):
    for name in sorted(set(b.get("conventions", {})) & set(a.get("conventions", {}))):
        vb, va = b["conventions"][name], a["conventions"][name]
        if vb != va and "neither" not in (vb, va) and name in GRADIENT_CONVENTIONS:
            yield _documented_label(name, vb, va), "gradient", f"gradient, {row}: {name} {vb} -> {va}", ""


def _accuracy_fact(b: dict, a: dict, row: str, factor: float):
    (ob, eb), (oa, ea) = worst(b), worst(a)
    if eb is None or ea is None:
        return None
    low, high = sorted((eb, ea))
    if high <= 1 or high < factor * low:
        return None
    grew = ea > eb
    detail = f"worst error {eb:.3g}x ({ob}) -> {ea:.3g}x ({oa}) tolerance"
    if low <= 1:
        words = f"now misses the reference in {', '.join(missed(a))}" if grew else "now within tolerance"
    else:
        words = f"error over tolerance {'grew' if grew else 'shrank'} 2x or more"
    return "regressed" if grew else "improved", "gradient", f"gradient, {row}: {words}", detail


def _dtype_fact(b: dict, a: dict, row: str):
    db, da = b.get("output_dtypes") or {}, a.get("output_dtypes") or {}
    moved = sorted(k for k in set(db) & set(da) if db[k] != da[k])
    if not moved:
        return None
    before, after = db[moved[0]], da[moved[0]]
    label = ("changed" if before not in DTYPES or after not in DTYPES
             else "regressed" if DTYPES.index(after) > DTYPES.index(before) else "improved")
    return label, "gradient", f"gradient, {row}: {', '.join(moved)} now returned in {after} (was {before})", ""


def deviation_words(b: dict, a: dict) -> str | None:
    """How a cell's known deviation moved between two runs (forward and gradient cells alike), else None."""
    ob, oa = b["outcome"], a["outcome"]
    if ob == "xfail" and oa == "xpass":
        return f"known deviation {b['rule']} no longer happens"
    if ob == "xpass" and oa == "xfail":
        return f"known deviation {a['rule']} is back"
    if oa == "xfail":
        return f"now shows known deviation {a['rule']}"
    return None


def _outcome_words(b: dict, a: dict) -> str:
    ob, oa = b["outcome"], a["outcome"]
    if deviation_words(b, a):
        return deviation_words(b, a)
    if a["message"].startswith("raised "):
        return "now " + a["message"].split(":", 1)[0].replace("raised", "raises", 1)
    if oa == "fail":
        return f"now misses the reference in {', '.join(missed(a)) or 'an output'}"
    if oa in ("timeout", "unsupported", "error"):
        return {"timeout": "now times out", "unsupported": "now unsupported", "error": "now an error"}[oa]
    return f"now {'passes' if oa in GOOD else oa} (was {ob})"


def cell_changes(b: dict, a: dict, outcome_label, factor: float) -> list[tuple[str, str, str, str]]:
    """(label, kind, words, detail) per cause of change in one gradient cell; [] if nothing changed."""
    row = row_of(a["case"])
    facts = list(_convention_facts(b, a, row))
    if not facts:  # a changed variant explains the accuracy
        facts.append(_accuracy_fact(b, a, row, factor))
    facts.append(_dtype_fact(b, a, row))
    facts = [f for f in facts if f]
    if b["outcome"] == a["outcome"]:
        return facts
    label = outcome_label(b["outcome"], a["outcome"])
    transition = f"{b['outcome']} -> {a['outcome']}"
    if not facts:
        return [(label, "gradient", f"gradient, {row}: {_outcome_words(b, a)}", transition)]
    return [(label if f[0] == "changed" else f[0], f[1], f[2], "; ".join(filter(None, (transition, f[3]))))
            for f in facts]


def compare_gradients(baseline: dict, current: dict, groups: dict, not_run: dict, outcome_label,
                      factor: float) -> dict:
    """Adds the gradient cells' entries to compare()'s `groups` and the baseline's gradient cells this run
    did not have to `not_run`; returns what goes into the comparison's `gradients`."""
    base, cur = gradient_cells(baseline), gradient_cells(current)
    before, after = recorded(baseline), recorded(current)
    compared = 0
    for k in sorted(set(base) & set(cur)):
        compared += 1
        b, a = base[k], cur[k]
        for label, kind, words, detail in cell_changes(b, a, outcome_label, factor):
            groups.setdefault((label, a["adapter"], kind, words), []).append({"case": a["case"], "detail": detail})
    for k in sorted(set(cur) - set(base)):
        a = cur[k]
        words = NOT_RECORDED if not before else "gradient cell not in the baseline"
        groups.setdefault(("new", a["adapter"], "gradient", words), []).append({"case": a["case"],
                                                                                "detail": a["outcome"]})
    for k in sorted(set(base) - set(cur)):
        not_run[base[k]["adapter"]] = not_run.get(base[k]["adapter"], 0) + 1
    return {"compared": compared, "recorded": {"before": before, "after": after}}
