"""RMSNorm inputs in float16/bfloat16 that the casting-style simulations (golden/reference.py rms_norm)
predict exactly.

A style computes some values in float32 and then rounds them to the input dtype.  A framework's float32
arithmetic (summation order, rsqrt) differs from the float64 simulation by a few float32 units, which
can flip that rounding where the exact value lies within a few float32 units of a rounding midpoint.
Rows of x are redrawn until, under every profile, every such value lies at least GUARD (relative) away
from a midpoint of the input dtype: GUARD = 2^-19 is 32 float32 units, against the ~sqrt(n) units a
float32 mean of squares over n <= 256 values errs by.  Values rounded from exact float32 products of two
half-precision numbers (x^2, x * rounded rsqrt, rounded h * w, 1 + w) cannot flip and are not checked.
The fixture's tolerance can then be float32's (golden/generate.py), while the casting styles differ by
a whole unit of the input dtype on many elements: the generator proves each case decisive.
"""
from __future__ import annotations

import itertools

import numpy as np

from normconf.golden import reference as ref
from normconf.golden.bfloat16 import to_bfloat16
from normconf.golden.tolerance import ulp_of

HALF = ("float16", "bfloat16")
GUARD = 2.0 ** -19
MAX_DRAWS = 200  # per row; a row passes with probability ~0.5 or more


def rounder(dtype: str):
    """float64 -> float64 rounded to `dtype` (None for float32/float64: the styles do not differ)."""
    if dtype == "bfloat16":
        return lambda v: np.asarray(to_bfloat16(v), np.float64)
    if dtype == "float16":
        return lambda v: np.asarray(np.asarray(v, np.float64).astype(np.float16), np.float64)
    return None


def near_midpoint(values, dtype: str) -> np.ndarray:
    """Mask of the values within GUARD (relative) of a rounding midpoint of `dtype`."""
    v = np.abs(np.asarray(values, np.float64))
    spacing = ulp_of(v, dtype)
    frac = np.mod(v, spacing) / spacing
    return np.abs(frac - 0.5) * spacing < GUARD * np.maximum(v, np.finfo(np.float64).tiny)


def fragile_values(x, weight, eps: float, dtype: str):
    """Every value some profile computes in float32 and then rounds to `dtype`, one array per kind,
    each broadcast to x's shape (rows of x over its last axis)."""
    rnd = rounder(dtype)
    ms = (x * x).mean(axis=-1, keepdims=True)
    ms_rounded = rnd(rnd(x * x).mean(axis=-1, keepdims=True))
    out = [ms, rnd(x * x).mean(axis=-1, keepdims=True), ms_rounded + eps, np.sqrt(ms_rounded)]
    out.append(1.0 / np.sqrt(rnd(ms_rounded + eps)))
    out.append(rnd(np.sqrt(ms_rounded)) + eps)
    out.append(1.0 / rnd(rnd(np.sqrt(ms_rounded)) + eps))
    for placement, statistic in itertools.product(ref.CONVENTIONS["eps_placement"], ref.CONVENTIONS["rms_statistic"]):
        inv = ref.rms_inverse(ref.squared_scale(x, -1, statistic), eps, placement)
        out.append(x * inv)
        for form in ref.CONVENTIONS["rms_weight_form"]:
            w = ref.rms_weight(weight, form)
            if w is not None:
                out.append(x * inv * w)
    return [np.broadcast_to(v, x.shape) for v in out]


def bad_rows(x, weight, eps: float, dtype: str) -> np.ndarray:
    """Mask of the rows (last axis) holding a fragile value near a midpoint."""
    bad = np.zeros(x.shape[:-1], dtype=bool)
    for v in fragile_values(x, weight, eps, dtype):
        bad |= near_midpoint(v, dtype).any(axis=-1)
    return bad


def guarded(draw, x, weight, eps: float, dtype: str, case_name: str):
    """x (float64 values of the input dtype, normalized over its last axis) with its bad rows redrawn by
    `draw(shape)` (already rounded to the dtype) until none is left."""
    x = np.array(x, np.float64)
    w = None if weight is None else np.asarray(weight, np.float64)
    for _ in range(MAX_DRAWS):
        bad = bad_rows(x, w, eps, dtype)
        if not bad.any():
            return x
        x[bad] = draw(x[bad].shape)
    raise ValueError(f"case {case_name!r}: no RMSNorm input away from {dtype} rounding midpoints after "
                     f"{MAX_DRAWS} draws per row")
