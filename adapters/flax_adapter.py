"""Flax on JAX: flax.linen and flax.nnx LayerNorm / BatchNorm, as two adapters.

Translations (the one documented place):
- momentum: Flax weights the old value (running = m * running + (1 - m) * batch); native_momentum
  hands over 1 - m.  PyTorch's cumulative average (None) has no Flax form: Unsupported.
- layout: BatchNorm's `axis` and LayerNorm's `reduction_axes` / `feature_axes` take the case's axes
  natively; per-element affine is feature_axes = reduction_axes, per-feature is feature_axes = -1.
- dtype: param_dtype is the input's dtype so the output keeps it; statistics follow Flax's own
  choice (force_float32_reductions / promotion).  float64 runs inside enable_x64() only, so the
  flag never leaks into other cases.
- Everything else (use_fast_variance, initial batch_stats) is left at the framework's default:
  that is what users get, and what the suite measures.
"""
from __future__ import annotations

import contextlib
import inspect

import numpy as np

from adapters.base import DEFAULT, ImportingAdapter, Unsupported, given
from adapters.compat import assign, enable_x64


def _x64(x):
    return enable_x64() if np.asarray(x).dtype == np.float64 else contextlib.nullcontext()


def _jnp(a):
    import jax.numpy as jnp
    return jnp.asarray(np.asarray(a))


def _np(a):
    return np.asarray(a).copy()


def _axes(axes, ndim):
    return tuple(sorted(a % ndim for a in axes))


class _FlaxBase(ImportingAdapter):
    requires = ("jax", "jaxlib", "flax")
    momentum_form = "weight_on_old"

    @staticmethod
    def _no_cumulative(momentum):
        if momentum is None:
            raise Unsupported("Flax BatchNorm has no cumulative average (PyTorch momentum=None)")


class FlaxLinenAdapter(_FlaxBase):
    name = "flax_linen"

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        from flax import linen as nn
        with _x64(x):
            layer = nn.LayerNorm(reduction_axes=_axes(axes, x.ndim), feature_axes=_axes(affine_axes, x.ndim),
                                 use_scale=gamma is not None, use_bias=beta is not None,
                                 param_dtype=x.dtype, **given(epsilon=eps))
            params = {}
            if gamma is not None:
                params = {"scale": _jnp(gamma), "bias": _jnp(beta)}
            return {"y": _np(layer.apply({"params": params}, _jnp(x)))}

    def _bn(self, x, fa, gamma, beta, eps, momentum, use_running_average):
        from flax import linen as nn
        return nn.BatchNorm(use_running_average=use_running_average, use_scale=gamma is not None,
                            use_bias=beta is not None, param_dtype=x.dtype,
                            **given(axis=fa, epsilon=eps, momentum=momentum))

    def _variables(self, layer, x, gamma, beta):
        import jax
        variables = layer.init(jax.random.key(0), _jnp(x))  # the framework's own initial batch_stats
        params = dict(variables.get("params", {}))
        if gamma is not None:
            params = {"scale": _jnp(gamma), "bias": _jnp(beta)}
        return {"params": params, "batch_stats": variables["batch_stats"]}

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        self._no_cumulative(momentum)
        fa = feature_axis if feature_axis is DEFAULT else feature_axis % x_eval.ndim
        with _x64(x_eval):
            train = self._bn(x_eval, fa, gamma, beta, eps, momentum, False)
            variables = self._variables(train, batches[0], gamma, beta)
            ys, means, vars_ = [], [], []
            for x in batches:
                y, updates = train.apply(variables, _jnp(x), mutable=["batch_stats"])
                variables = {**variables, **updates}
                ys.append(_np(y))
                means.append(_np(variables["batch_stats"]["mean"]))
                vars_.append(_np(variables["batch_stats"]["var"]))
            evaluate = self._bn(x_eval, fa, gamma, beta, eps, momentum, True)
            y_eval = _np(evaluate.apply(variables, _jnp(x_eval)))
        return {"y_train": np.stack(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        fa = feature_axis % x.ndim
        with _x64(x):
            layer = self._bn(x, fa, gamma, beta, eps, 0.9, True)
            variables = self._variables(layer, x, gamma, beta)
            variables["batch_stats"] = {"mean": _jnp(running_mean), "var": _jnp(running_var)}
            return {"y": _np(layer.apply(variables, _jnp(x)))}


class FlaxNnxAdapter(_FlaxBase):
    name = "flax_nnx"

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        from flax import nnx
        feature_axes = _axes(affine_axes, x.ndim)
        with _x64(x):
            layer = nnx.LayerNorm(int(np.prod([x.shape[a] for a in feature_axes])),
                                  reduction_axes=_axes(axes, x.ndim), feature_axes=feature_axes,
                                  use_scale=gamma is not None, use_bias=beta is not None, param_dtype=x.dtype,
                                  rngs=nnx.Rngs(0), **given(epsilon=eps))
            if gamma is not None:
                assign(layer.scale, _jnp(np.ravel(gamma)))  # nnx holds the affine flat: num_features
                assign(layer.bias, _jnp(np.ravel(beta)))
            return {"y": _np(layer(_jnp(x)))}

    def _bn(self, x, fa, gamma, beta, eps, momentum):
        from flax import nnx
        # nnx needs num_features up front: for the default probe, the size along nnx's own default axis
        size_axis = inspect.signature(nnx.BatchNorm.__init__).parameters["axis"].default if fa is DEFAULT else fa
        layer = nnx.BatchNorm(x.shape[size_axis], use_scale=gamma is not None, use_bias=beta is not None,
                              param_dtype=x.dtype, rngs=nnx.Rngs(0), **given(axis=fa, epsilon=eps, momentum=momentum))
        if gamma is not None:
            assign(layer.scale, _jnp(gamma))
            assign(layer.bias, _jnp(beta))
        return layer

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        self._no_cumulative(momentum)
        fa = feature_axis if feature_axis is DEFAULT else feature_axis % x_eval.ndim
        with _x64(x_eval):
            layer = self._bn(x_eval, fa, gamma, beta, eps, momentum)
            ys, means, vars_ = [], [], []
            for x in batches:
                ys.append(_np(layer(_jnp(x), use_running_average=False)))
                means.append(_np(layer.mean[...]))
                vars_.append(_np(layer.var[...]))
            y_eval = _np(layer(_jnp(x_eval), use_running_average=True))
        return {"y_train": np.stack(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        fa = feature_axis % x.ndim
        with _x64(x):
            layer = self._bn(x, fa, gamma, beta, eps, 0.9)
            assign(layer.mean, _jnp(running_mean))
            assign(layer.var, _jnp(running_var))
            return {"y": _np(layer(_jnp(x), use_running_average=True))}
