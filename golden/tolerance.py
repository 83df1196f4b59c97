"""The one tolerance formula of the suite, per output, and the error measures it is compared with.

An output array is compared through its scaled error  max|actual - expected| / scale, at the output's
own scale (output_floors):

    scale = max(max|expected|, floor),  floor the size the float64 reference gives the output's unit:
    - y, y_train, y_eval: max|gamma| (1 without affine): the normalized part gamma * z has unit-variance z,
      so max|y| >= ~|gamma| wherever a group varies; the floor holds for constant groups (z = 0, y = beta).
    - running_mean: the standard deviation of the training input (float64): the mean of n values errs
      by u sqrt(n) times their spread, which max|running_mean| alone does not bound for zero-mean inputs.
    - running_var: eps: the layer reads it as running_var + eps, so below eps its error cannot matter.

A floor of 1 (the measure before issue 21) scored an error of 60 % of an output of size 1e-4 at 0.06
tolerances; every term below is relative to the scale, and the scale is now the output's own.

Every output gets the base term

    base = 2 u_out + K u_stat (sqrt(n) + offset)

- u_out: unit roundoff of the output dtype; the final rounding of each element costs up to one u_out
  of the scale (|RN(y) - y| <= u |y| <= u max|y|), and a second one for one more step done in the
  output dtype (the affine step, or an inverse std held in it).
- u_stat: unit roundoff the statistics are computed in: every framework documents computing
  low-precision (float16/bfloat16) statistics in at least float32, so min(u_out, u_float32).
- sqrt(n): the error of a sum of n terms grows like sqrt(n) * u for the blocked/pairwise/Welford
  reductions frameworks use (the worst case n * u is never reached by them and would make the
  eps and variance conventions indistinguishable on long reductions).
- offset = max over normalized groups of |mean| / sqrt(var + eps), from the stored input
  (golden.generate.conditioning): centring x - mean, or the fused x * inv - mean * inv, costs about
  u * |mean| absolutely, and the output divides it by sqrt(var + eps) -- by sqrt(eps) alone for a
  constant input or a batch of one value per channel.  A correct float32 algorithm stays
  inside; E[x^2] - E[x]^2 loses offset^2 * u and falls outside once offset^2 >> K * offset.
- K = 4 covers the constant factors of mean, variance, rsqrt and affine steps.  It is set from
  scripts/tolerance_study.py (figures in the README, "Tolerance study"): on the committed fixtures and
  on re-draws, the worst correct implementation (pairwise, Welford, strictly sequential float32 sums,
  blocked merges, two-pass, and every installed framework) uses at most about half of it.

and, where an output really goes through a step in a precision coarser than float32, that step's
rounding (these terms vanish next to the base term for float32 and float64 outputs):

- y_train (BatchNorm training output): the batch mean and inverse std are layer state, and a correct
  kernel may hold them in the layer's dtype (PyTorch's CPU kernel does: save_mean / save_invstd are in
  the module's dtype for float16/bfloat16 modules, and it normalizes with them).  Rounding the mean to
  the output dtype costs u_out |mean|, which the output amplifies by inv_std * |gamma| and the scale
  divides by max|y| >= ~|gamma|:  + C_OUT * u_out * offset, charged only where u_out > u_float32.
  LayerNorm never holds its statistics in the layer dtype (no measured implementation does): its
  conditioning stays at u_stat, which is what lets a mean or epilogue kept in float16/bfloat16 show.
- running_mean / running_var: kept in a buffer of the layer's dtype, rounded on every step.  The
  rounding of step j is carried into step t scaled by (1 - w)^(t - j) (w: the weight of the new batch),
  so after t steps it sums to  S = sum_{j=0}^{t-1} (1 - w)^j  roundings (for the cumulative average
  w = 1/step, S = (t + 1) / 2).  An update done in the buffer's dtype rounds (1 - w) r, w b and their
  sum: u ((1 - w)|r| + w|b| + |r_new|) <= 2 u max(|r|, |b|), so C_BUF = 2 roundings per step; with
  w = 1 the buffer takes the batch statistic itself, one rounding:  + C_BUF * u_out * S.
- y_eval: normalizes with those buffers: their relative error C_BUF * u_out * S reaches the output
  amplified by the eval offset max |running_mean| / sqrt(running_var + eps) (and by 1/2 through the
  variance):  + C_BUF * u_out * S * (1 + eval_offset).
- running_var, y_eval: the first update rounds at the size of what it combines, and one of them is the
  initial running variance r_0 = 1 (zero_one), not the output: r + w (b - r) (TF's
  assign_moving_average, torch.lerp, an incremental cumulative average) rounds w (b - r_0), about
  u w_1 r_0 absolutely, even where w_1 = 1 makes the result the batch variance b.  The buffer term above
  covers what lies within the output's scale s (max |running_var|, at least eps); the part beyond it,
  excess = max(0, w_1 r_0 - s) (w_1 the first batch's weight: 1 for the cumulative average and
  momentum 1; a batch variance far below 1 makes s small), is charged:  running_var
  + C_BUF * u_out * excess / s, and y_eval, which reads running_var + eps,
  + C_BUF * u_out * carry * excess / min(running_var + eps) * (1 + eval_offset), carry the share of the
  first update left after the last step ((1 - w)^(t-1); 1/t for the cumulative average).  Both vanish
  for the catalog's weights (0.1 and its complement: s >= 1 - w_1 >= w_1 r_0).
"""
from __future__ import annotations

