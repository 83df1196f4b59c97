"""The documented normalization formulas in float64 numpy: the oracle of the whole suite.

Every point where frameworks differ is a named convention (CONVENTIONS) and every function takes the
variant it should compute, so one formula serves every framework.  Functions return the intermediates
(mean, variance, inverse std) too, so a mismatch can be placed in the statistics or in the affine step.

    y = (x - mean) / sqrt(var + eps) * gamma + beta          (eps_placement = inside_sqrt)
    y = (x - mean) / (sqrt(var) + eps) * gamma + beta        (eps_placement = added_to_std)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# convention -> its variants; the first variant is the one most frameworks document.
CONVENTIONS: dict[str, tuple[str, ...]] = {
    "norm_variance": ("biased", "unbiased"),
    "running_variance": ("biased", "unbiased"),
    "momentum_form": ("weight_on_new", "weight_on_old", "cumulative_average"),
    "eps_placement": ("inside_sqrt", "added_to_std"),
    "initial_running_stats": ("zero_one", "zero_debiased"),
    "eval_statistics": ("running", "batch"),
    # which statistics a training step normalizes with: its batch's, or the running ones after (updated)
    # or before (previous) this step's update
    "training_statistics": ("batch", "running_updated", "running_previous"),
    "layernorm_affine": ("per_element", "per_feature_axis"),
    # RMSNorm (golden/rms.py): how the stored weight is applied, and where a float16/bfloat16 input is
    # rounded on its way through (float64 simulations of each style)
    "rms_weight_form": ("w", "one_plus_w"),
    "rms_casting": ("float32_cast_once", "cast_before_weight", "input_dtype"),
    # what x is divided by the root of: its mean square (RMSNorm), or its variance, the mean subtracted
    # (keras LayerNormalization(rms_scaling=True): x / sqrt(var(x) + eps) * gamma, so not RMSNorm)
    "rms_statistic": ("mean_square", "variance"),
    # the output dtype for a float16/bfloat16 input and a float32 weight: the input's (one final rounding),
    # or the promoted float32 (no final rounding)
    "rms_output_dtype": ("input", "promoted"),
    # GroupNorm: which channels share a group: blocks of C/G neighbours (channel c in group c // (C/G)),
    # or every G-th channel (c in group c % G: a reshape to (C/G, G) instead of (G, C/G))
    "group_mapping": ("contiguous", "strided"),
    # InstanceNorm with tracked running statistics: what eval normalizes with
    "instance_eval_statistics": ("running", "instance"),
}

# The variant assumed for a convention that a case does not vary (what every framework documents).
BASE_PROFILE: dict[str, str] = {
    "norm_variance": "biased",
    "running_variance": "biased",
    "momentum_form": "weight_on_new",
    "eps_placement": "inside_sqrt",
    "initial_running_stats": "zero_one",
    "eval_statistics": "running",
    "training_statistics": "batch",
    "layernorm_affine": "per_element",
    "rms_weight_form": "w",
    "rms_casting": "float32_cast_once",
    "rms_statistic": "mean_square",
    "rms_output_dtype": "input",
    "group_mapping": "contiguous",
    "instance_eval_statistics": "running",
}

# The conventions that can move each layer's outputs: what the judge identifies jointly.
LAYER_CONVENTIONS: dict[str, tuple[str, ...]] = {
    "layer_norm": ("norm_variance", "eps_placement"),
    "batch_norm": ("norm_variance", "running_variance", "momentum_form", "eps_placement", "initial_running_stats",
                   "eval_statistics", "training_statistics"),
    "batch_norm_eval": ("norm_variance", "eps_placement", "eval_statistics"),
    # eps_placement added_to_std is eps added to the RMS itself: x / (rms + eps)
    "rms_norm": ("eps_placement", "rms_weight_form", "rms_casting", "rms_statistic", "rms_output_dtype"),
    "group_norm": ("norm_variance", "eps_placement", "group_mapping"),
    "instance_norm": ("norm_variance", "eps_placement"),
    "instance_norm_tracked": ("norm_variance", "running_variance", "momentum_form", "eps_placement",
                              "instance_eval_statistics"),
}


def check_variant(convention: str, variant: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; known: {sorted(CONVENTIONS)}")
    if variant not in CONVENTIONS[convention]:
        raise ValueError(f"unknown variant {variant!r} of {convention}; known: {CONVENTIONS[convention]}")


def _ddof(variant: str) -> int:
    return {"biased": 0, "unbiased": 1}[variant]


def _inv_std(var: np.ndarray, eps: float, eps_placement: str) -> np.ndarray:
    if eps_placement == "inside_sqrt":
        return 1.0 / np.sqrt(var + eps)
    if eps_placement == "added_to_std":
        return 1.0 / (np.sqrt(var) + eps)
    raise ValueError(f"unknown eps placement {eps_placement!r}")


@dataclass(frozen=True)
class Normalized:
    """Output of a forward pass with its intermediates (statistics in the reduced shape, keepdims)."""
    y: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray


def _normalize(x, axes, gamma, beta, eps, norm_variance, eps_placement) -> Normalized:
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    # Two-pass variance in float64: exact enough to be the reference for any float32 computation.
    var = ((x - mean) ** 2).sum(axis=axes, keepdims=True) / (_reduced_size(x.shape, axes) - _ddof(norm_variance))
    y = normalize(x, mean, var, eps, eps_placement, _f64(gamma), _f64(beta))
    return Normalized(y=y, mean=mean, var=var, inv_std=_inv_std(var, eps, eps_placement))


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _reduced_size(shape, axes) -> int:
    return int(np.prod([shape[a] for a in axes]))


def normalize_axes(axes, ndim: int) -> tuple[int, ...]:
    """Non-negative, sorted, unique axes; raises on an axis out of range."""
    out = sorted({a % ndim if -ndim <= a < ndim else _bad_axis(a, ndim) for a in axes})
    return tuple(out)


def _bad_axis(axis, ndim):
    raise ValueError(f"axis {axis} out of range for an input of {ndim} dimensions")


# ----------------------------------------------------------------------------------------- LayerNorm

def affine_shape(shape, axes, layernorm_affine: str) -> tuple[int, ...]:
    """Shape of gamma/beta, broadcastable against the input: every normalized axis (per_element) or
    only the last one (per_feature_axis, Flax's feature_axes=-1 default)."""
    axes = normalize_axes(axes, len(shape))
    keep = axes if layernorm_affine == "per_element" else (len(shape) - 1,)
    return tuple(shape[i] if i in keep else 1 for i in range(len(shape)))


def layer_norm(x, axes, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
               eps_placement="inside_sqrt") -> Normalized:
    """LayerNorm over `axes` (trailing or not, contiguous or not).  gamma/beta must broadcast against x
    (see affine_shape); None means no affine step."""
    x = np.asarray(x, dtype=np.float64)
    return _normalize(x, normalize_axes(axes, x.ndim), gamma, beta, eps, norm_variance, eps_placement)


# ----------------------------------------------------------------------------------------- BatchNorm

def batch_axes(ndim: int, feature_axis: int) -> tuple[int, ...]:
    """BatchNorm reduces over every axis except the feature axis."""
    f = normalize_axes((feature_axis,), ndim)[0]
    return tuple(a for a in range(ndim) if a != f)


def channel_shape(ndim: int, feature_axis: int, channels: int) -> tuple[int, ...]:
    f = normalize_axes((feature_axis,), ndim)[0]
    return tuple(channels if a == f else 1 for a in range(ndim))


def batch_norm_train(x, feature_axis, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
                     eps_placement="inside_sqrt") -> Normalized:
    """Training forward: normalize with this batch's statistics. gamma/beta are 1-D (channels)."""
    x = np.asarray(x, dtype=np.float64)
    axes = batch_axes(x.ndim, feature_axis)
    cshape = channel_shape(x.ndim, feature_axis, x.shape[normalize_axes((feature_axis,), x.ndim)[0]])
    return _normalize(x, axes, reshaped(gamma, cshape), reshaped(beta, cshape), eps, norm_variance, eps_placement)


def batch_norm_eval(x, feature_axis, running_mean, running_var, gamma=None, beta=None, eps=1e-5, *,
                    eps_placement="inside_sqrt") -> Normalized:
    """Eval forward from given running statistics (1-D, channels)."""
    x = np.asarray(x, dtype=np.float64)
    cshape = channel_shape(x.ndim, feature_axis, len(running_mean))
    mean = np.reshape(np.asarray(running_mean, np.float64), cshape)
    var = np.reshape(np.asarray(running_var, np.float64), cshape)
    inv_std = _inv_std(var, eps, eps_placement)
    return Normalized(y=normalize(x, mean, var, eps, eps_placement, reshaped(gamma, cshape), reshaped(beta, cshape)),
                      mean=mean, var=var, inv_std=inv_std)


def reshaped(param, shape):
    """A 1-D per-channel parameter reshaped to broadcast (None stays None)."""
    return None if param is None else np.reshape(np.asarray(param, np.float64), shape)


def normalize(x, centre, var, eps, eps_placement, gamma=None, beta=None) -> np.ndarray:
    """(x - centre) * inv_std(var, eps) * gamma + beta, every argument broadcast against x, in float64."""
    y = (np.asarray(x, np.float64) - centre) * _inv_std(var, eps, eps_placement)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


# --------------------------------------------------------------- BatchNorm over several training steps
#
# A training run is built from four small pieces, so that every combination of conventions reuses them
# (golden/candidates.py memoises these same functions):
#   batch_statistics     the per-step batch mean and biased variance (no convention involved)
#   stored_variance      what the running variance is fed: biased, or unbiased (N/(N-1))
#   running_trajectory   the running statistics after (and before) each step: momentum form, initial stats
#   training_normalizer  which statistics a training step normalizes with; eval_normalizer likewise for eval

@dataclass(frozen=True)
class BatchStatistics:
    mean: np.ndarray  # (K, C): each training batch's per-channel mean
    var: np.ndarray   # (K, C): each training batch's biased per-channel variance
    n: int            # values per channel in the first batch
    sizes: np.ndarray  # (K,): values per channel in each batch (batch sizes may change from step to step)


def batch_statistics(batches, feature_axis) -> BatchStatistics:
    """Each batch's statistics; `batches` is (K, *shape), or a list whose batch axes differ in length."""
    if len({np.shape(b) for b in batches}) > 1:
        return _ragged_statistics(batches, feature_axis)
    x = np.asarray(batches, dtype=np.float64)  # (K, *shape)
    axes = tuple(1 + a for a in batch_axes(x.ndim - 1, feature_axis))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes)
    n = int(x[0].size // var.shape[1])
    return BatchStatistics(mean.reshape(var.shape), var, n, np.full(len(x), n))


def _ragged_statistics(batches, feature_axis) -> BatchStatistics:
    xs = [np.asarray(b, dtype=np.float64) for b in batches]
    axes = batch_axes(xs[0].ndim, feature_axis)
    means = [x.mean(axis=axes, keepdims=True) for x in xs]
    var = np.stack([((x - m) ** 2).mean(axis=axes) for x, m in zip(xs, means)])
    sizes = np.array([x.size // var.shape[1] for x in xs])
    return BatchStatistics(np.stack([m.reshape(-1) for m in means]), var, int(sizes[0]), sizes)


def stored_variance(stats: BatchStatistics, running_variance: str) -> np.ndarray:
    """The variance the running average is fed (N = 1 makes the unbiased one 0/0: the formula's NaN)."""
    if running_variance == "biased":
        return stats.var
    n = stats.sizes[:, None]  # each step's own N: the factor changes with the batch size
    with np.errstate(divide="ignore", invalid="ignore"):
        return stats.var * n / (n - 1)


def weight_on_new(momentum, step: int, momentum_form: str) -> float:
    """The weight the `step`-th batch (from 1) gets in the running average.

    weight_on_new:      the number given (PyTorch)
    weight_on_old:      1 - the number given (Keras, Flax)
    cumulative_average: 1 / step, whatever the number (PyTorch momentum=None)
    """
    if momentum_form == "cumulative_average":
        return 1.0 / step
    if momentum is None:
        raise ValueError("momentum None is only meaningful for the cumulative_average form")
    return momentum if momentum_form == "weight_on_new" else 1.0 - momentum


def update_running(running, batch_stat, momentum, step: int, momentum_form: str):
    """One running-statistic update after `step` batches:  r = (1 - w) * r + w * batch."""
    w = weight_on_new(momentum, step, momentum_form)
    return (1.0 - w) * running + w * batch_stat


@dataclass(frozen=True)
class Trajectory:
    """Running statistics as the layer reports them after each step, and those in force before it."""
    mean: np.ndarray         # (K, C)
    var: np.ndarray          # (K, C)
    mean_before: np.ndarray  # (K, C): step k normalizes with these under training_statistics=running_previous
    var_before: np.ndarray


def running_trajectory(batch_mean, fed_var, momentum, momentum_form: str, initial_running_stats: str) -> Trajectory:
    """zero_one starts the running mean at 0 and the variance at 1.  zero_debiased starts both
    accumulators at 0 and reports them divided by the total weight the batches got so far,
    1 - prod(1 - w_t), as TF1's assign_moving_average(zero_debias=True); for the cumulative average
    that weight is 1 already."""
    debias = initial_running_stats == "zero_debiased"
    channels = np.shape(batch_mean)[1]
    acc_mean, acc_var = np.zeros(channels), (np.zeros(channels) if debias else np.ones(channels))
    kept = 1.0  # the weight still on the initial values
    shown = (acc_mean, acc_var)
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):  # zero weight so far is 0/0, the formula's NaN
        for step, (m, v) in enumerate(zip(batch_mean, fed_var), start=1):
            before = shown
            acc_mean = update_running(acc_mean, m, momentum, step, momentum_form)
            acc_var = update_running(acc_var, v, momentum, step, momentum_form)
            kept *= 1.0 - weight_on_new(momentum, step, momentum_form)
            shown = (acc_mean / (1.0 - kept), acc_var / (1.0 - kept)) if debias else (acc_mean, acc_var)
            rows.append((*shown, *before))
    mean, var, mean_before, var_before = (np.stack(col) for col in zip(*rows))
    return Trajectory(mean, var, mean_before, var_before)


def training_normalizer(step: int, stats: BatchStatistics, trajectory: Trajectory, norm_variance: str,
                        training_statistics: str):
    """(centre, variance) per channel that training step `step` (from 0) normalizes its batch with."""
    if training_statistics == "batch":
        var = stats.var[step] if norm_variance == "biased" else stats.var[step] * stats.sizes[step] / (stats.sizes[step] - 1)
        return stats.mean[step], var
    if training_statistics == "running_updated":
        return trajectory.mean[step], trajectory.var[step]
    return trajectory.mean_before[step], trajectory.var_before[step]


def eval_normalizer(x_eval, feature_axis, trajectory: Trajectory, norm_variance: str, eval_statistics: str):
    """(centre, variance) per channel the eval forward normalizes with."""
    if eval_statistics == "running":
        return trajectory.mean[-1], trajectory.var[-1]
    stats = batch_statistics([x_eval], feature_axis)
    return training_normalizer(0, stats, trajectory, norm_variance, "batch")


@dataclass(frozen=True)
class TrainingRun:
    """K training steps followed by one eval forward, as the reference sees them."""
    y_train: np.ndarray | list  # (K, *shape); a list of K arrays where the batch sizes differ
    running_mean: np.ndarray  # (K, C) after each step
    running_var: np.ndarray   # (K, C) after each step
    y_eval: np.ndarray        # (*shape) eval forward of x_eval after the last step


def full_profile(profile: dict[str, str] | None) -> dict[str, str]:
    """The profile with BASE_PROFILE filling the conventions it does not name, every variant checked."""
    p = {**BASE_PROFILE, **{k: v for k, v in (profile or {}).items() if k in CONVENTIONS}}
    for convention, variant in p.items():
        check_variant(convention, variant)
    return p


def batch_norm_steps(batches, x_eval, feature_axis, gamma=None, beta=None, eps=1e-5, momentum=0.1,
                     profile: dict[str, str] | None = None) -> TrainingRun:
    """The running-statistics update over several training steps, then eval.  `momentum` is the number
    handed to the layer; `profile` picks the variant of each convention (missing ones take BASE_PROFILE).
    The batches' batch axes may differ in length from step to step: each step's statistics use its own N."""
    p = full_profile(profile)
    batches = [np.asarray(b, np.float64) for b in batches]
    stats = batch_statistics(batches, feature_axis)
    trajectory = running_trajectory(stats.mean, stored_variance(stats, p["running_variance"]), momentum,
                                    p["momentum_form"], p["initial_running_stats"])
    cshape = channel_shape(batches[0].ndim, feature_axis, stats.mean.shape[1])
    g, b = reshaped(gamma, cshape), reshaped(beta, cshape)

    def run(x, centre_var):
        centre, var = (np.reshape(s, cshape) for s in centre_var)
        return normalize(x, centre, var, eps, p["eps_placement"], g, b)

    with np.errstate(divide="ignore", invalid="ignore"):
        ys = [run(x, training_normalizer(k, stats, trajectory, p["norm_variance"], p["training_statistics"]))
              for k, x in enumerate(batches)]
        y_eval = run(x_eval, eval_normalizer(x_eval, feature_axis, trajectory, p["norm_variance"],
                                             p["eval_statistics"]))
    ragged = len({y.shape for y in ys}) > 1
    return TrainingRun(ys if ragged else np.stack(ys), trajectory.mean, trajectory.var, y_eval)


# ------------------------------------------------------------------------------------------- RMSNorm
#
#   y = x / sqrt(mean(x^2) + eps) * w          (eps_placement inside_sqrt, rms_weight_form w)
#   y = x / (sqrt(mean(x^2)) + eps) * (1 + w)  (added_to_std: eps added to the RMS; one_plus_w: Gemma)
#
# A float16/bfloat16 input goes through roundings that depend on the implementation; each casting style
# is simulated in float64, rounding to the input dtype exactly where the style does (`rnd`), and
# nowhere else: what the style computes in float32 is exact here.  golden/rms_inputs.py keeps every value
# that float32 arithmetic could round the other way far from a rounding midpoint, so a correct float32
# computation of a style lands on the simulation's numbers.
#   float32_cast_once   x in float32, mean of squares, rsqrt, times the weight, one cast at the end
#                       (transformers GemmaRMSNorm; torch.nn.RMSNorm)
#   cast_before_weight  x * rsqrt(mean(x^2) + eps) in float32, cast to the input dtype, then times the
#                       weight in the input dtype (transformers LlamaRMSNorm with a weight of the input dtype)
#   input_dtype         every operation rounds to the input dtype (squares, mean, + eps, rsqrt, products,
#                       1 + w); reductions accumulate in float32 as eager kernels do

def rms_weight(weight, rms_weight_form: str, rnd=None):
    """The multiplier the stored weight stands for; `rnd` rounds 1 + w where the style does."""
    if weight is None:
        return None
    r = rnd or (lambda v: v)  # the input_dtype style holds a float32 weight in the input dtype too
    w = r(np.asarray(weight, np.float64))
    return w if rms_weight_form == "w" else r(1.0 + w)


def rms_inverse(ms, eps, eps_placement: str, rnd=None):
    """1 / sqrt(ms + eps) or 1 / (sqrt(ms) + eps), each operation rounded by `rnd` where given."""
    r = rnd or (lambda v: v)
    if eps_placement == "inside_sqrt":
        return r(1.0 / np.sqrt(r(ms + eps)))
    return r(1.0 / r(r(np.sqrt(ms)) + eps))


def squared_scale(x, axes, statistic: str = "mean_square"):
    """mean(x^2), or the biased variance of x (rms_scaling's), over axes (keepdims)."""
    if statistic == "variance":
        return ((x - x.mean(axis=axes, keepdims=True)) ** 2).mean(axis=axes, keepdims=True)
    return (x * x).mean(axis=axes, keepdims=True)


def rms_norm(x, axes, weight=None, eps=1e-6, *, eps_placement="inside_sqrt", rms_weight_form="w",
             rms_casting="float32_cast_once", rms_statistic="mean_square", rnd=None, out_rnd=None) -> Normalized:
    """RMSNorm over `axes`; `weight` broadcasts against x.  `rnd` rounds a float64 array to the input
    dtype (None for float32/float64 inputs, where every casting style is the exact formula); `out_rnd`
    is the output's final rounding where it differs (None: rnd; the identity for a float32 output)."""
    out_rnd = rnd if out_rnd is None else out_rnd
    x = np.asarray(x, dtype=np.float64)
    axes = normalize_axes(axes, x.ndim)
    check_variant("rms_casting", rms_casting)
    check_variant("rms_statistic", rms_statistic)
    if rnd is None or rms_casting != "input_dtype":
        ms = squared_scale(x, axes, rms_statistic)
        inv = rms_inverse(ms, eps, eps_placement)
        w = rms_weight(weight, rms_weight_form)
        final = out_rnd or (lambda v: v)
        if rms_casting == "cast_before_weight" and rnd is not None:
            h = rnd(x * inv)
            y = h if w is None else final(h * w)
        else:
            y = final(x * inv if w is None else x * inv * w)
    else:
        ms = (rnd(rnd(x * x).mean(axis=axes, keepdims=True)) if rms_statistic == "mean_square"
              else rnd(squared_scale(x, axes, "variance")))
        inv = rms_inverse(ms, eps, eps_placement, rnd)
        w = rms_weight(weight, rms_weight_form, rnd)
        h = rnd(x * inv)
        y = h if w is None else out_rnd(h * w)
    return Normalized(y=y, mean=np.zeros_like(ms), var=ms, inv_std=inv)


# ---------------------------------------------------------------------------- GroupNorm, InstanceNorm
#
# Axis 0 is the batch; the channel axis is any other.  A group is G's share of the channels of one
# sample, with every other axis: statistics per (sample, group).  InstanceNorm is GroupNorm with one
# channel a group (G = C, where the mapping cannot matter), plus, optionally, running statistics fed
# as BatchNorm's are (torch's track_running_stats): the batch's mean over samples of each instance's
# mean and variance, so the trajectory pieces above serve it unchanged.

def grouped(x, channel_axis: int, groups: int, group_mapping: str = "contiguous") -> np.ndarray:
    """x as (N, G, C/G, *other axes): axis 1 the group, axis 2 the channel within it."""
    x = np.asarray(x)
    ca = _channel_axis(x.ndim, channel_axis)
    moved = np.moveaxis(x, ca, 1)
    n, c, rest = moved.shape[0], moved.shape[1], moved.shape[2:]
    if groups < 1 or c % groups:
        raise ValueError(f"{c} channels cannot be split into {groups} groups")
    if group_mapping == "contiguous":
        return moved.reshape(n, groups, c // groups, *rest)
    if group_mapping == "strided":
        return np.swapaxes(moved.reshape(n, c // groups, groups, *rest), 1, 2)
    raise ValueError(f"unknown group mapping {group_mapping!r}")


def ungrouped(g, shape, channel_axis: int, group_mapping: str = "contiguous") -> np.ndarray:
    """The inverse of grouped: back to `shape`."""
    g = np.asarray(g)
    ca = _channel_axis(len(shape), channel_axis)
    if group_mapping == "strided":
        g = np.swapaxes(g, 1, 2)
    moved = g.reshape(g.shape[0], g.shape[1] * g.shape[2], *g.shape[3:])
    return np.moveaxis(moved, 1, ca).reshape(shape)


def _channel_axis(ndim: int, channel_axis: int) -> int:
    ca = normalize_axes((channel_axis,), ndim)[0]
    if ca == 0:
        raise ValueError("axis 0 is the batch: the channel axis must be another")
    return ca


def group_norm(x, channel_axis, groups, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
               eps_placement="inside_sqrt", group_mapping="contiguous") -> Normalized:
    """GroupNorm: statistics per sample and group of channels; gamma/beta per channel (1-D).  y is in
    x's layout; mean/var/inv_std in the grouped layout (N, G, 1, 1...)."""
    x = np.asarray(x, dtype=np.float64)
    g = grouped(x, channel_axis, groups, group_mapping)
    out = _normalize(g, tuple(range(2, g.ndim)), None, None, eps, norm_variance, eps_placement)
    y = ungrouped(out.y, x.shape, channel_axis, group_mapping)
    cshape = channel_shape(x.ndim, channel_axis, x.shape[_channel_axis(x.ndim, channel_axis)])
    y = _affine(y, reshaped(gamma, cshape), reshaped(beta, cshape))
    return Normalized(y=y, mean=out.mean, var=out.var, inv_std=out.inv_std)


def _affine(y, gamma, beta):
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def instance_norm(x, channel_axis, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
                  eps_placement="inside_sqrt") -> Normalized:
    """InstanceNorm: GroupNorm with one channel a group."""
    x = np.asarray(x, dtype=np.float64)
    channels = x.shape[_channel_axis(x.ndim, channel_axis)]
    return group_norm(x, channel_axis, channels, gamma, beta, eps, norm_variance=norm_variance,
                      eps_placement=eps_placement)


def instance_axes(ndim: int, channel_axis: int) -> tuple[int, ...]:
    """The axes one instance (sample, channel) spans."""
    ca = _channel_axis(ndim, channel_axis)
    return tuple(a for a in range(1, ndim) if a != ca)


def instance_statistics(batches, channel_axis) -> tuple[np.ndarray, np.ndarray, BatchStatistics]:
    """Per step, each instance's mean and biased variance (K, N, C), and what the running statistics are
    fed: their means over the samples, as BatchStatistics with n the values of one instance."""
    x = np.asarray(batches, dtype=np.float64)  # (K, N, ...)
    ca = _channel_axis(x.ndim - 1, channel_axis)
    moved = np.moveaxis(x, 1 + ca, 2)  # (K, N, C, *spatial)
    axes = tuple(range(3, moved.ndim))
    mean = moved.mean(axis=axes)
    var = ((moved - mean.reshape(*mean.shape, *[1] * len(axes))) ** 2).mean(axis=axes)
    n = int(np.prod(moved.shape[3:]))
    return mean, var, BatchStatistics(mean.mean(axis=1), var.mean(axis=1), n, np.full(len(x), n))


def instance_norm_steps(batches, x_eval, channel_axis, gamma=None, beta=None, eps=1e-5, momentum=0.1,
                        profile: dict[str, str] | None = None) -> TrainingRun:
    """InstanceNorm with tracked running statistics: K training steps (each instance normalized with
    its own statistics, the running ones updated as BatchNorm's from the means over samples), then eval
    with the running statistics or (instance_eval_statistics = instance) the eval input's own."""
    p = full_profile(profile)
    x = np.asarray(batches, np.float64)
    inst_mean, inst_var, stats = instance_statistics(x, channel_axis)
    trajectory = running_trajectory(stats.mean, stored_variance(stats, p["running_variance"]), momentum,
                                    p["momentum_form"], p["initial_running_stats"])
    ys = np.stack([instance_norm(b, channel_axis, gamma, beta, eps, norm_variance=p["norm_variance"],
                                 eps_placement=p["eps_placement"]).y for b in x])
    if p["instance_eval_statistics"] == "instance":
        y_eval = instance_norm(x_eval, channel_axis, gamma, beta, eps, norm_variance=p["norm_variance"],
                               eps_placement=p["eps_placement"]).y
    else:
        y_eval = batch_norm_eval(x_eval, channel_axis, trajectory.mean[-1], trajectory.var[-1], gamma, beta, eps,
                                 eps_placement=p["eps_placement"]).y
    return TrainingRun(ys, trajectory.mean, trajectory.var, y_eval)
