"""Feed one golden fixture to one adapter: the case's explicit parameters become the adapter call."""
from __future__ import annotations

from adapters.base import DEFAULT, native_momentum


def call(adapter, fixture) -> dict:
    case, inp = fixture.case, fixture.inputs
    gamma, beta = inp.get("gamma"), inp.get("beta")
    eps = DEFAULT if "eps" in case.defaults else case.eps
    if case.layer == "layer_norm":
        affine_axes = case.axes if case.layernorm_affine == "per_element" else (len(case.shape) - 1,)
        return adapter.layer_norm(inp["x"], case.axes, gamma, beta, eps, affine_axes)
    if case.layer == "batch_norm_eval":
        return adapter.batch_norm_eval(inp["x"], case.axes[0], inp["running_mean"], inp["running_var"],
                                       gamma, beta, eps)
    if "momentum" in case.defaults:
        momentum = DEFAULT
    elif case.raw_momentum:
        momentum = case.momentum  # the probe: how does the layer read this very number?
    else:
        momentum = native_momentum(adapter, case.momentum)
    feature_axis = DEFAULT if "feature_axis" in case.defaults else case.axes[0]
    return adapter.batch_norm_steps(list(inp["x"]), inp["x_eval"], feature_axis, gamma, beta, eps, momentum)


def snippet_for(adapter_name: str, case_name: str) -> str:
    """A short reproduction of the call, for reports and failure messages."""
    return (f"from golden.fixtures import load_case; from adapters.registry import get\n"
            f"from adapters.harness import call\n"
            f"out = call(get({adapter_name!r}), load_case({case_name!r}))")
