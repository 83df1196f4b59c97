"""The fixtures' own bfloat16 rounding, so that a fixture's bytes do not depend on the ml_dtypes release.

A float64 draw becomes bfloat16 in two round-to-nearest-even steps: numpy's IEEE cast to float32, then
float32 to bfloat16 on the bit pattern (add 0x7FFF plus the kept last bit, drop the low 16 bits).  That is
how ml_dtypes before 0.7 cast float64, and so how the committed fixtures were made; ml_dtypes 0.7 rounds
float64 directly, which differs where the float32 step lands a value exactly on a bfloat16 midpoint (1 of
the 16,384 inputs of dtype_ln_bfloat16_long).  Both are round-to-nearest-even; this one is the anchor.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

QUIET_NAN = np.uint64(0x7FC0)


def bfloat16_bits(values) -> np.ndarray:
    """uint16 bit patterns of `values` rounded to bfloat16 through float32 (see the module docstring)."""
    with np.errstate(over="ignore"):  # beyond float32's range is inf, as in bfloat16
        f32 = np.asarray(values, dtype=np.float64).astype(np.float32)
    bits = f32.view(np.uint32).astype(np.uint64)
    rounded = (bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    # a NaN's payload could carry into the exponent: keep its sign, make it the quiet NaN
    nan = (rounded & np.uint64(0x8000)) | QUIET_NAN
    return np.where(np.isnan(f32), nan, rounded).astype(np.uint16)


def to_bfloat16(values) -> np.ndarray:
    """`values` rounded to bfloat16 by bfloat16_bits, as an ml_dtypes.bfloat16 array."""
    return bfloat16_bits(values).view(ml_dtypes.bfloat16)
