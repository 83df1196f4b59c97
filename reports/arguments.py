"""Each framework's own argument names, for the porting guide: data, keyed by adapter family.

A plug-in (or an adapter whose family is not listed) gets the names of normconf's adapter interface
(adapters/base.py: eps, momentum in its own form, feature_axis), which is what a plug-in implements.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arguments:
    label: str                 # how the guide names the framework
    layer_norm: str            # the call; {} is where the keyword arguments go
    batch_norm: str
    eps: str = "eps"
    momentum: str = "momentum"
    axis: str | None = "feature_axis"   # None: no feature-axis argument (channels are dim 1)
    layer_norm_axes: str = "axes"        # how LayerNorm is told which axes it normalizes
    # matrix row -> (argument, what it does) for a known deviation that the framework documents a switch for
    switches: dict = field(default_factory=dict)

    def call(self, layer: str, kwargs: dict) -> str:
        """`torch.nn.BatchNorm2d(C, eps=0.001, momentum=0.01)`: the call with these keyword arguments."""
        template = self.layer_norm if layer == "layer_norm" else self.batch_norm
        call = template.format(", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
        return call.replace(", )", ")").replace(", , ", ", ")


_FAST_VARIANCE = ("use_fast_variance=False", "the variance in two passes, mean((x - mean)^2), instead of E[x^2] - E[x]^2")

FRAMEWORKS = {
    "torch": Arguments("torch", "torch.nn.LayerNorm(normalized_shape, {})", "torch.nn.BatchNorm2d(C, {})",
                       axis=None, layer_norm_axes="normalized_shape (the trailing dims only)"),
    "flax": Arguments("Flax", "LayerNorm({})", "BatchNorm({})", eps="epsilon", axis="axis",
                      layer_norm_axes="reduction_axes=",
                      switches={"mean offset 1e4 x std (LayerNorm)": _FAST_VARIANCE,
                                "mean offset 1e4 x std (BatchNorm)": _FAST_VARIANCE}),
    "keras": Arguments("Keras", "keras.layers.LayerNormalization({})", "keras.layers.BatchNormalization({})",
                       eps="epsilon", axis="axis", layer_norm_axes="axis=[...]"),
}


def family(adapter: str, info: dict | None) -> str:
    """torch_functional -> torch, keras[jax] -> keras, flax_nnx -> flax; a plug-in is its own family."""
    if (info or {}).get("plugin"):
        return adapter
    name = adapter.split("[")[0].split("_")[0]
    return name if name in FRAMEWORKS else adapter


def arguments_for(fam: str) -> Arguments:
    return FRAMEWORKS.get(fam) or Arguments(fam, "layer_norm(x, axes, gamma, beta, {}, affine_axes)",
                                            "batch_norm_steps(batches, x_eval, ..., {})")