import math

import numpy as np

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
K = 4.0
C_OUT = 1.0   # roundings of the batch mean to the output dtype reaching y_train (see above)
C_BUF = 2.0   # roundings per step of a running buffer updated in its own dtype
INITIAL_RUNNING_VAR = 1.0  # golden/reference.py running_trajectory, zero_one: the largest initial buffer
# A convention check is decisive when every competing variant misses by at least this factor.
DECISIVENESS_MARGIN = 10.0
# A convention that moves a case's outputs by less than this many tolerances is inert there.
INERT = 0.1


def base_tolerance(dtype: str, n: int, offset: float = 0.0) -> float:
    """2 u_out + K u_stat (sqrt(n) + offset): every output's share (see the module's docstring)."""
    u_out = UNIT_ROUNDOFF[dtype]
    u_stat = min(u_out, UNIT_ROUNDOFF["float32"])
    return 2.0 * u_out + K * u_stat * (math.sqrt(n) + offset)


# The old single-number entry point: the tolerance of an output that goes through nothing else.
tolerance = base_tolerance


def buffer_roundings(steps: int, w_new: float | None) -> float:
    """S = sum_{j<t} (1 - w)^j: the roundings of a running buffer still present after `steps` updates;
    w_new None is the cumulative average (w = 1/step: the rounding of step j is scaled by j/t)."""
    if w_new is None:
        return (steps + 1) / 2.0
    return float(sum((1.0 - w_new) ** j for j in range(steps)))


def tolerances(dtype: str, n: int, offset: float = 0.0, *, layer: str = "layer_norm", steps: int = 0,
               weights: tuple = (), eval_offset: float = 0.0, initial_excess: float = 0.0,
               eval_initial_excess: float = 0.0) -> dict[str, float]:
    """Output name -> tolerance (scaled-error units) for one case.

    layer: layer_norm or batch_norm_eval (output y) or batch_norm (y_train, running_mean, running_var,
    y_eval after `steps` updates).  weights: the weights of the new batch the case can show (None for
    the cumulative average); the largest buffer sum among them is charged.
    eval_offset: max |running_mean| / sqrt(running_var + eps) after the last step.
    initial_excess, eval_initial_excess: the initial running variance beyond running_var's scale, relative
    to that scale and (carried to the last step) to min(running_var + eps) (initial_variance_excess).
    """
    u_out = UNIT_ROUNDOFF[dtype]
    base = base_tolerance(dtype, n, offset)
    if layer != "batch_norm":
        return {"y": base}
    coarse = u_out if u_out > UNIT_ROUNDOFF["float32"] else 0.0
    buffer = u_out * max((buffer_roundings(steps, w) * (1.0 if w == 1.0 else C_BUF) for w in weights),
                         default=C_BUF * steps)
    return {"y_train": base + C_OUT * coarse * offset, "running_mean": base + buffer,
            "running_var": base + buffer + C_BUF * u_out * initial_excess,
            "y_eval": base + (buffer + C_BUF * u_out * eval_initial_excess) * (1.0 + eval_offset)}


def output_floors(layer: str, inputs: dict, eps: float) -> dict[str, float]:
    """Output name -> the floor of its scale (see the module's docstring), from the case's inputs."""
    gamma = inputs.get("gamma", inputs.get("weight"))  # RMSNorm's weight
    unit = 1.0 if gamma is None else float(np.max(np.abs(np.asarray(gamma, np.float64)), initial=0.0))
    if layer != "batch_norm":
        return {"y": unit}
    spread = float(np.std(np.asarray(inputs["x"], np.float64)))
    return {"y_train": unit, "y_eval": unit, "running_mean": spread, "running_var": float(eps)}


