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
    "layernorm_affine": ("per_element", "per_feature_axis"),
}

# The variant assumed for a convention that a case does not vary (what every framework documents).
BASE_PROFILE: dict[str, str] = {
    "norm_variance": "biased",
    "running_variance": "biased",
    "momentum_form": "weight_on_new",
    "eps_placement": "inside_sqrt",
    "initial_running_stats": "zero_one",
    "eval_statistics": "running",
    "layernorm_affine": "per_element",
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
    inv_std = _inv_std(var, eps, eps_placement)
    y = (x - mean) * inv_std
    if gamma is not None:
        y = y * np.asarray(gamma, dtype=np.float64)
    if beta is not None:
        y = y + np.asarray(beta, dtype=np.float64)
    return Normalized(y=y, mean=mean, var=var, inv_std=inv_std)


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


def _channel_shape(ndim: int, feature_axis: int, channels: int) -> tuple[int, ...]:
    f = normalize_axes((feature_axis,), ndim)[0]
    return tuple(channels if a == f else 1 for a in range(ndim))


def batch_norm_train(x, feature_axis, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
                     eps_placement="inside_sqrt") -> Normalized:
    """Training forward: normalize with this batch's statistics. gamma/beta are 1-D (channels)."""
    x = np.asarray(x, dtype=np.float64)
    axes = batch_axes(x.ndim, feature_axis)
    cshape = _channel_shape(x.ndim, feature_axis, x.shape[normalize_axes((feature_axis,), x.ndim)[0]])
    g = None if gamma is None else np.reshape(np.asarray(gamma, np.float64), cshape)
    b = None if beta is None else np.reshape(np.asarray(beta, np.float64), cshape)
    return _normalize(x, axes, g, b, eps, norm_variance, eps_placement)


def batch_norm_eval(x, feature_axis, running_mean, running_var, gamma=None, beta=None, eps=1e-5, *,
                    eps_placement="inside_sqrt") -> Normalized:
    """Eval forward from given running statistics (1-D, channels)."""
    x = np.asarray(x, dtype=np.float64)
    cshape = _channel_shape(x.ndim, feature_axis, len(running_mean))
    mean = np.reshape(np.asarray(running_mean, np.float64), cshape)
    var = np.reshape(np.asarray(running_var, np.float64), cshape)
    inv_std = _inv_std(var, eps, eps_placement)
    y = (x - mean) * inv_std
    if gamma is not None:
        y = y * np.reshape(np.asarray(gamma, np.float64), cshape)
    if beta is not None:
        y = y + np.reshape(np.asarray(beta, np.float64), cshape)
    return Normalized(y=y, mean=mean, var=var, inv_std=inv_std)


def update_running(running, batch_stat, momentum, step: int, momentum_form: str):
    """One running-statistic update after `step` batches (step counts from 1).

    weight_on_new:      r = (1 - m) * r + m * batch        (PyTorch)
    weight_on_old:      r = m * r + (1 - m) * batch        (Keras, Flax), m the number given
    cumulative_average: r = r + (batch - r) / step         (PyTorch momentum=None)
    """
    if momentum_form == "cumulative_average":
        return running + (batch_stat - running) / step
    if momentum is None:
        raise ValueError("momentum None is only meaningful for the cumulative_average form")
    w_new = momentum if momentum_form == "weight_on_new" else 1.0 - momentum
    return (1.0 - w_new) * running + w_new * batch_stat


@dataclass(frozen=True)
class TrainingRun:
    """K training steps followed by one eval forward, as the reference sees them."""
    y_train: np.ndarray       # (K, *shape)
    running_mean: np.ndarray  # (K, C) after each step
    running_var: np.ndarray   # (K, C) after each step
    y_eval: np.ndarray        # (*shape) eval forward of x_eval after the last step


def batch_norm_steps(batches, x_eval, feature_axis, gamma=None, beta=None, eps=1e-5, momentum=0.1,
                     profile: dict[str, str] | None = None) -> TrainingRun:
    """The running-statistics update over several training steps, then eval.

    `momentum` is the number handed to the layer; `profile` picks the variant of each convention
    (missing conventions take BASE_PROFILE).  zero_debiased starts both accumulators at 0 and divides by
    the total weight given so far, 1 - (1 - w_new)^t, as TF1's assign_moving_average(zero_debias=True).
    """
    p = {**BASE_PROFILE, **(profile or {})}
    for convention, variant in p.items():
        check_variant(convention, variant)
    channels = np.asarray(batches[0]).shape[normalize_axes((feature_axis,), np.ndim(batches[0]))[0]]
    debias = p["initial_running_stats"] == "zero_debiased"
    acc_mean = np.zeros(channels)
    acc_var = np.zeros(channels) if debias else np.ones(channels)
    ys, means, vars_ = [], [], []
    for step, x in enumerate(batches, start=1):
        out = batch_norm_train(x, feature_axis, gamma, beta, eps, norm_variance=p["norm_variance"],
                               eps_placement=p["eps_placement"])
        n = out.y.size // channels
        biased = out.var.reshape(-1) if p["norm_variance"] == "biased" else out.var.reshape(-1) * (n - 1) / n
        stored_var = biased * n / (n - 1) if p["running_variance"] == "unbiased" else biased
        acc_mean = update_running(acc_mean, out.mean.reshape(-1), momentum, step, p["momentum_form"])
        acc_var = update_running(acc_var, stored_var, momentum, step, p["momentum_form"])
        if debias and p["momentum_form"] != "cumulative_average":  # its total weight is 1 already
            w_new = momentum if p["momentum_form"] == "weight_on_new" else 1.0 - momentum
            weight = 1.0 - (1.0 - w_new) ** step
            means.append(acc_mean / weight)
            vars_.append(acc_var / weight)
        else:
            means.append(acc_mean.copy())
            vars_.append(acc_var.copy())
        ys.append(out.y)
    if p["eval_statistics"] == "batch":
        y_eval = batch_norm_train(x_eval, feature_axis, gamma, beta, eps, eps_placement=p["eps_placement"]).y
    else:
        y_eval = batch_norm_eval(x_eval, feature_axis, means[-1], vars_[-1], gamma, beta, eps,
                                 eps_placement=p["eps_placement"]).y
    return TrainingRun(np.stack(ys), np.stack(means), np.stack(vars_), y_eval)
