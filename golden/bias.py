"""Rounding bias of a float16/bfloat16 output: the mean signed error in ULPs, with its own threshold.

An output rounded toward zero (truncated) or toward -inf instead of to nearest is off by at most one ULP
per element, inside the tolerance, but always in the same direction.  Over n elements that shows in the
mean signed error.  Derivation of the threshold:

- Per element the error is measured from the correctly rounded reference, c_i = RN(expected_i) in the
  output dtype:  s_i = (actual_i - c_i) / ulp_i, ulp_i the dtype's spacing at c_i.  (Measured from the
  float64 value itself, a correct output's mean signed error is the mean position of the exact values
  inside their ULPs, which is not 0 when the inputs sit on the output's own grid and inv_std is close to
  1: we measured 0.04 ULP for correct code on a re-draw of dtype_ln_bfloat16_long, and it can reach 1/2.)
- The computation before the final rounding may move each value by up to `budget` (the output's
  tolerance less its rounding share, golden/bias.output_budget).  Elements with ulp_i >= 2 budget take
  part: a correct result then rounds to c_i or, when expected_i lies within `budget` of a rounding
  midpoint, to its neighbour: s_i is 0, or +-1 on that fraction p_mid of the elements, so |mean s| <= p_mid
  (computed exactly from the expected values).
- A kernel may round more than once in the output dtype (an affine step in it): up to three unbiased
  roundings add a variance <= 3/12 = 1/4 ULP^2 per element, so the mean of n elements moves by a standard
  deviation <= 0.5 / sqrt(n).  Z = 6 of those (a false alarm about once in 10^9):

      threshold = p_mid + Z * 0.5 / sqrt(n) = p_mid + 3 / sqrt(n)

- Two directions are measured against it: s_i signed toward zero (sign(expected_i) s_i: about -1/2 for
  truncation) and s_i as is (about -1/2 for rounding toward -inf); the larger in magnitude is reported.
  With p_mid ~ 0, truncation is caught from n >= 37 taking-part elements, by 3 thresholds from n >= 324.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from normconf.golden.tolerance import UNIT_ROUNDOFF, scale_of, ulp_of

Z = 6.0
SIGMA = 0.5    # ULPs: the standard deviation of up to three unbiased roundings
HALF = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def rounding_bias(actual, expected, dtype: str, budget: float = 0.0) -> tuple[float, float]:
    """(mean signed error in ULPs from the correctly rounded reference, threshold) of a float16/bfloat16
    output against its float64 expected values; `budget`: the absolute error the computation may add
    before the final rounding.  (0.0, inf) when no element can take part."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    with np.errstate(over="ignore"):
        c = e.astype(HALF[dtype]).astype(np.float64)
    ulp = ulp_of(c, dtype)
    part = np.isfinite(a) & np.isfinite(c) & (e != 0) & (ulp >= 2.0 * budget)
    n = int(part.sum())
    if n == 0:
        return 0.0, math.inf
    a, e, c, ulp = a[part], e[part], c[part], ulp[part]
    s = (a - c) / ulp
    outward = np.abs(e) >= np.abs(c)                         # the spacing below a power of 2 is half
    step = np.where(outward, ulp, ulp_of(np.abs(c) - 0.25 * ulp, dtype))
    midpoint = c + np.sign(e - c) * 0.5 * step                # the rounding boundary next to expected
    p_mid = float(np.mean(np.abs(e - midpoint) < budget))
    toward_zero, plain = float(np.mean(np.sign(e) * s)), float(np.mean(s))
    mean = toward_zero if abs(toward_zero) >= abs(plain) else plain
    return mean, p_mid + Z * SIGMA / math.sqrt(n)


def output_budget(tolerance: float, dtype: str, expected, floor: float) -> float:
    """The computation's share of an output's tolerance, in absolute terms: the tolerance less the final
    rounding's 2 u_out (golden/tolerance.py), times the output's scale max(max|expected|, floor)."""
    return max(tolerance - 2.0 * UNIT_ROUNDOFF[dtype], 0.0) * scale_of(expected, floor)