def scale_of(expected, floor: float) -> float:
    """max(max|expected| over its finite elements, floor)."""
    e = np.asarray(expected, dtype=np.float64)
    return max(floor, float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)))


def divided(diff: float, scale: float) -> float:
    """diff / scale, where a zero scale (an output of exact zeros, floor 0) tolerates no difference."""
    if scale > 0:
        return diff / scale
    return 0.0 if diff == 0 else math.inf


def scaled_error(actual, expected, floor: float) -> float:
    """max|actual - expected| / max(max|expected|, floor) (see scaled_errors)."""
    return float(scaled_errors(actual, [expected], floor)[0])


def scaled_errors(actual, candidates, floor: float, *, ignore_nonfinite_actual=False) -> np.ndarray:
    """The scaled error of `actual` against each of `candidates` (arrays of actual's shape), each at
    its own scale max(max|candidate|, floor) (output_floors).

    NaN on both sides (the formula says 0/0) and infinities of the same sign agree; NaN or inf on one
    side only is infinitely far -- except where ignore_nonfinite_actual (True, or a mask of elements)
    allows: there a non-finite actual against a number is left out (the judge counts it apart).
    A shape mismatch is infinitely far."""
    a = np.asarray(actual, dtype=np.float64)
    out = np.full(len(candidates), math.inf)
    finite_a = np.isfinite(a)
    all_finite_a = bool(finite_a.all())
    for i, cand in enumerate(candidates):
        e = np.asarray(cand, dtype=np.float64)
        if e.shape != a.shape:
            continue
        finite_e = np.isfinite(e)
        if all_finite_a and finite_e.all():  # the common case, kept cheap for 1e5-element outputs
            out[i] = divided(float(np.max(np.abs(a - e), initial=0.0)),
                             max(floor, float(np.max(np.abs(e), initial=0.0))))
            continue
        with np.errstate(invalid="ignore"):
            same = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e)))
            both = finite_a & finite_e
            bad = ~both & ~same
            if ignore_nonfinite_actual is not False:
                bad &= finite_a | ~finite_e | ~np.asarray(ignore_nonfinite_actual, dtype=bool)
            if bad.any():
                continue
            diff = np.where(both, np.abs(a - e), 0.0)
        out[i] = divided(float(np.max(diff, initial=0.0)), scale_of(e, floor))
    return out


