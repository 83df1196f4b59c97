"""Feed one golden fixture to one adapter: the case's explicit parameters become the adapter call."""
from __future__ import annotations

from dataclasses import dataclass, field

from normconf.adapters.base import DEFAULT, native_momentum
from normconf.golden.layouts import LAYOUTS
from normconf.golden.ragged import split_steps


@dataclass(frozen=True)
class Arguments:
    """One adapter call, and the numbers it handed the layer (DEFAULT: left to the framework)."""
    op: str
    args: tuple
    eps: object = None
    momentum: object = None       # in the adapter's own form, None for the cumulative average
    feature_axis: object = None
    handed: dict = field(default_factory=dict, compare=False)  # input name -> the array handed over


def arguments(adapter, fixture, x_as=None) -> Arguments:
    """The call for `fixture`; `x_as` makes the input (x, x_eval) from the stored one: by default a copy in
    the fixture's layout (golden/layouts.py; C order but for generated cases), other values or another
    memory layout for the contracts (judge/contracts.py).  Every array is a copy: a fixture is loaded
    once per process, and the judge checks that the call left them alone."""
    case = fixture.case
    if x_as is None:
        x_as = LAYOUTS[getattr(fixture, "layout", "c")]
    inp = {k: x_as(v) if k in ("x", "x_eval") else v.copy() for k, v in fixture.inputs.items()}
    gamma, beta = inp.get("gamma"), inp.get("beta")
    eps = DEFAULT if "eps" in case.defaults else case.eps
    if case.layer == "layer_norm":
        affine_axes = case.axes if case.layernorm_affine == "per_element" else (len(case.shape) - 1,)
        return Arguments("layer_norm", (inp["x"], case.axes, gamma, beta, eps, affine_axes), eps, handed=inp)
    if case.layer == "rms_norm":
        return Arguments("rms_norm", (inp["x"], case.axes, inp.get("weight"), eps), eps, handed=inp)
    if case.layer == "batch_norm_eval":
        return Arguments("batch_norm_eval", (inp["x"], case.axes[0], inp["running_mean"], inp["running_var"],
                                             gamma, beta, eps), eps, feature_axis=case.axes[0], handed=inp)
    if case.layer == "group_norm":
        groups = DEFAULT if "groups" in case.defaults else case.groups
        channel_axis = DEFAULT if "feature_axis" in case.defaults else case.axes[0]
        return Arguments("group_norm", (inp["x"], channel_axis, groups, gamma, beta, eps), eps,
                         feature_axis=channel_axis, handed=inp)
    if case.layer == "instance_norm":
        return Arguments("instance_norm", (inp["x"], case.axes[0], gamma, beta, eps), eps,
                         feature_axis=case.axes[0], handed=inp)
    if "momentum" in case.defaults:
        momentum = DEFAULT
    elif case.raw_momentum:
        momentum = case.momentum  # the probe: how does the layer read this very number?
    else:
        momentum = native_momentum(adapter, case.momentum)
    feature_axis = DEFAULT if "feature_axis" in case.defaults else case.axes[0]
    op = "instance_norm_steps" if case.layer == "instance_norm_tracked" else "batch_norm_steps"
    return Arguments(op, (split_steps(inp["x"], case), inp["x_eval"], feature_axis, gamma, beta, eps, momentum),
                     eps, momentum, feature_axis, handed=inp)


def call(adapter, fixture) -> dict:
    a = arguments(adapter, fixture)
    return getattr(adapter, a.op)(*a.args)


def snippet_for(adapter_name: str, case_name: str, spec: str | None = None) -> str:
    """A short reproduction of the call, for reports and failure messages.  `spec` is a plug-in's
    module:attribute (or path/file.py:attribute), which get() does not know."""
    load = (f"from normconf.adapters.registry import load_spec; adapter = load_spec({spec!r})" if spec else
            f"from normconf.adapters.registry import get; adapter = get({adapter_name!r})")
    return (f"from normconf.golden.fixtures import load_case; from normconf.adapters.harness import call\n"
            f"{load}\nout = call(adapter, load_case({case_name!r}))")
