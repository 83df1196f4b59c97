"""Keras 3 LayerNormalization / BatchNormalization on the tensorflow, jax and torch backends.

Keras fixes its backend once per process (KERAS_BACKEND, read at the first `import keras`), so the
pytest process never imports keras: each backend runs in its own long-lived child process
(adapters/remote.py), started on the first case that needs it and reused for every later one.  The
three backends thus report as three adapters, keras[tensorflow], keras[jax] and keras[torch], from one
pytest invocation, with no Keras global state (backend, dtype policy, layer registry) in the parent.

Execution (`execution_mode`): on jax, "jit" by default, as model.fit runs: the layer is built eagerly,
then the whole sequence of calls (training steps, eval) is one jax.jit'ed program of
`layer.stateless_call`, kept in JAX's persistent cache between runs (adapters/cache.py).
keras[jax][eager] (on request: --frameworks=eager) calls the layer op by op instead.  The tensorflow
and torch backends run eagerly (layer.__call__), as Keras does outside fit/predict.

Translations (the one documented place):
- momentum: Keras weights the old value (moving = m * moving + (1 - m) * batch): native_momentum
  hands over 1 - m.  PyTorch's cumulative average (None) has no Keras form: Unsupported.
- layout: `axis` (BatchNormalization) and `axis=[...]` (LayerNormalization) take the case's axes
  natively.  LayerNormalization's affine spans every normalized axis: per-feature is Unsupported.
- dtype: the layer's dtype policy is the input's dtype name ("float16" etc.), so variables and output
  are in it; Keras upcasts low-precision statistics itself.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os

import ml_dtypes
import numpy as np

from normconf.adapters.base import DEFAULT, ImportingAdapter, Unsupported, given, trajectory
from normconf.adapters.compat import enable_x64
from normconf.adapters.keras_groups import KerasGroupOps

KERAS_BACKENDS = ("tensorflow", "jax", "torch")


def default_mode(backend: str) -> str:
    return "jit" if backend == "jax" else "eager"


def keras_name(backend: str, execution_mode: str) -> str:
    """keras[jax] runs jitted; its eager variant is keras[jax][eager]."""
    return f"keras[{backend}]" + ("" if execution_mode == default_mode(backend) else f"[{execution_mode}]")


def _is_bf16(a) -> bool:
    return np.asarray(a).dtype == ml_dtypes.bfloat16


class KerasAdapter(KerasGroupOps, ImportingAdapter):
    """Runs inside a child process whose KERAS_BACKEND is already set."""
    momentum_form = "weight_on_old"

    def __init__(self):
        self.backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        self.execution_mode = os.environ.get("NORMCONF_EXECUTION_MODE") or default_mode(self.backend)
        self.name = keras_name(self.backend, self.execution_mode)
        self.requires = ("keras", self.backend)

    def availability(self):
        if self.backend == "jax" and importlib.util.find_spec("jax"):  # before Keras compiles anything
            from normconf.adapters.cache import enable_jax_cache
            enable_jax_cache()
        return super().availability()

    def _x64(self, x):
        if self.backend == "jax" and np.asarray(x).dtype == np.float64:
            return enable_x64()
        return contextlib.nullcontext()

    def _tensor(self, a):
        import keras
        a = np.asarray(a)
        if _is_bf16(a):  # not every backend takes ml_dtypes arrays: cast from the exact float32 values
            return keras.ops.cast(keras.ops.convert_to_tensor(a.astype(np.float32)), "bfloat16")
        return keras.ops.convert_to_tensor(a, dtype=str(a.dtype))

    @staticmethod
    def _numpy(t):
        import keras
        if "bfloat16" in str(t.dtype):  # numpy has no bfloat16: through float32, exactly
            return keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")).astype(ml_dtypes.bfloat16)
        return np.asarray(keras.ops.convert_to_numpy(t)).copy()

    def _calls(self, layer, calls):
        """The layer on each (input, training) in turn: its outputs and, after each call, its moving mean
        and variance (BatchNormalization; None for LayerNormalization)."""
        moving = [getattr(layer, n) for n in ("moving_mean", "moving_variance") if hasattr(layer, n)]
        if self.execution_mode == "jit":
            return self._jit_calls(layer, calls, moving)
        out = []
        for x, training in calls:
            y = layer(self._tensor(x), **_training(training))
            out.append((self._numpy(y), [self._numpy(v.value) for v in moving] or None))
        return out

    @staticmethod
    def _jit_calls(layer, calls, moving):
        """One jax.jit program over layer.stateless_call for the whole sequence, state threaded through."""
        import jax
        state_vars = layer.non_trainable_variables
        where = [next(i for i, v in enumerate(state_vars) if v is m) for m in moving]  # `is`: == is elementwise

        def run(trainable, state, xs):
            out = []
            for x, (_, training) in zip(xs, calls):
                y, state = layer.stateless_call(trainable, state, x, **_training(training))
                out.append((y, [state[i] for i in where] or None))
            return out
        out = jax.jit(run)([v.value for v in layer.trainable_variables], [v.value for v in state_vars],
                           [x for x, _ in calls])
        return jax.tree.map(lambda a: np.asarray(a).copy(), out)

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        import keras
        axes = sorted(a % x.ndim for a in axes)
        if gamma is not None and sorted(a % x.ndim for a in affine_axes) != axes:
            raise Unsupported("LayerNormalization's gamma/beta span every normalized axis (no per-feature affine)")
        with self._x64(x):
            layer = keras.layers.LayerNormalization(axis=axes, center=beta is not None, scale=gamma is not None,
                                                    dtype=str(x.dtype), **given(epsilon=eps))
            layer.build(x.shape)
            if gamma is not None:
                layer.gamma.assign(self._tensor(gamma))
                layer.beta.assign(self._tensor(beta))
            [(y, _)] = self._calls(layer, [(x, None)])
        return {"y": y}

    def _bn(self, x, fa, gamma, beta, eps, momentum):
        import keras
        if momentum is None:
            raise Unsupported("BatchNormalization has no cumulative average (PyTorch momentum=None)")
        layer = keras.layers.BatchNormalization(center=beta is not None, scale=gamma is not None, dtype=str(x.dtype),
                                                **given(axis=fa, epsilon=eps, momentum=momentum))
        layer.build(x.shape)
        if gamma is not None:
            layer.gamma.assign(self._tensor(gamma))
            layer.beta.assign(self._tensor(beta))
        return layer

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        fa = feature_axis if feature_axis is DEFAULT else feature_axis % x_eval.ndim
        with self._x64(x_eval):
            layer = self._bn(x_eval, fa, gamma, beta, eps, momentum)
            *steps, (y_eval, _) = self._calls(layer, [(x, True) for x in batches] + [(x_eval, False)])
        return trajectory([(y, mean, var) for y, (mean, var) in steps], y_eval)

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        fa = feature_axis % x.ndim
        with self._x64(x):
            layer = self._bn(x, fa, gamma, beta, eps, 0.9)
            layer.moving_mean.assign(self._tensor(running_mean))
            layer.moving_variance.assign(self._tensor(running_var))
            [(y, _)] = self._calls(layer, [(x, False)])
        return {"y": y}


def _training(training) -> dict:
    """LayerNormalization is called without `training`, as before; BatchNormalization with it."""
    return {} if training is None else {"training": training}


def remote_keras(backend: str, execution_mode: str | None = None):
    from normconf.adapters.remote import RemoteAdapter
    mode = execution_mode or default_mode(backend)
    return RemoteAdapter(name=keras_name(backend, mode), target="normconf.adapters.keras_adapter:KerasAdapter",
                         env={"KERAS_BACKEND": backend, "NORMCONF_EXECUTION_MODE": mode}, requires=("keras", backend),
                         momentum_form=KerasAdapter.momentum_form, execution_mode=mode,
                         reason="Keras reads KERAS_BACKEND once per process, at its first import")
