"""Keras 3's GroupNormalization, mixed into the Keras adapter (adapters/keras_adapter.py; it runs in the
child process of each backend).

Translations: `axis` takes the channel axis natively; InstanceNorm is GroupNormalization(groups=-1),
which Keras documents as instance normalization (one channel a group): Keras 3 has no InstanceNorm layer
of its own.  There are no running statistics: instance_norm_steps is Unsupported (the base's).
"""
from __future__ import annotations

from normconf.adapters.base import DEFAULT, given


class KerasGroupOps:
    def _group_layer(self, x, channel_axis, groups, gamma, beta, eps):
        import keras
        axis = channel_axis if channel_axis is DEFAULT else channel_axis % x.ndim
        layer = keras.layers.GroupNormalization(center=beta is not None, scale=gamma is not None, dtype=str(x.dtype),
                                                **given(axis=axis, groups=groups, epsilon=eps))
        return self._built(layer, x, gamma, beta)

    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        with self._x64(x):
            [(y, _)] = self._calls(self._group_layer(x, channel_axis, groups, gamma, beta, eps), [(x, None)])
        return {"y": y}

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        return self.group_norm(x, channel_axis, -1, gamma, beta, eps)
