"""ONNX's GroupNormalization-21 and InstanceNormalization-6, one node each in onnxruntime's CPU provider,
mixed into the onnxruntime adapter (adapters/onnxruntime_adapter.py, whose run_node builds the graph).

Translations: channels are dim 1 (a channels-last case is moved there and back); scale and bias are
required inputs (ones and zeros without an affine step: an exact identity); num_groups is a required
attribute, so a default-groups probe is Unsupported.  GroupNormalization-21 takes scale and bias per
channel (version 18 took them per group and is deprecated); onnxruntime 1.32 runs it (measured).
There are no running statistics: instance_norm_steps is Unsupported (the base's).
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import DEFAULT, Unsupported, given


class OnnxGroupOps:
    def _channel_node(self, op, x, channel_axis, gamma, beta, eps, **attributes):
        ca = 1 if channel_axis is DEFAULT else channel_axis % x.ndim  # the ONNX channels: dim 1
        xf = np.moveaxis(x, ca, 1)
        channels = xf.shape[1]
        inputs = {"X": xf, "scale": gamma if gamma is not None else np.ones(channels, x.dtype),
                  "bias": beta if beta is not None else np.zeros(channels, x.dtype)}
        (y,) = self._run_node(op, inputs, ["Y"], **attributes, **given(epsilon=eps))
        return {"y": np.moveaxis(y, 1, ca)}

    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        if groups is DEFAULT:
            raise Unsupported("GroupNormalization's num_groups is a required attribute: no default")
        return self._channel_node("GroupNormalization", x, channel_axis, gamma, beta, eps, num_groups=groups)

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        return self._channel_node("InstanceNormalization", x, channel_axis, gamma, beta, eps)
