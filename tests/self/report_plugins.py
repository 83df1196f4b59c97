"""Plug-ins that give the report something to show: values that differ between columns, a documented
value that is wrong, NaN where numbers are due, and a LayerNorm-only implementation
(tests/self/test_report_view.py runs them beside the numpy adapter)."""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import Unsupported
from normconf.adapters.numpy_adapter import NumpyAdapter

KERAS_LIKE = {"running_variance": "biased", "momentum_form": "weight_on_old", "default_eps": 1e-3,
              "default_feature_axis": -1}


class KerasLike(NumpyAdapter):
    """Keras's documented profile, correctly implemented and documented (momentum 0.99 on the old value)."""
    name = "keras_like"
    documented = {**KERAS_LIKE, "default_momentum": 0.01}  # documented as the weight on the new batch

    def __init__(self):
        super().__init__({**KERAS_LIKE, "default_momentum": 0.99})  # the adapter's own form


class Mislabelled(NumpyAdapter):
    """Documents the unbiased running variance and stores the biased one; one-pass variance in float32,
    which returns NaN at large means (sqrt of a negative variance)."""
    name = "mislabelled"
    documented = {"running_variance": "unbiased", "default_eps": 1e-5}

    def __init__(self):
        super().__init__({"running_variance": "biased"})

    def statistics(self, x, axes, ddof):
        x32 = x.astype(np.float32) if x.dtype != np.float64 else x
        mean = x32.mean(axis=axes, keepdims=True)
        var = (x32 * x32).mean(axis=axes, keepdims=True) - mean * mean
        return mean, var * (self._size(x, axes) / (self._size(x, axes) - ddof))


class LayerNormOnly(NumpyAdapter):
    """A LayerNorm and nothing else: every BatchNorm row is not run or not supported, never "differs"."""
    name = "ln_only"
    documented = {"norm_variance": "biased", "eps_placement": "inside_sqrt"}

    def batch_norm_steps(self, *args):
        raise Unsupported("ln_only has no BatchNorm")

    def batch_norm_eval(self, *args):
        raise Unsupported("ln_only has no BatchNorm")
