"""Analytic float64 gradients of the normalization formulas in golden/reference.py: the backward oracle.

For y = x̂ * gamma + beta with x̂ = (x - mean) * s and upstream gradient g = dL/dy (the cotangent):

    dbeta  = sum of g over every axis gamma does not span
    dgamma = sum of g * x̂ over the same axes
    dx̂     = g * gamma

How dx follows from dx̂ is where conventions and modes differ:

- statistics from this input (LayerNorm, training BatchNorm), over n values per group, variance divided by
  n - ddof (ddof 0 biased, 1 unbiased):

      dx = s * (dx̂ - mean(dx̂)) + dvar * 2 (x - mean) / (n - ddof),  dvar = sum(dx̂ * (x - mean)) * ds/dvar

  with ds/dvar = -s³/2 (eps inside the root: s = (var + eps)^-1/2) or -s² / (2 sqrt(var)) (eps added to the
  standard deviation: s = 1 / (sqrt(var) + eps)).  The mean's own term vanishes: sum(x - mean) = 0.
- statistics held constant (eval-mode BatchNorm with its running statistics, and the classic hand-written
  bug of a training backward that ignores the batch statistics): dx = s * dx̂.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normconf.golden.reference import (
    _ddof,
    _inv_std,
    _reduced_size,
    batch_axes,
    channel_shape,
    normalize_axes,
    reshaped,
)


@dataclass(frozen=True)
class Gradients:
    dx: np.ndarray
    dgamma: np.ndarray | None  # in gamma's own shape (None without an affine step)
    dbeta: np.ndarray | None


def _inv_std_slope(var, eps, eps_placement):
    """ds/dvar of the inverse standard deviation s(var)."""
    s = _inv_std(var, eps, eps_placement)
    if eps_placement == "inside_sqrt":
        return -0.5 * s ** 3
    with np.errstate(divide="ignore", invalid="ignore"):  # var = 0 with eps outside the root: the formula's inf
        return -(s ** 2) / (2.0 * np.sqrt(var))


def _affine_grads(g, xhat, gamma, beta, param_shape):
    """dgamma, dbeta reduced to the broadcast shape of the parameters, then to their own shape."""
    reduce = tuple(i for i, n in enumerate(param_shape) if n == 1 and g.shape[i] != 1)

    def total(a):
        return a.sum(axis=reduce, keepdims=True)

    dgamma = None if gamma is None else total(g * xhat).reshape(np.shape(gamma))
    dbeta = None if beta is None else total(g).reshape(np.shape(beta))
    return dgamma, dbeta


def normalized_backward(x, axes, g, gamma_b, eps, *, norm_variance="biased", eps_placement="inside_sqrt",
                        through_statistics=True, centre=None, var=None):
    """(dx, x̂) for the statistics over `axes` of x, or the given `centre`/`var` (broadcast against x);
    through_statistics=False treats them as constants.  gamma_b: gamma broadcast against x, or None."""
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    if centre is None:
        centre = x.mean(axis=axes, keepdims=True)
        var = ((x - centre) ** 2).sum(axis=axes, keepdims=True) / (_reduced_size(x.shape, axes) - _ddof(norm_variance))
    s = _inv_std(var, eps, eps_placement)
    xc = x - centre
    dxhat = g if gamma_b is None else g * gamma_b
    if not through_statistics:
        return dxhat * s, xc * s
    n_eff = _reduced_size(x.shape, axes) - _ddof(norm_variance)
    dvar = (dxhat * xc).sum(axis=axes, keepdims=True) * _inv_std_slope(var, eps, eps_placement)
    dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True)) + dvar * 2.0 * xc / n_eff
    return dx, xc * s


def layer_norm_backward(x, axes, g, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
                        eps_placement="inside_sqrt") -> Gradients:
    """Gradients of reference.layer_norm; gamma/beta broadcast against x (reference.affine_shape)."""
    x = np.asarray(x, np.float64)
    axes = normalize_axes(axes, x.ndim)
    gamma_b = None if gamma is None else np.asarray(gamma, np.float64)
    dx, xhat = normalized_backward(x, axes, g, gamma_b, eps, norm_variance=norm_variance,
                                   eps_placement=eps_placement)
    shape = np.shape(gamma) if gamma is not None else (np.shape(beta) if beta is not None else x.shape)
    return Gradients(dx, *_affine_grads(np.asarray(g, np.float64), xhat, gamma, beta, shape))


def batch_norm_train_backward(x, feature_axis, g, gamma=None, beta=None, eps=1e-5, *, norm_variance="biased",
                              eps_placement="inside_sqrt", through_statistics=True) -> Gradients:
    """Gradients of reference.batch_norm_train (one training step, its own batch statistics).
    through_statistics=False is the classic bug: the batch mean and variance treated as constants."""
    x = np.asarray(x, np.float64)
    axes = batch_axes(x.ndim, feature_axis)
    cshape = channel_shape(x.ndim, feature_axis, x.shape[normalize_axes((feature_axis,), x.ndim)[0]])
    dx, xhat = normalized_backward(x, axes, g, reshaped(gamma, cshape), eps, norm_variance=norm_variance,
                                   eps_placement=eps_placement, through_statistics=through_statistics)
    return Gradients(dx, *_affine_grads(np.asarray(g, np.float64), xhat, gamma, beta, cshape))


def batch_norm_eval_backward(x, feature_axis, running_mean, running_var, g, gamma=None, beta=None, eps=1e-5, *,
                             eps_placement="inside_sqrt") -> Gradients:
    """Gradients of reference.batch_norm_eval: the running statistics are constants, no batch coupling."""
    x = np.asarray(x, np.float64)
    cshape = channel_shape(x.ndim, feature_axis, len(running_mean))
    dx, xhat = normalized_backward(x, batch_axes(x.ndim, feature_axis), g, reshaped(gamma, cshape), eps,
                                   eps_placement=eps_placement, through_statistics=False,
                                   centre=reshaped(running_mean, cshape), var=reshaped(running_var, cshape))
    return Gradients(dx, *_affine_grads(np.asarray(g, np.float64), xhat, gamma, beta, cshape))


def rms_norm_backward(x, axes, g, weight=None, eps=1e-6, *, eps_placement="inside_sqrt",
                      rms_weight_form="w") -> Gradients:
    """Gradients of reference.rms_norm (mean-square statistic), float64.  With s = r(ms), ms = mean(x²)
    over the n values of `axes`, and w_eff = w or 1 + w (rms_weight_form):

        dweight = sum of g * x * s over every axis the weight does not span   (the same for both forms)
        dx      = s * dx̂ + sum(dx̂ * x) * ds/dms * 2 x / n,   dx̂ = g * w_eff

    There is no mean term: nothing is subtracted.  ds/dms as _inv_std_slope (eps inside or added to the RMS)."""
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    axes = normalize_axes(axes, x.ndim)
    ms = (x * x).mean(axis=axes, keepdims=True)
    s = _inv_std(ms, eps, eps_placement)
    w = None if weight is None else np.asarray(weight, np.float64)
    w = None if w is None else w.reshape((1,) * (x.ndim - w.ndim) + w.shape)  # broadcast against x
    w_eff = w if w is None or rms_weight_form == "w" else 1.0 + w
    dxhat = g if w_eff is None else g * w_eff
    dms = (dxhat * x).sum(axis=axes, keepdims=True) * _inv_std_slope(ms, eps, eps_placement)
    dx = s * dxhat + dms * 2.0 * x / _reduced_size(x.shape, axes)
    dweight = None if w is None else _affine_grads(g, x * s, weight, None, w.shape)[0]
    return Gradients(dx, dweight, None)
