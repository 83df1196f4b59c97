"""The porting guide's RMSNorm advice (reports/porting.py calls `rms_advice` for each pair): the default
eps per input dtype, how to load (1 + w) weights, and the measured residual of a casting style that no
argument reproduces.  The residual is the float64 simulations' (golden/reference.py rms_norm) on the
catalog's bfloat16 case: how many elements differ, by how many units of bfloat16 at most."""
from __future__ import annotations

import functools

import numpy as np

from normconf.golden import candidates as cand
from normconf.golden import fixtures
from normconf.golden.tolerance import ulp_of
from normconf.reports.matrix import RMS_CONVENTION_ROWS, RMS_DEFAULT_ROWS

ROW = {convention: title for title, convention in RMS_CONVENTION_ROWS}
HANDLED = {*ROW.values(), *(title for title, _ in RMS_DEFAULT_ROWS)}
RESIDUAL_CASE = "rms_bfloat16"


@functools.lru_cache(maxsize=None)
def casting_residual(style_a: str, style_b: str, case_name: str = RESIDUAL_CASE) -> tuple[float, float]:
    """(largest difference in units of the case's dtype, fraction of elements that differ) between two
    casting styles' outputs on one case's inputs, everything else the base profile."""
    fx = fixtures.load_case(case_name)
    cands = cand.for_case(fx.case, fx.inputs, eps=fx.case.eps)
    a, b = (cands.output("y", cand.base_profile("rms_norm", {"rms_casting": s})) for s in (style_a, style_b))
    ulps = np.abs(a - b) / ulp_of(np.maximum(np.abs(a), np.abs(b)), fx.case.dtype)
    return float(ulps.max()), float(np.mean(a != b))


def residual_text(style_a: str, style_b: str) -> str:
    try:
        worst, share = casting_residual(style_a, style_b)
    except fixtures.FixtureError:
        return ""
    return (f"Measured residual ({style_a} vs {style_b}, float64 simulations on {RESIDUAL_CASE}): {share:.0%} of "
            f"the outputs differ, by at most {worst:.3g} unit{'' if worst == 1 else 's'} of bfloat16")


def rms_advice(rows: dict, adv, one, number) -> None:
    """Adds the RMSNorm lines to `adv` (a porting.PairAdvice); `one(row, group)` is the group's single
    usable label of a row, `number` reads it as a number."""
    a, b = adv.a, adv.b
    if not (a.args.rms_norm and b.args.rms_norm):
        return
    _eps(rows, adv, one, number)
    forms = [one(rows.get(ROW["rms_weight_form"]), g) for g in (a, b)]
    if set(forms) == {"w", "one_plus_w"}:
        gemma, plain = (a, b) if forms[0] == "one_plus_w" else (b, a)
        adv.agree.append(f"RMSNorm weight: {gemma.label} applies (1 + w) to the weight it stores (zero-centred), "
                         f"{plain.label} applies w: load {gemma.label}'s weights into {plain.label} as 1 + w, "
                         f"computed in float32 and kept in float32 (1 + w rounded to bfloat16 loses small w), "
                         f"and {plain.label}'s into {gemma.label} as w - 1. Loaded as they are, a model collapses")
    styles = [one(rows.get(ROW["rms_casting"]), g) for g in (a, b)]
    if None not in styles and styles[0] != styles[1]:
        adv.cannot.append(f"RMSNorm float16/bfloat16 casting: {a.label} {styles[0]}, {b.label} {styles[1]}. No "
                          f"argument changes it. " + residual_text(*styles))
    stats = [one(rows.get(ROW["rms_statistic"]), g) for g in (a, b)]
    if None not in stats and stats[0] != stats[1]:
        centred = a if stats[0] == "variance" else b
        adv.cannot.append(f"RMSNorm statistic: {centred.label} divides by the standard deviation (the mean "
                          f"subtracted): it is not RMSNorm; use {centred.args.rms_norm.format('')} instead")


def _eps(rows, adv, one, number):
    a, b = adv.a, adv.b
    parts, ea_first, eb_first = [], None, None
    for title, _ in RMS_DEFAULT_ROWS:
        ea, eb = number(one(rows.get(title), a)), number(one(rows.get(title), b))
        if ea is None or eb is None or ea == eb:
            continue
        parts.append(f"{title.split(', ')[1].rstrip(')')} inputs: {a.label} {ea:g}, {b.label} {eb:g}")
        ea_first, eb_first = ea_first or ea, eb_first or eb
    if parts:
        adv.like[(a.name, b.name)]["rms_norm"][b.args.eps] = ea_first
        adv.like[(b.name, a.name)]["rms_norm"][a.args.eps] = eb_first
        adv.agree.append(f"RMSNorm eps: the defaults differ ({'; '.join(parts)}): pass the same value to both, "
                         f"{a.label} {a.args.eps}= and {b.label} {b.args.eps}=")
