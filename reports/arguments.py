"""Each framework's own argument names, for the porting guide: data, keyed by adapter family.

normconf's own numpy adapter is called by normconf's adapter interface (adapters/base.py).  A plug-in
may declare its framework's names as `arguments` (the fields of `Arguments` but `label` and
`switches`; `declared_arguments` checks them); one that declares none gets an `Arguments` with
`declared=False`, and the guide says it has none rather than printing normconf's own call signature.
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
    declared: bool = True  # False: a plug-in that named none of its framework's arguments
    rms_norm: str = ""     # the RMSNorm call ("": the framework has none)

    def call(self, layer: str, kwargs: dict) -> str:
        """`torch.nn.BatchNorm2d(C, eps=0.001, momentum=0.01)`: the call with these keyword arguments."""
        if not self.declared:
            values = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            return f"{self.label} declares no argument names (the values: {values})"
        template = {"layer_norm": self.layer_norm, "rms_norm": self.rms_norm}.get(layer, self.batch_norm)
        call = template.format(", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
        return call.replace(", )", ")").replace(", , ", ", ")


_FAST_VARIANCE = ("use_fast_variance=False", "the variance in two passes, mean((x - mean)^2), instead of E[x^2] - E[x]^2")

FRAMEWORKS = {
    "torch": Arguments("torch", "torch.nn.LayerNorm(normalized_shape, {})", "torch.nn.BatchNorm2d(C, {})",
                       axis=None, layer_norm_axes="normalized_shape (the trailing dims only)",
                       rms_norm="torch.nn.RMSNorm(normalized_shape, {})"),
    "flax": Arguments("Flax", "LayerNorm({})", "BatchNorm({})", eps="epsilon", axis="axis",
                      layer_norm_axes="reduction_axes=",
                      switches={"mean offset 1e4 x std (LayerNorm)": _FAST_VARIANCE,
                                "mean offset 1e4 x std (BatchNorm)": _FAST_VARIANCE,
                                "mean offset 1e3 x std (GroupNorm)": _FAST_VARIANCE}, rms_norm="RMSNorm({})"),
    "keras": Arguments("Keras", "keras.layers.LayerNormalization({})", "keras.layers.BatchNormalization({})",
                       eps="epsilon", axis="axis", layer_norm_axes="axis=[...]",
                       rms_norm="keras.layers.RMSNormalization({})"),
    # transformers' model code (no layer of its own: each model defines its RMSNorm module)
    "transformers": Arguments("transformers", "", "", axis=None, layer_norm_axes="",
                              rms_norm="LlamaRMSNorm(hidden_size, {})"),
}


def family(adapter: str, info: dict | None) -> str:
    """torch_functional -> torch, keras[jax] -> keras, flax_nnx -> flax; a plug-in is its own family."""
    if (info or {}).get("plugin"):
        return adapter
    name = adapter.split("[")[0].split("_")[0]
    return name if name in FRAMEWORKS else adapter


DECLARABLE = ("layer_norm", "batch_norm", "eps", "momentum", "axis", "layer_norm_axes", "rms_norm")


def declared_arguments(owner: str, declared) -> dict | None:
    """A plug-in's `arguments`, checked: ValueError naming the owner and the field at fault."""
    if declared is None:
        return None
    if not isinstance(declared, dict):
        raise ValueError(f"{owner}: `arguments` must be a dict of {', '.join(DECLARABLE)}")
    for key, value in declared.items():
        if key not in DECLARABLE:
            raise ValueError(f"{owner}: `arguments` has unknown field {key!r} (known: {', '.join(DECLARABLE)})")
        if not (isinstance(value, str) or (key == "axis" and value is None)):
            raise ValueError(f"{owner}: `arguments`[{key!r}] must be a string")
    for key in ("layer_norm", "batch_norm"):
        if key in declared and "{}" not in declared[key]:
            raise ValueError(f"{owner}: `arguments`[{key!r}] needs a {{}} where the keyword arguments go")
    missing = [k for k in ("layer_norm", "batch_norm") if k not in declared]
    if missing:
        raise ValueError(f"{owner}: `arguments` lacks {', '.join(missing)} (the calls, with {{}} for the arguments)")
    return dict(declared)


def arguments_for(fam: str, info: dict | None = None) -> Arguments:
    """A framework's names; a plug-in's declared ones, else none declared; for normconf's own numpy
    implementation, the adapter interface (adapters/base.py), which is its signature."""
    info = info or {}
    if fam in FRAMEWORKS:
        return FRAMEWORKS[fam]
    if info.get("arguments"):
        return Arguments(fam, **info["arguments"])
    if info.get("plugin"):
        return Arguments(fam, "", "", declared=False)
    return Arguments(fam, "layer_norm(x, axes, gamma, beta, {}, affine_axes)", "batch_norm_steps(batches, x_eval, ..., {})",
                     rms_norm="rms_norm(x, axes, weight, {})")
