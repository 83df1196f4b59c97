"""RMSNorm for the numpy adapter, in small overridable steps (judge/mutants.py changes one of them).

The profile's rms_casting picks the arithmetic for float16/bfloat16 inputs, as golden/reference.py
describes each style; float32 and float64 inputs compute in their own dtype.  Reductions accumulate in
float32 as eager kernels do (numpy's own bfloat16 sum would accumulate in bfloat16).
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import DEFAULT

HALF = ("float16", "bfloat16")


class NumpyRMSNorm:
    """Mixed into NumpyAdapter: reads self.profile (rms_casting, rms_weight_form, eps_placement,
    default_eps@rms_norm: None means the machine epsilon of the computing dtype, as torch's eps=None)."""

    def rms_compute_dtype(self, x) -> np.dtype:
        if str(x.dtype) in HALF and self.profile["rms_casting"] == "input_dtype":
            return x.dtype
        return np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)

    def rms_eps(self, eps, ct):
        if eps is DEFAULT:
            eps = self.profile["default_eps@rms_norm"]
            if eps is None:  # torch: finfo(float32).eps for float16/bfloat16 inputs
                eps = float(np.finfo(np.float64 if ct == np.float64 else np.float32).eps)
        return eps

    def rms_mean_square(self, xc, axes):
        ms = np.square(xc).astype(np.float32 if xc.dtype != np.float64 else np.float64).mean(axis=axes, keepdims=True)
        return ms.astype(xc.dtype)

    def rms_inverse(self, ms, eps):
        """1 / sqrt(ms + eps) (one rsqrt) or 1 / (sqrt(ms) + eps), each operation computed in float32
        (float64) and rounded to ms's dtype, with eps a float32 scalar, as eager kernels do."""
        ct = ms.dtype
        f = np.float64 if ct == np.float64 else np.float32

        def rounded(v):
            return v.astype(ct).astype(f)
        m = ms.astype(f)
        if self.profile["eps_placement"] == "added_to_std":
            return (f(1) / rounded(rounded(np.sqrt(m)) + f(eps))).astype(ct)
        return (f(1) / np.sqrt(rounded(m + f(eps)))).astype(ct)

    def rms_weight(self, weight, ct):
        if weight is None:
            return None
        w = np.asarray(weight).astype(ct)
        return w + ct.type(1) if self.profile["rms_weight_form"] == "one_plus_w" else w

    def rms_out_dtype(self, x, weight):
        """The input's dtype, or (rms_output_dtype promoted) the promotion of the input's and the weight's."""
        if weight is None or self.profile["rms_output_dtype"] == "input":
            return x.dtype
        return np.promote_types(np.float32 if str(x.dtype) in HALF else x.dtype, np.asarray(weight).dtype)

    def rms_scale(self, xc, inv, w, like, out=None):
        """x * inv * w in the style's order of casts; the result in `out` (default: the input's dtype)."""
        out = like.dtype if out is None else out
        if self.profile["rms_casting"] == "cast_before_weight" and w is not None:
            h = (xc * inv).astype(like.dtype)
            return (h.astype(np.float32) * w.astype(np.float32)).astype(out)
        y = xc * inv
        return (y if w is None else y * w).astype(out)

    def rms_norm(self, x, axes, weight, eps):
        ct = self.rms_compute_dtype(x)
        xc = x.astype(ct)
        axes = tuple(sorted(a % x.ndim for a in axes))
        ms = self.rms_mean_square(xc, axes)
        inv = self.rms_inverse(ms, self.rms_eps(eps, ct))
        return {"y": self.rms_scale(xc, inv, self.rms_weight(weight, ct), x, self.rms_out_dtype(x, weight))}

    # -- gradients (issue 23): the backward of rms_norm above, written out by hand (not golden/gradients.py) --
    def rms_norm_grad(self, x, axes, weight, eps, dy):
        ct = self.rms_compute_dtype(x)
        xc = x.astype(ct)
        axes = tuple(sorted(a % x.ndim for a in axes))
        ms = self.rms_mean_square(xc, axes)
        inv = self.rms_inverse(ms, self.rms_eps(eps, ct))
        y = self.rms_scale(xc, inv, self.rms_weight(weight, ct), x, self.rms_out_dtype(x, weight))
        g = dy.astype(ct)
        w = self.rms_backward_weight(weight, ct)
        xhat = xc * inv
        dx = self.rms_dx(g if w is None else g * w, xhat, inv, ms, axes)
        shared = tuple(a for a in range(x.ndim) if a not in axes)  # the axes the weight is used over
        out = {"y": y, "dx": dx.astype(x.dtype)}
        if weight is not None:
            out["dweight"] = self.rms_dweight_sum(g * xhat, shared, weight)
        return out

    def rms_backward_weight(self, weight, ct):
        """The weight dx̂ = dy * w_eff is taken with: the forward's (w, or 1 + w)."""
        return self.rms_weight(weight, ct)

    def rms_dx(self, dxhat, xhat, inv, ms, axes):
        """dx = s (dx̂ - x̂ mean(dx̂ x̂) c): the projection of x's own direction, c = 1 with eps inside the root,
        (rms + eps) / rms with eps added to the RMS (ds/dms differs)."""
        c = 1.0
        if self.profile["eps_placement"] == "added_to_std":
            c = 1.0 / (np.sqrt(ms.astype(inv.dtype)) * inv)
        return inv * (dxhat - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True) * c)

    def rms_dweight_sum(self, terms, axes, weight):
        """dweight: the sum over the positions the weight is shared by, in the weight's shape and dtype."""
        return self.param_sum(terms, axes, weight)
