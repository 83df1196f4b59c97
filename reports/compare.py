"""The regression check: what changed between a baseline results file and the current one.

`compare(baseline, current)` is a pure function of two results dicts (reports/schema.py).  It compares
facts, never text: identified variants by name, measured numbers within their uncertainties, the
outcome class, accuracy on a scale machine noise cannot cross, output dtypes and non-finite values.
Platform and version strings are reported (before -> after), never judged.  Each change is labelled

  regressed  worse than the baseline: exit code 1
  improved   better: a known deviation gone (xfail -> xpass), an error that now passes
  changed    neither: worth a look (a variant changed where nothing is documented)
  new        cells the baseline does not have

and the changes are grouped by adapter, kind and plain words, one entry per cause, listing its cells.
Cells of the baseline that did not run this time (-k, --frameworks, --lf, an interrupted run) are
counted as not run and compared with nothing.  Gradient cells (results.json `gradients`) are compared
the same way into the same entries, kind "gradient" (reports/gradient_compare.py).

Thresholds, and why:
- Measured numbers (default eps and momentum, the running-variance factor) differ when
      |a - b| > 3 (u_a + u_b) + 2^-23 (|a| + |b|).
  judge/measure.py names a value when it lies within 3 uncertainties of it (plus a float32 attribute's
  rounding), so two measurements of one true value lie at most 3 u_a + 3 u_b apart (plus both
  roundings): the factor 3 is the naming's own coverage, added linearly because u is a bound.  That
  bound was propagated from outputs off by at most one tolerance; a cell whose outputs miss by E > 1
  tolerances has its uncertainties scaled by E, so a measurement taken from a known-inaccurate output
  (E[x^2] - E[x]^2 in float32, 1e4 x the std off zero) is not a finding each time its noise moves.
- Accuracy (the worst error, in tolerances) changed when the larger of the two is over one tolerance
  and the two differ by a factor of 2 or more.  Reduction order differs between CPUs (JAX's vector
  width): the same versions moved a 2.8e7-tolerance error by 1.16x between two machines, and the
  self-tests scale every float of a baseline by 0.7 and 1.3 (a factor up to 1.43).  A real change of
  arithmetic moves it by far more: float32 to float16 is 2^13.  Both sides within tolerance is never a
  change.  float64 cells word the change as the precision it was computed in (verdict.precision_of).
- Conventions: a variant named in both runs and different is a change.  "Matches no variant" on
  either side is left to the accuracy: which profiles are plausible for outputs far from all of them
  moves with noise, while their distance from the reference is the fact.  Not shown is no fact.
- Output dtypes (names, compared as categories: coarser regresses) and the appearance or disappearance
  of unexpected NaN/inf are exact facts.  Counts of NaN are not compared: which borderline groups
  cancel to a negative variance moves with the reduction order.
"""
from __future__ import annotations

import math
import re

from normconf.golden.cases import CASES
from normconf.judge.measure import FLOAT32_STORAGE, agrees
from normconf.reports.gradient_compare import compare_gradients, deviation_words, gradient_cells
from normconf.reports.schema import LABELS

COVERAGE = 3.0          # judge/measure.py: a value is named within 3 uncertainties
ACCURACY_FACTOR = 2.0   # accuracy: a change of 2x or more, over the tolerance
GOOD, BROKEN = ("pass", "xpass"), ("error", "bad_output", "timeout", "crashed", "missing")
PRECISION_ORDER = ("float64", "float32", "float16", "bfloat16", "coarser than bfloat16")
MEASURED_WORDS = {"default_eps": "default eps", "default_momentum": "default momentum",
                  "default_feature_axis": "default feature axis", "running_variance_factor": "running-variance factor"}


def key(cell: dict) -> str:
    return f"{cell['case']}@{cell['adapter']}"


def _ran(cell: dict) -> bool:
    return cell["outcome"] != "not_installed"


# ------------------------------------------------------------------------------------------- labels

def _status_label(before: str | None, after: str | None) -> str:
    """A change judged against the documentation: towards agreement improves, away from it regresses."""
    if before == after:
        return "changed"
    return "improved" if after == "agrees" else "regressed" if before == "agrees" else "changed"


def outcome_label(before: str, after: str) -> str:
    if before == after:
        return "changed"
    if before in GOOD and after in GOOD:
        return "changed"  # pass <-> xpass: the expectations were edited, the layer was not
    if after in GOOD:
        return "improved"  # a known deviation gone, a failure or error that now passes, now supported
    if before in GOOD:
        return "regressed"  # includes xpass -> xfail: a fixed deviation came back
    if before == "xfail":
        return "regressed" if after in BROKEN + ("fail",) else "changed"
    if before in BROKEN and after == "xfail":
        return "improved"
    return "changed"


