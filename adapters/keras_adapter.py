"""Keras 3 LayerNormalization / BatchNormalization on the tensorflow, jax and torch backends.

Keras fixes its backend once per process (KERAS_BACKEND, read at the first `import keras`), so the
pytest process never imports keras: each backend runs in its own long-lived child process
(adapters/remote.py), started on the first case that needs it and reused for every later one.  The
three backends thus report as three adapters, keras[tensorflow], keras[jax] and keras[torch], from one
pytest invocation, with no Keras global state (backend, dtype policy, layer registry) in the parent.

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
import os

import ml_dtypes
import numpy as np

from adapters.base import DEFAULT, ImportingAdapter, Unsupported, given
from adapters.compat import enable_x64

KERAS_BACKENDS = ("tensorflow", "jax", "torch")


def _is_bf16(a) -> bool:
    return np.asarray(a).dtype == ml_dtypes.bfloat16


class KerasAdapter(ImportingAdapter):
    """Runs inside a child process whose KERAS_BACKEND is already set."""
    momentum_form = "weight_on_old"

    def __init__(self):
        self.backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        self.name = f"keras[{self.backend}]"
        self.requires = ("keras", self.backend)

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

    def _var(self, v):
        return self._numpy(v.value)

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
            return {"y": self._numpy(layer(self._tensor(x)))}

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
            ys, means, vars_ = [], [], []
            for x in batches:
                ys.append(self._numpy(layer(self._tensor(x), training=True)))
                means.append(self._var(layer.moving_mean))
                vars_.append(self._var(layer.moving_variance))
            y_eval = self._numpy(layer(self._tensor(x_eval), training=False))
        return {"y_train": np.stack(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        fa = feature_axis % x.ndim
        with self._x64(x):
            layer = self._bn(x, fa, gamma, beta, eps, 0.9)
            layer.moving_mean.assign(self._tensor(running_mean))
            layer.moving_variance.assign(self._tensor(running_var))
            return {"y": self._numpy(layer(self._tensor(x), training=False))}


def remote_keras(backend: str):
    from adapters.remote import RemoteAdapter
    return RemoteAdapter(name=f"keras[{backend}]", target="adapters.keras_adapter:KerasAdapter",
                         env={"KERAS_BACKEND": backend}, requires=("keras", backend),
                         momentum_form=KerasAdapter.momentum_form,
                         reason="Keras reads KERAS_BACKEND once per process, at its first import")
