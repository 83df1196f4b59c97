"""Flax's GroupNorm and InstanceNorm (linen and nnx), mixed into the Flax adapters (adapters/flax_adapter.py).

Translations: GroupNorm takes the channels on the last axis (reduction_axes must include it), so a
channels-first case is moved to channels-last and back (jnp.moveaxis inside the traced function);
InstanceNorm's feature_axes takes the channel axis natively.  num_groups is left out for the
default-groups probe; scale/bias are switched off together when the case has no affine.
"""
from __future__ import annotations

from normconf.adapters.base import DEFAULT, given, layer_class


def _params(gamma, beta) -> dict:
    return {} if gamma is None else {"scale": gamma, "bias": beta}


def _set_affine(layer, gamma, beta):
    from normconf.adapters.compat import assign
    if gamma is not None:
        assign(layer.scale, gamma)
        assign(layer.bias, beta)


class FlaxLinenGroupOps:
    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        import jax.numpy as jnp
        from flax import linen as nn
        ca = x.ndim - 1 if channel_axis is DEFAULT else channel_axis % x.ndim  # GroupNorm's channels: the last axis
        layer = layer_class(nn, "GroupNorm")(use_scale=gamma is not None, use_bias=beta is not None, param_dtype=x.dtype,
                             **given(num_groups=groups, epsilon=eps))

        def forward(x, gamma, beta):
            return jnp.moveaxis(layer.apply({"params": _params(gamma, beta)}, jnp.moveaxis(x, ca, -1)), -1, ca)
        return {"y": self._run(forward, x, gamma, beta)}

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        from flax import linen as nn
        layer = layer_class(nn, "InstanceNorm")(feature_axes=channel_axis % x.ndim, use_scale=gamma is not None,
                                use_bias=beta is not None, param_dtype=x.dtype, **given(epsilon=eps))

        def forward(x, gamma, beta):
            return layer.apply({"params": _params(gamma, beta)}, x)
        return {"y": self._run(forward, x, gamma, beta)}


class FlaxNnxGroupOps:
    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        import jax.numpy as jnp
        from flax import nnx
        ca = x.ndim - 1 if channel_axis is DEFAULT else channel_axis % x.ndim

        def forward(x, gamma, beta):
            layer = layer_class(nnx, "GroupNorm")(x.shape[ca], use_scale=gamma is not None, use_bias=beta is not None,
                                  param_dtype=x.dtype, rngs=nnx.Rngs(0),
                                  **given(num_groups=groups, epsilon=eps))
            _set_affine(layer, gamma, beta)
            return jnp.moveaxis(layer(jnp.moveaxis(x, ca, -1)), -1, ca)
        return {"y": self._run(forward, x, gamma, beta)}

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        from flax import nnx
        ca = channel_axis % x.ndim

        def forward(x, gamma, beta):
            layer = layer_class(nnx, "InstanceNorm")(x.shape[ca], feature_axes=ca, use_scale=gamma is not None,
                                     use_bias=beta is not None, param_dtype=x.dtype, rngs=nnx.Rngs(0),
                                     **given(epsilon=eps))
            _set_affine(layer, gamma, beta)
            return layer(x)
        return {"y": self._run(forward, x, gamma, beta)}