# -------------------------------------------------------------------------------------------- facts

def _context(case_name: str) -> str:
    """Where in the catalog the change shows, in words: ' at large means', ' on constant input'..."""
    case = CASES.get(case_name)
    if case is None:
        return ""
    if case.distribution == "constant":
        return " on constant input"
    if case.family == "long":
        return " on long reductions"
    if abs(case.loc) >= 10 * case.scale:
        return " at large means"
    if case.scale <= 1e-4:
        return " at tiny scale"
    if case.family == "one_value_per_channel":
        return " with one value per channel"
    return f" in {case.dtype}" if case.dtype != "float32" else ""


def _error(cell: dict) -> float | None:
    """The worst error in tolerances (inf: infinitely far), or None where the cell has no accuracy."""
    acc = cell.get("accuracy")
    if acc is None:
        return None
    return math.inf if acc["error"] is None else acc["error"]


def _precision(cell: dict) -> str:
    """The coarsest precision any output was computed in (judge/verdict.precision_of)."""
    found = [o["precision"] for o in cell["accuracy"]["outputs"].values()] or [cell.get("dtype") or ""]
    return max(found, key=lambda p: PRECISION_ORDER.index(p) if p in PRECISION_ORDER else len(PRECISION_ORDER))


def _coarser(before: str, after: str) -> str:
    """regressed when `after` is a coarser precision or dtype than `before`, improved when finer."""
    rank = {p: i for i, p in enumerate(PRECISION_ORDER)}
    if before not in rank or after not in rank or before == after:
        return "changed"
    return "regressed" if rank[after] > rank[before] else "improved"


def _convention_facts(b: dict, a: dict):
    """A variant named in both runs, and different.  Named on one side and "matches no variant" on the
    other is the accuracy's fact: the outputs moved away from (or back to) every profile."""
    for name in sorted(set(b["conventions"]) & set(a["conventions"])):
        vb, va = b["conventions"][name], a["conventions"][name]
        if vb["state"] == va["state"] == "named" and vb["observed"] != va["observed"]:
            yield (_status_label(vb["status"], va["status"]), "convention",
                   f"{name} {vb['observed']} -> {va['observed']}", "")


def _spread(m: dict, error: float | None) -> float:
    """A measurement's uncertainty, scaled by how far its cell's outputs are off (see the docstring)."""
    if m["uncertainty"] is None or error is None:
        return math.inf
    return m["uncertainty"] * max(1.0, error)


def _differ(mb: dict, ma: dict, eb, ea) -> bool:
    if (mb["value"] is None) != (ma["value"] is None):
        return True
    if mb["value"] is None:
        return False
    vb, va = mb["value"], ma["value"]
    bound = COVERAGE * (_spread(mb, eb) + _spread(ma, ea)) + FLOAT32_STORAGE * (abs(va) + abs(vb))
    return abs(va - vb) > bound  # inf bound: nothing can be told apart


def _measured_words(what: str, mb: dict, ma: dict) -> str:
    """"default eps 0.001 -> 1e-05" by name; the same name on both sides: the number moved (the
    figures are in the cell's detail, so that every cell it happened to is one entry)."""
    if mb["name"] and mb["name"] == ma["name"]:
        return f"{what} {ma['name']}: the measured value moved beyond its uncertainty"
    shown = [("not measurable" if m["value"] is None else m["name"] or f"{m['value']:.2g}") for m in (mb, ma)]
    return f"{what} {shown[0]} -> {shown[1]}"


def _factor_variant(m: dict, error: float | None) -> str | None:
    """The running-variance factor read as the running_variance convention: 1 biased, N/(N-1) unbiased."""
    n = m.get("n")
    if m["value"] is None or not isinstance(n, int) or n < 2:
        return None
    probe = {"value": m["value"], "uncertainty": _spread(m, error)}
    hits = [v for f, v in ((1.0, "biased"), (n / (n - 1), "unbiased")) if agrees(probe, f)]
    return hits[0] if len(hits) == 1 else None


def _measured_facts(b: dict, a: dict, eb, ea):
    for name in sorted(set(b["measured"]) & set(a["measured"])):
        mb, ma = b["measured"][name], a["measured"][name]
        if not _differ(mb, ma, eb, ea):
            continue
        detail = f"{mb['display']} -> {ma['display']}"
        if name == "running_variance_factor":
            fb, fa = _factor_variant(mb, eb), _factor_variant(ma, ea)
            if fb and fa and fb != fa:  # the same fact as the convention, worded as it
                conv = (b["conventions"].get("running_variance"), a["conventions"].get("running_variance"))
                label = _status_label(*(c["status"] for c in conv)) if all(conv) else "changed"
                yield label, "convention", f"running_variance {fb} -> {fa}", detail
                continue
        yield (_status_label(mb.get("status"), ma.get("status")), "default",
               _measured_words(MEASURED_WORDS.get(name, name), mb, ma), detail)


