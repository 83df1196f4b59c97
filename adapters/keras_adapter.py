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
keras[tensorflow][xla] and keras[tensorflow][function] (on request: --frameworks=compiled) call the layer
inside tf.function(jit_compile=True) and plain tf.function (TF_FUNCTION_MODES).

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
# What a Keras column runs as its rms_norm (NORMCONF_KERAS_RMS): the RMSNormalization layer (the default
# columns), the op keras.ops.rms_normalization, or LayerNormalization(rms_scaling=True), which divides by
# the standard deviation (mean subtracted; identified as rms_statistic = variance).  The last two are
# on request (group keras_rms): their columns run RMSNorm cases only.
RMS_SUFFIX = {"layer": "", "op": "[rms_op]", "rms_scaling": "[rms_scaling]"}


# On request (group `compiled`), the tensorflow backend's layer call inside tf.function: "xla" with
# jit_compile=True (as model.fit with jit_compile), "function" without (plain graph mode).  Value: jit_compile.
TF_FUNCTION_MODES = {"xla": True, "function": False}


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
        self.rms_variant = os.environ.get("NORMCONF_KERAS_RMS") or "layer"
        self.name += RMS_SUFFIX[self.rms_variant]
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
        call = layer
        if self.execution_mode in TF_FUNCTION_MODES:  # the layer call traced by tf.function, XLA or not
            import tensorflow as tf
            call = tf.function(lambda x, **kw: layer(x, **kw), jit_compile=TF_FUNCTION_MODES[self.execution_mode])
        out = []
        for x, training in calls:
            y = call(self._tensor(x), **_training(training))
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
        self._rms_only()
        axes = sorted(a % x.ndim for a in axes)
        if gamma is not None and sorted(a % x.ndim for a in affine_axes) != axes:
            raise Unsupported("LayerNormalization's gamma/beta span every normalized axis (no per-feature affine)")
        with self._x64(x):
            layer = keras.layers.LayerNormalization(axis=axes, center=beta is not None, scale=gamma is not None,
                                                    dtype=str(x.dtype), **given(epsilon=eps))
            self._built(layer, x, gamma, beta)
            [(y, _)] = self._calls(layer, [(x, None)])
        return {"y": y}

    def rms_norm(self, x, axes, weight, eps):
        """A float32 weight beside float16/bfloat16 x runs under Keras's mixed policy ("mixed_bfloat16":
        float32 variables, computations in the input's dtype), as Keras's mixed precision does."""
        import keras
        axes = sorted(a % x.ndim for a in axes)
        policy = str(x.dtype) if weight is None or weight.dtype == x.dtype else f"mixed_{x.dtype}"
        with self._x64(x):
            if self.rms_variant == "op":
                scale = None if weight is None else self._tensor(weight)
                return {"y": self._numpy(keras.ops.rms_normalization(self._tensor(x), scale=scale, axis=axes,
                                                                     **given(epsilon=eps)))}
            if self.rms_variant == "rms_scaling":
                layer = keras.layers.LayerNormalization(axis=axes, rms_scaling=True, center=False,
                                                        scale=weight is not None, dtype=policy,
                                                        **given(epsilon=eps))
                layer.build(x.shape)
                if weight is not None:
                    layer.gamma.assign(self._tensor(weight))
            else:  # RMSNormalization always holds a scale (ones: no weight)
                layer = keras.layers.RMSNormalization(axis=axes, dtype=policy, **given(epsilon=eps))
                layer.build(x.shape)
                if weight is not None:
                    layer.scale.assign(self._tensor(weight))
            [(y, _)] = self._calls(layer, [(x, None)])
        return {"y": y}

    def _rms_only(self):
        if self.rms_variant != "layer":
            raise Unsupported(f"{self.name} measures RMSNorm only (see keras[{self.backend}] for the rest)")

    def _bn(self, x, fa, gamma, beta, eps, momentum):
        import keras
        self._rms_only()
        if momentum is None:
            raise Unsupported("BatchNormalization has no cumulative average (PyTorch momentum=None)")
        layer = keras.layers.BatchNormalization(center=beta is not None, scale=gamma is not None, dtype=str(x.dtype),
                                                **given(axis=fa, epsilon=eps, momentum=momentum))
        return self._built(layer, x, gamma, beta)

    def _built(self, layer, x, gamma, beta):
        """The layer built for x's shape, holding the case's gamma and beta (where it has them)."""
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

    # -- gradients (issue 23): through the backend's own mechanism, on the layer's trainable variables and input --
    def layer_norm_grad(self, x, axes, gamma, beta, eps, dy):
        import keras
        axes = sorted(a % x.ndim for a in axes)
        with self._x64(x):
            layer = keras.layers.LayerNormalization(axis=axes, dtype=str(x.dtype), **given(epsilon=eps))
            return self._grad(self._built(layer, x, gamma, beta), x, dy, None)

    def batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
        with self._x64(x):
            layer = self._bn(x, feature_axis % x.ndim, gamma, beta, eps, 0.9)
            if running_mean is not None:
                layer.moving_mean.assign(self._tensor(running_mean))
                layer.moving_variance.assign(self._tensor(running_var))
            return self._grad(layer, x, dy, running_mean is None)

    def rms_norm_grad(self, x, axes, weight, eps, dy):
        import keras
        if self.rms_variant != "layer":
            raise Unsupported(f"{self.name}: RMSNorm gradient cells run on the RMSNormalization layer (keras[{self.backend}])")
        with self._x64(x):
            layer = keras.layers.RMSNormalization(axis=sorted(a % x.ndim for a in axes), dtype=str(x.dtype),
                                                  **given(epsilon=eps))
            layer.build(x.shape)
            layer.scale.assign(self._tensor(weight))
            return self._grad(layer, x, dy, None, {"dweight": layer.scale})

    def _grad(self, layer, x, dy, training, variables=None) -> dict:
        """y and the gradients of sum(y * dy) with respect to x and the layer's trainable variables (output name
        -> variable; gamma and beta unless given): tf.GradientTape, jax.vjp of stateless_call (under jit in the
        jit mode, as model.fit's train step), or torch autograd."""
        variables = variables or {"dgamma": layer.gamma, "dbeta": layer.beta}
        params = list(variables.values())
        xt, dyt = self._tensor(x), self._tensor(dy)
        if self.backend == "tensorflow":
            import tensorflow as tf
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = layer(xt, **_training(training))
            dx, *grads = tape.gradient(y, [xt, *params], output_gradients=dyt)
        elif self.backend == "jax":
            y, dx, *grads = self._jax_grad(layer, xt, dyt, training, params)
        else:
            xt.requires_grad_(True)
            y = layer(xt, **_training(training))
            y.backward(dyt)
            dx, grads = xt.grad, [p.value.grad for p in params]
        return {k: self._numpy(v) for k, v in (("y", y), ("dx", dx), *zip(variables, grads))}

    def _jax_grad(self, layer, xt, dyt, training, params):
        import jax
        trainable = layer.trainable_variables
        where = [next(i for i, v in enumerate(trainable) if v is p) for p in params]  # `is`: == is elementwise
        state = [v.value for v in layer.non_trainable_variables]

        def run(trainable, x, dy):
            def f(trainable, x):
                return layer.stateless_call(trainable, state, x, **_training(training))[0]
            y, vjp = jax.vjp(f, trainable, x)
            dtrain, dx = vjp(dy)
            return (y, dx, *(dtrain[i] for i in where))
        run = jax.jit(run) if self.execution_mode == "jit" else run
        return run([v.value for v in trainable], xt, dyt)


def _training(training) -> dict:
    """LayerNormalization is called without `training`, as before; BatchNormalization with it."""
    return {} if training is None else {"training": training}


def remote_keras(backend: str, execution_mode: str | None = None, rms_variant: str = "layer"):
    from normconf.adapters.remote import RemoteAdapter
    mode = execution_mode or default_mode(backend)
    return RemoteAdapter(name=keras_name(backend, mode) + RMS_SUFFIX[rms_variant], target="normconf.adapters.keras_adapter:KerasAdapter",
                         env={"KERAS_BACKEND": backend, "NORMCONF_EXECUTION_MODE": mode,
                              "NORMCONF_KERAS_RMS": rms_variant}, requires=("keras", backend),
                         momentum_form=KerasAdapter.momentum_form, execution_mode=mode,
                         reason="Keras reads KERAS_BACKEND once per process, at its first import")