def error_measures(actual, expected, out_dtype: str) -> dict[str, float]:
    """max abs, max relative and max ULP error where both sides are numbers (non-finite values are
    counted apart).  ULPs are the output dtype's spacing at max(|expected|, rms(expected)): near zero
    an absolute error of one ULP at the output's typical size is what rounding costs, so elements
    close to zero do not inflate the figure."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return {"max_abs": math.inf, "max_rel": math.inf, "max_ulp": math.inf}
    both = np.isfinite(a) & np.isfinite(e)
    if not both.any():
        return {"max_abs": 0.0, "max_rel": 0.0, "max_ulp": 0.0}
    a, e = a[both], e[both]
    diff = np.abs(a - e)
    rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    floor = float(np.sqrt(np.mean(e * e)))
    ulp = diff / ulp_of(np.maximum(np.abs(e), floor), out_dtype)
    return {"max_abs": float(diff.max()), "max_rel": float(rel.max()), "max_ulp": float(ulp.max())}


def ulp_of(values, dtype: str) -> np.ndarray:
    """Spacing of the dtype's floats at |values| (at least the smallest normal's spacing)."""
    mant_bits = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}[dtype]
    min_exp = {"float64": -1022, "float32": -126, "float16": -14, "bfloat16": -126}[dtype]
    v = np.abs(np.asarray(values, dtype=np.float64))
    exp = np.floor(np.log2(np.where(v > 0, v, 1.0)))
    exp = np.maximum(exp, min_exp)
    return np.ldexp(1.0, (exp - mant_bits).astype(int))


# ------------------------------------------------------------------------------------------ gradients
# (issue 23) The backward outputs of one call, dx, dgamma, dbeta for a cotangent dy, each at its own
# scale max(max|expected|, floor) like the forward outputs; the floors (gradient_floors) are the sizes
# the rounding errors are proportional to, so every term below is relative:
#
# - dx = s (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)) with dx̂ = gamma dy (statistics from the input; eval mode:
#   dx = s dx̂).  Floor: max|s gamma dy|, its size before the projection.  x̂ and s carry the forward's
#   error (base_tolerance: n, offset), and the two backward reductions over the same n values add
#   K u_stat sqrt(n):  tol_dx = base + K u_stat sqrt(n).
# - dgamma = sum of dy x̂ over the m positions a parameter is shared by.  Floor: the largest per-parameter
#   root sum of squares of dy max(1, |x̂|), the size a sum of m terms of either sign has (an L1 floor, sum of
#   |terms|, is m / sqrt(m) times larger and hid a float16 accumulator).  The sum's own rounding is
#   K u_stat sqrt(m) of that; x̂'s error from the statistics is not independent per term: the centring error
#   u offset of a group is one rounding shared by all of its positions, which add it up coherently, sqrt(m)
#   times the floor's growth:  tol = 2 u_out + K u_stat (sqrt(n) + sqrt(m) (1 + offset)).
# - dbeta = sum of dy over the same m positions.  Floor: the largest root sum of squares of dy; only the
#   sum rounds, then the output:  tol = 2 u_out + K u_stat sqrt(m).  (With the cotangent's non-zero mean,
#   max|dbeta| ~ m |mean dy| is the scale, and a float32 sum's error u sqrt(m) max|partial sum| stays inside.)
# u_stat is min(u_out, u_float32) as in the forward: a framework accumulates low-precision gradients in
# float32 at least; a float16/bfloat16 accumulator costs about u_out sqrt(m) (or stalls) and shows.

def gradient_tolerances(dtype: str, n: int, m: int, offset: float = 0.0) -> dict[str, float]:
    """Backward output name -> tolerance (scaled-error units); n: values per statistic, m: positions
    per parameter, offset: the forward's conditioning (golden/generate.py conditioning)."""
    u_stat = min(UNIT_ROUNDOFF[dtype], UNIT_ROUNDOFF["float32"])
    base = base_tolerance(dtype, n, offset)
    out_share = 2.0 * UNIT_ROUNDOFF[dtype]
    return {"dx": base + K * u_stat * math.sqrt(n),
            "dgamma": out_share + K * u_stat * (math.sqrt(n) + math.sqrt(m) * (1.0 + offset)),
            "dbeta": out_share + K * u_stat * math.sqrt(m)}


def gradient_floors(dy, xhat, inv_std, gamma_b, param_axes: tuple[int, ...]) -> dict[str, float]:
    """dx, dgamma, dbeta -> the floor of its scale (see above), from float64 arrays broadcast against
    dy; param_axes: the axes the parameters are summed over."""
    g = np.abs(np.asarray(dy, np.float64))
    unit = g * np.abs(inv_std) * (1.0 if gamma_b is None else np.abs(gamma_b))
    return {"dx": float(unit.max(initial=0.0)),
            "dgamma": float(np.sqrt(((g * np.maximum(1.0, np.abs(xhat))) ** 2).sum(axis=param_axes)).max(initial=0.0)),
            "dbeta": float(np.sqrt((g ** 2).sum(axis=param_axes)).max(initial=0.0))}


def first_step_share(steps: int, weights: tuple) -> float:
    """The largest share of the first update still in the buffer after `steps` (None: cumulative, 1/t)."""
    return max(((1.0 / steps) if w is None else (1.0 - w) ** (steps - 1) for w in weights), default=1.0)


def initial_variance_excess(running_var: list, eps: float, steps: int, weights: tuple) -> tuple[float, float]:
    """(initial_excess, eval_initial_excess) of tolerances() from the expected running variances (K, C) of
    every documented profile (see the module's docstring): 0 where w_1 r_0 is within running_var's scale."""
    first_weight = max((1.0 if w is None else w for w in weights), default=1.0)
    values = np.abs(np.concatenate([np.ravel(v) for v in running_var]))
    values = values[np.isfinite(values)]
    scale = max(eps, float(values.max(initial=0.0)))
    excess = max(0.0, first_weight * INITIAL_RUNNING_VAR - scale)
    if excess == 0.0:
        return 0.0, 0.0
    last = np.abs(np.concatenate([np.ravel(v[-1]) for v in running_var]))
    smallest = float(last[np.isfinite(last)].min(initial=math.inf)) + eps
    carried = excess * first_step_share(steps, weights)
    return excess / scale, carried / smallest if smallest > 0 else math.inf
