"""Memory layouts an input can be handed in (issue 21): the same values, other strides.  A generated case
names one (`layout` in its specification); the contracts (judge/contracts.py) use `fortran_strided`.
A layer must give the same results whatever the layout: a kernel that reads the buffer as C-contiguous
(x.ravel(order="K"), a raw data pointer) without looking at the strides gets other values."""
from __future__ import annotations

import numpy as np


def c_order(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy (the stored layout)."""
    return np.array(x, order="C", copy=True)


def fortran(x: np.ndarray) -> np.ndarray:
    """A Fortran-order copy: the first axis varies fastest."""
    return np.array(x, order="F", copy=True)


def strided(x: np.ndarray) -> np.ndarray:
    """Every second element of a buffer twice as long along the last axis: C order, not contiguous."""
    buffer = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype) if x.ndim else np.zeros(2, x.dtype)
    view = buffer[..., ::2]
    view[...] = x
    return view


def transposed(x: np.ndarray) -> np.ndarray:
    """A transposed view: the axes stored in rotated order (the last axis outermost), handed back in the
    case's axis order, so neither C- nor (for rank >= 3) F-contiguous."""
    order = (x.ndim - 1, *range(x.ndim - 1))
    return np.ascontiguousarray(np.transpose(x, order)).transpose(np.argsort(order))


def fortran_strided(x: np.ndarray) -> np.ndarray:
    """The same values in Fortran order with every stride doubled: neither C- nor F-contiguous."""
    buffer = np.empty((2, *x.shape), dtype=x.dtype, order="F")
    view = buffer[0]
    view[...] = x
    return view


LAYOUTS = {"c": c_order, "fortran": fortran, "strided": strided, "transposed": transposed,
           "fortran_strided": fortran_strided}
