"""Flax on JAX: flax.linen and flax.nnx LayerNorm / BatchNorm / RMSNorm, as two adapters.

Execution (`execution_mode`): "jit" by default, the way Flax users train: each call (a LayerNorm
forward; init, every training step and the eval forward of a BatchNorm run) is one function under
`jax.jit`, so XLA compiles one program per case, not one per primitive, and the program is kept in
JAX's persistent cache between runs (adapters/cache.py).  The same functions run op by op in the
"eager" variants (flax_linen[eager], flax_nnx[eager], on request: --frameworks=eager);
tests/self/test_jit_agreement.py checks that the two agree.

Translations (the one documented place):
- momentum: Flax weights the old value (running = m * running + (1 - m) * batch); native_momentum
  hands over 1 - m.  PyTorch's cumulative average (None) has no Flax form: Unsupported.
- layout: BatchNorm's `axis` and LayerNorm's `reduction_axes` / `feature_axes` take the case's axes
  natively; per-element affine is feature_axes = reduction_axes, per-feature is feature_axes = -1.
- dtype: param_dtype is the input's dtype so the output keeps it; statistics follow Flax's own
  choice (force_float32_reductions / promotion).  float64 runs inside jax.enable_x64(True) only, so the
  flag never leaks into other cases.
- Everything else (use_fast_variance, initial batch_stats) is left at the framework's default:
  that is what users get, and what the suite measures.
"""
from __future__ import annotations

import contextlib
import inspect

import numpy as np

from normconf.adapters.base import DEFAULT, ImportingAdapter, Unsupported, given, layer_class, trajectory
from normconf.adapters.compat import assign, enable_x64
from normconf.adapters.flax_groups import FlaxLinenGroupOps, FlaxNnxGroupOps


def _x64(x):
    return enable_x64() if np.asarray(x).dtype == np.float64 else contextlib.nullcontext()


def _np(a):
    return np.asarray(a).copy()


def _axes(axes, ndim):
    return tuple(sorted(a % ndim for a in axes))


def _params(gamma, beta) -> dict:
    return {} if gamma is None else {"scale": gamma, "bias": beta}


class _FlaxBase(ImportingAdapter):
    requires = ("jax", "jaxlib", "flax")
    momentum_form = "weight_on_old"

    def __init__(self, execution_mode: str = "jit"):
        self.execution_mode = execution_mode
        if execution_mode != "jit":
            self.name = f"{type(self).name}[{execution_mode}]"

    def _run(self, fn, x, *args):
        """fn(x, *args) with numpy in and out: one jax.jit program, or op by op in the eager variant.
        The arrays are handed over with device_put, a copy that compiles nothing."""
        import jax

        from normconf.adapters.cache import enable_jax_cache
        enable_jax_cache()
        with _x64(x):
            arrays = jax.device_put((x, *args))
            run = jax.jit(fn) if self.execution_mode == "jit" else fn
            return jax.tree.map(_np, run(*arrays))

    def _grad(self, forward, x, gamma, beta, dy, *state):
        """forward(x, gamma, beta, *state) and its jax.vjp for the cotangent dy (see _vjp)."""
        return self._vjp(forward, x, {"dgamma": gamma, "dbeta": beta}, dy, *state)

    def _vjp(self, forward, x, params: dict, dy, *state):
        """forward(x, *params, *state) and its jax.vjp for the cotangent dy, in one program (jit, like
        jax.grad of a training step).  params: output name -> value; each gradient comes back in its shape."""
        import jax
        names = list(params)

        def run(x, dy, *rest):
            values, fixed = rest[:len(names)], rest[len(names):]
            y, vjp = jax.vjp(lambda x, *p: forward(x, *p, *fixed), x, *values)
            dx, *grads = vjp(dy.astype(y.dtype))
            return {"y": y, "dx": dx, **dict(zip(names, grads))}
        out = self._run(run, x, dy, *params.values(), *state)
        return {**out, **{k: out[k].reshape(np.shape(v)) for k, v in params.items()}}

    @staticmethod
    def _batch_state(x, fa, running_mean, running_var):
        """Running statistics for the call: the given ones (eval), or the initial zeros and ones (training)."""
        if running_mean is not None:
            return running_mean, running_var
        return np.zeros(x.shape[fa], x.dtype), np.ones(x.shape[fa], x.dtype)

    @staticmethod
    def _no_cumulative(momentum):
        if momentum is None:
            raise Unsupported("Flax BatchNorm has no cumulative average (PyTorch momentum=None)")