def _accuracy_fact(b: dict, a: dict, eb, ea):
    """One fact: a float64 cell computed at another precision, else output dtypes that changed, else
    the error against the reference."""
    ob, oa = b["accuracy"]["outputs"], a["accuracy"]["outputs"]
    moved = sorted(o for o in set(ob) & set(oa) if ob[o]["dtype"] != oa[o]["dtype"])
    stored = (f"{', '.join(moved)} now stored in {oa[moved[0]]['dtype']} (was {ob[moved[0]]['dtype']})"
              if moved else "")
    low, high = sorted((eb, ea))
    if high <= 1 or high < ACCURACY_FACTOR * low:
        if not moved:
            return None
        return _coarser(ob[moved[0]]["dtype"], oa[moved[0]]["dtype"]), "accuracy", stored, ""
    label = "regressed" if ea > eb else "improved"
    detail = "; ".join(filter(None, (f"error {eb:.3g}x -> {ea:.3g}x tolerance", stored)))
    pb, pa = _precision(b), _precision(a)
    if a.get("dtype") == "float64" and pb != pa:
        words = "float64 now computed in " + (pa if pa != "float64" else f"float64 (was {pb})")
    elif moved:
        words = stored
    elif low <= 1:
        words = ("now misses the reference" if label == "regressed" else "now within tolerance") + _context(a["case"])
    else:
        words = ("error over tolerance grew 2x or more" if label == "regressed"
                 else "error over tolerance shrank 2x or more") + _context(a["case"])
    return label, "accuracy", words, detail


def _nonfinite_fact(b: dict, a: dict):
    def unexpected(cell):
        counts = [n for n in cell["nonfinite"].values() if n["unexpected"]]
        kinds = [k for k in ("nan", "inf") if any(n[k] for n in counts)]
        return " and ".join(k.replace("nan", "NaN") for k in kinds) if counts else ""
    nb, na = unexpected(b), unexpected(a)
    if bool(nb) == bool(na):
        return None
    detail = "; ".join(f"{o}: {n['nan']} NaN, {n['inf']} inf of {n['size']}"
                       for o, n in (a if na else b)["nonfinite"].items())
    if na:
        return "regressed", "nonfinite", f"now returns {na}{_context(a['case'])}", detail
    return "improved", "nonfinite", f"no longer returns {nb}{_context(a['case'])}", ""


def _behaviour_fact(b: dict, a: dict):
    """What the layer did where the catalog asks for a behaviour (one value per channel), or raising."""
    hb, ha = b.get("behaviour"), a.get("behaviour")
    if hb == ha or not (hb and ha or "raises" in (hb, ha)):
        return None
    where = _context(a["case"])
    if "raises" in (hb, ha):  # the other side returned outputs
        return "changed", "behaviour", ("now raises" if ha == "raises" else "no longer raises") + where, ""
    return "changed", "behaviour", f"{where.strip() or 'behaviour'}: {hb} -> {ha}", ""


def _outcome_words(b: dict, a: dict) -> str:
    ob, oa = b["outcome"], a["outcome"]
    if deviation_words(b, a):
        return deviation_words(b, a)
    if oa == "error":
        raised = re.match(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit)):", a["message"])
        return f"now raises {raised.group(1)}" if raised else "now an error"
    words = {"timeout": "now times out", "crashed": "now crashes its worker", "bad_output": "now returns unusable "
             "outputs", "missing": "no result reached the controller", "unsupported": "now unsupported"}
    if oa in words:
        return words[oa]
    if ob == "unsupported":
        return f"now supported ({oa})"
    if ob in BROKEN:
        return f"now {'passes' if oa in GOOD else oa} (was {ob})"
    # pass <-> fail with no fact beyond noise: the failures say which check moved (an error at the tolerance)
    if oa == "fail":
        return f"now fails ({', '.join(sorted({f['kind'] for f in a['failures']})) or 'fail'})"
    return f"now {'passes' if oa in GOOD else oa} (was {ob}: {', '.join(sorted({f['kind'] for f in b['failures']}))})"