class FlaxLinenAdapter(FlaxLinenGroupOps, _FlaxBase):
    name = "flax_linen"

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        from flax import linen as nn
        layer = nn.LayerNorm(reduction_axes=_axes(axes, x.ndim), feature_axes=_axes(affine_axes, x.ndim),
                             use_scale=gamma is not None, use_bias=beta is not None,
                             param_dtype=x.dtype, **given(epsilon=eps))

        def forward(x, gamma, beta):
            return layer.apply({"params": _params(gamma, beta)}, x)
        return {"y": self._run(forward, x, gamma, beta)}

    def _bn(self, x, fa, gamma, beta, eps, momentum, use_running_average):
        from flax import linen as nn
        return nn.BatchNorm(use_running_average=use_running_average, use_scale=gamma is not None,
                            use_bias=beta is not None, param_dtype=x.dtype,
                            **given(axis=fa, epsilon=eps, momentum=momentum))

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        import jax
        self._no_cumulative(momentum)
        fa = feature_axis if feature_axis is DEFAULT else feature_axis % x_eval.ndim
        train = self._bn(x_eval, fa, gamma, beta, eps, momentum, False)
        evaluate = self._bn(x_eval, fa, gamma, beta, eps, momentum, True)

        def steps(x_eval, batches, gamma, beta):
            initial = train.init(jax.random.key(0), batches[0])  # the framework's own initial batch_stats
            variables = {"params": _params(gamma, beta), "batch_stats": initial["batch_stats"]}
            out = []
            for x in batches:
                y, updates = train.apply(variables, x, mutable=["batch_stats"])
                variables = {**variables, **updates}
                out.append((y, variables["batch_stats"]["mean"], variables["batch_stats"]["var"]))
            return out, evaluate.apply(variables, x_eval)
        return trajectory(*self._run(steps, x_eval, batches, gamma, beta))

    def rms_norm(self, x, axes, weight, eps):
        from flax import linen as nn
        layer = layer_class(nn, "RMSNorm")(reduction_axes=_axes(axes, x.ndim), feature_axes=_axes(axes, x.ndim),
                           use_scale=weight is not None, param_dtype=(x if weight is None else weight).dtype,
                           **given(epsilon=eps))

        def forward(x, weight):
            return layer.apply({"params": {} if weight is None else {"scale": weight}}, x)
        return {"y": self._run(forward, x, weight)}

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        layer = self._bn(x, feature_axis % x.ndim, gamma, beta, eps, 0.9, True)

        def forward(x, gamma, beta, mean, var):
            return layer.apply({"params": _params(gamma, beta), "batch_stats": {"mean": mean, "var": var}}, x)
        return {"y": self._run(forward, x, gamma, beta, running_mean, running_var)}


    # -- gradients (issue 23): jax.vjp of the module's apply, under the same jit as the forward --
    def layer_norm_grad(self, x, axes, gamma, beta, eps, dy):
        from flax import linen as nn
        layer = nn.LayerNorm(reduction_axes=_axes(axes, x.ndim), feature_axes=_axes(axes, x.ndim),
                             param_dtype=x.dtype, **given(epsilon=eps))
        return self._grad(lambda x, g, b: layer.apply({"params": _params(g, b)}, x), x, gamma, beta, dy)

    def batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
        fa = feature_axis % x.ndim
        training = running_mean is None
        layer = self._bn(x, fa, gamma, beta, eps, 0.9, not training)

        def forward(x, g, b, mean, var):
            variables = {"params": _params(g, b), "batch_stats": {"mean": mean, "var": var}}
            if training:
                return layer.apply(variables, x, mutable=["batch_stats"])[0]
            return layer.apply(variables, x)
        return self._grad(forward, x, gamma, beta, dy, *self._batch_state(x, fa, running_mean, running_var))

    def rms_norm_grad(self, x, axes, weight, eps, dy):
        from flax import linen as nn
        layer = layer_class(nn, "RMSNorm")(reduction_axes=_axes(axes, x.ndim), feature_axes=_axes(axes, x.ndim),
                           param_dtype=weight.dtype, **given(epsilon=eps))
        return self._vjp(lambda x, w: layer.apply({"params": {"scale": w}}, x), x, {"dweight": weight}, dy)


class FlaxNnxAdapter(FlaxNnxGroupOps, _FlaxBase):
    """nnx modules hold their state: each function builds its module inside the traced function (the
    initial values are the framework's own), so the whole call is still one program."""
    name = "flax_nnx"

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        from flax import nnx
        feature_axes = _axes(affine_axes, x.ndim)

        def forward(x, gamma, beta):
            layer = nnx.LayerNorm(int(np.prod([x.shape[a] for a in feature_axes])),
                                  reduction_axes=_axes(axes, x.ndim), feature_axes=feature_axes,
                                  use_scale=gamma is not None, use_bias=beta is not None, param_dtype=x.dtype,
                                  rngs=nnx.Rngs(0), **given(epsilon=eps))
            _set_affine(layer, gamma, beta)
            return layer(x)
        flat = (None, None) if gamma is None else (np.ravel(gamma), np.ravel(beta))  # nnx holds the affine flat
        return {"y": self._run(forward, x, *flat)}

    def rms_norm(self, x, axes, weight, eps):
        from flax import nnx
        reduced = _axes(axes, x.ndim)

        def forward(x, weight):
            layer = layer_class(nnx, "RMSNorm")(int(np.prod([x.shape[a] for a in reduced])), reduction_axes=reduced,
                                feature_axes=reduced, use_scale=weight is not None,
                                param_dtype=(x if weight is None else weight).dtype,
                                rngs=nnx.Rngs(0), **given(epsilon=eps))
            if weight is not None:
                assign(layer.scale, weight)
            return layer(x)
        return {"y": self._run(forward, x, None if weight is None else np.ravel(weight))}

    def _bn(self, x, fa, gamma, beta, eps, momentum):
        from flax import nnx
        # nnx needs num_features up front: for the default probe, the size along nnx's own default axis
        size_axis = inspect.signature(nnx.BatchNorm.__init__).parameters["axis"].default if fa is DEFAULT else fa
        layer = nnx.BatchNorm(x.shape[size_axis], use_scale=gamma is not None, use_bias=beta is not None,
                              param_dtype=x.dtype, rngs=nnx.Rngs(0), **given(axis=fa, epsilon=eps, momentum=momentum))
        _set_affine(layer, gamma, beta)
        return layer

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        self._no_cumulative(momentum)
        fa = feature_axis if feature_axis is DEFAULT else feature_axis % x_eval.ndim

        def steps(x_eval, batches, gamma, beta):
            layer = self._bn(x_eval, fa, gamma, beta, eps, momentum)
            out = []
            for x in batches:
                out.append((layer(x, use_running_average=False), layer.mean[...], layer.var[...]))
            return out, layer(x_eval, use_running_average=True)
        return trajectory(*self._run(steps, x_eval, batches, gamma, beta))

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        def forward(x, gamma, beta, mean, var):
            layer = self._bn(x, feature_axis % x.ndim, gamma, beta, eps, 0.9)
            assign(layer.mean, mean)
            assign(layer.var, var)
            return layer(x, use_running_average=True)
        return {"y": self._run(forward, x, gamma, beta, running_mean, running_var)}

    # -- gradients (issue 23): jax.vjp of a function that builds the module and calls it, under one jit --
    def layer_norm_grad(self, x, axes, gamma, beta, eps, dy):
        from flax import nnx
        ax = _axes(axes, x.ndim)

        def forward(x, g, b):
            layer = nnx.LayerNorm(int(np.prod([x.shape[a] for a in ax])), reduction_axes=ax, feature_axes=ax,
                                  param_dtype=x.dtype, rngs=nnx.Rngs(0), **given(epsilon=eps))
            _set_affine(layer, g, b)
            return layer(x)
        return self._grad(forward, x, np.ravel(gamma), np.ravel(beta), dy)  # nnx holds the affine flat

    def batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
        fa = feature_axis % x.ndim
        training = running_mean is None

        def forward(x, g, b, mean, var):
            layer = self._bn(x, fa, g, b, eps, 0.9)
            assign(layer.mean, mean)
            assign(layer.var, var)
            return layer(x, use_running_average=not training)
        return self._grad(forward, x, gamma, beta, dy, *self._batch_state(x, fa, running_mean, running_var))

    def rms_norm_grad(self, x, axes, weight, eps, dy):
        from flax import nnx
        reduced = _axes(axes, x.ndim)

        def forward(x, w):
            layer = layer_class(nnx, "RMSNorm")(int(np.prod([x.shape[a] for a in reduced])), reduction_axes=reduced,
                                feature_axes=reduced, param_dtype=weight.dtype, rngs=nnx.Rngs(0), **given(epsilon=eps))
            assign(layer.scale, w)
            return layer(x)
        out = self._vjp(forward, x, {"dweight": np.ravel(weight)}, dy)  # nnx holds the scale flat
        return {**out, "dweight": out["dweight"].reshape(np.shape(weight))}


def _set_affine(layer, gamma, beta):
    if gamma is not None:
        assign(layer.scale, gamma)
        assign(layer.bias, beta)