def cell_changes(b: dict, a: dict) -> list[tuple[str, str, str, str]]:
    """(label, kind, words, detail) for each cause of change in one cell; [] if nothing changed."""
    eb, ea = _error(b), _error(a)
    facts = list(_convention_facts(b, a)) + list(_measured_facts(b, a, eb, ea))
    if eb is not None and ea is not None and not facts:  # a changed variant explains the accuracy
        facts.append(_accuracy_fact(b, a, eb, ea))
    facts.append(_nonfinite_fact(b, a))
    facts.append(_behaviour_fact(b, a))
    unique = {}
    for fact in filter(None, facts):  # the same words twice (convention and factor): one fact
        if fact[1:3] not in unique or fact[0] == "regressed":
            unique[fact[1:3]] = fact
    facts = list(unique.values())
    if b["outcome"] == a["outcome"]:
        return facts
    label = outcome_label(b["outcome"], a["outcome"])
    transition = f"{b['outcome']} -> {a['outcome']}"
    if not facts:
        return [(label, "outcome", _outcome_words(b, a), transition)]
    # the outcome moved with the facts: a neutral fact takes the outcome's direction
    return [(label if f[0] == "changed" else f[0], f[1], f[2], "; ".join(filter(None, (transition, f[3]))))
            for f in facts]


# ----------------------------------------------------------------------------------------- the run

def _version_changes(baseline: dict, current: dict) -> list[dict]:
    """Per package: before -> after, with the adapters it applies to (reported, never judged)."""
    changes: dict[tuple, list[str]] = {}
    for adapter in current["versions"]:
        vb, va = baseline["versions"].get(adapter), current["versions"][adapter]
        if not vb or not va:
            continue
        for package in sorted(set(vb) | set(va)):
            if vb.get(package) != va.get(package):
                changes.setdefault((package, vb.get(package), va.get(package)), []).append(adapter)
    return [{"package": p, "before": b, "after": a, "adapters": ads} for (p, b, a), ads in sorted(
        changes.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), str(kv[0][2])))]


def compare(baseline: dict, current: dict) -> dict:
    """The comparison as built-in types (it goes into results.json): grouped entries and counts."""
    base = {key(c): c for c in baseline["cells"] if _ran(c)}
    cur = {key(c): c for c in current["cells"] if _ran(c)}
    order = {a: i for i, a in enumerate(current["adapters"] + baseline["adapters"])}
    groups: dict[tuple, list[dict]] = {}
    compared = 0
    for k in sorted(set(base) & set(cur)):
        compared += 1
        b, a = base[k], cur[k]
        for label, kind, words, detail in cell_changes(b, a):
            groups.setdefault((label, a["adapter"], kind, words), []).append({"case": a["case"], "detail": detail})
    base_adapters = {c["adapter"] for c in base.values()}
    for k in sorted(set(cur) - set(base)):
        a = cur[k]
        words = "not in the baseline" + ("" if a["adapter"] in base_adapters else " (new adapter)")
        groups.setdefault(("new", a["adapter"], "new", words), []).append({"case": a["case"], "detail": a["outcome"]})
    not_run: dict[str, int] = {}
    for k in sorted(set(base) - set(cur)):
        not_run[base[k]["adapter"]] = not_run.get(base[k]["adapter"], 0) + 1
    gradients = compare_gradients(baseline, current, groups, not_run, outcome_label, ACCURACY_FACTOR)
    compared += gradients.pop("compared")
    ran_adapters = {c["adapter"] for c in [*cur.values(), *gradient_cells(current).values()]}
    entries = [{"label": label, "adapter": adapter, "kind": kind, "what": words, "cells": cells}
               for (label, adapter, kind, words), cells in sorted(  # per label and adapter, the widest first
                   groups.items(), key=lambda kv: (LABELS.index(kv[0][0]), order.get(kv[0][1], len(order)),
                                                   kv[0][1], -len(kv[1]), kv[0][2], kv[0][3]))]
    return {
        "baseline": {"created": baseline.get("created"), "platform": baseline["platform"],
                     "run": baseline.get("run")},
        "versions": _version_changes(baseline, current),
        "platform": {"before": baseline["platform"].get("system"), "after": current["platform"].get("system")},
        "entries": entries,
        "counts": {label: sum(e["label"] == label for e in entries) for label in LABELS},
        "compared": compared,
        "gradients": gradients,  # whether each side recorded gradient cells (older files did not)
        "not_run": {"cells": sum(not_run.values()), "adapters": not_run,
                    "whole": sorted((a for a in not_run if a not in ran_adapters), key=lambda a: order.get(a, 0))},
    }


def exit_code(comparison: dict) -> int:
    """1 for regressions, 2 when nothing could be compared (no cell in common), 0 otherwise."""
    if comparison["counts"]["regressed"]:
        return 1
    return 2 if not comparison["compared"] else 0
