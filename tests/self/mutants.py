"""Mutant implementations: each claims a documented profile and differs from it in one realistic way.

Most change one step of the numpy adapter (adapters/numpy_adapter.py, PyTorch's profile); a few wrap
the real torch layers.  `breaks` is the text a failing check must contain for the kill to count as
named: the convention's name where the bug is a convention, else what the check reports.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import numpy as np

from adapters.base import DEFAULT
from judge.expectations import Expectation, load_all
from adapters.numpy_adapter import NumpyAdapter
from golden.cases import CASES
from judge.verdict import run_cell


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    breaks: str    # what a catching check must name: text of its message, or family:F (a case of family F)
    make: object                      # () -> adapter
    documented: dict = field(default_factory=dict)  # overrides of numpy.toml's documented variants
    requires: str | None = None       # a framework module the mutant wraps
    raises: bool = False              # the bug shows as an exception (else a kill by crashing proves nothing)


def _np(name, **profile):
    return lambda: NumpyAdapter(profile, name=name)


def _sub(name, **methods):
    cls = type(name, (NumpyAdapter,), methods)
    return lambda: cls(name=name)


# -- one-step changes of the numpy adapter -------------------------------------------------------

def _scaled_eps(factor):
    def inv_std(self, var, eps):
        return NumpyAdapter.inv_std(self, var, eps * factor)
    return inv_std


def _update_twice(self, running, batch_stat, momentum, step):
    once = NumpyAdapter.update(self, running, batch_stat, momentum, step)
    return NumpyAdapter.update(self, once, batch_stat, momentum, step)


def _skip_first(self, running, batch_stat, momentum, step):
    return running if step == 1 else NumpyAdapter.update(self, running, batch_stat, momentum, step)


def _no_update(self, running, batch_stat, momentum, step):
    return running


def _flipped_form(self, running, batch_stat, momentum, step):
    if momentum is None:
        return NumpyAdapter.update(self, running, batch_stat, momentum, step)
    return momentum * running + (1 - momentum) * batch_stat  # reads PyTorch's m as the weight on the old


def _update_in_eval(self, x, fa, running_mean, running_var, g, b, eps):
    axes = tuple(a for a in range(x.ndim) if a != fa)
    xc = x.astype(self.compute_dtype(x))
    mean, var = self.statistics(xc, axes, 0)
    running_mean = 0.9 * np.asarray(running_mean) + 0.1 * mean.reshape(-1)  # eval moved the statistics
    running_var = 0.9 * np.asarray(running_var) + 0.1 * var.reshape(-1)
    return NumpyAdapter.eval_forward(self, x, fa, running_mean, running_var, g, b, eps)


def _naive_variance(self, x, axes, ddof):
    x32 = x.astype(np.float32) if x.dtype != np.float64 else x
    mean = x32.mean(axis=axes, keepdims=True)
    n = self._size(x, axes)
    var = ((x32 * x32).mean(axis=axes, keepdims=True) - mean * mean) * n / (n - ddof)
    return mean, var


def _no_upcast(self, x):
    return x.dtype  # float16/bfloat16 statistics in float16/bfloat16


def _low_precision_statistics(self, x, axes, ddof):
    """A naive kernel loop: every partial sum rounded to the input's (low-precision) dtype."""
    if x.dtype in (np.float32, np.float64):
        return NumpyAdapter.statistics(self, x, axes, ddof)
    n = self._size(x, axes)
    keep = [1 if i in axes else size for i, size in enumerate(x.shape)]

    def sequential_sum(a):
        moved = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
        flat = moved.reshape(moved.shape[:a.ndim - len(axes)] + (-1,))
        return np.add.accumulate(flat, axis=-1, dtype=a.dtype)[..., -1].reshape(keep)

    mean = (sequential_sum(x) / x.dtype.type(n)).astype(x.dtype)
    var = (sequential_sum(((x - mean) ** 2).astype(x.dtype)) / x.dtype.type(n - ddof)).astype(x.dtype)
    return mean, var


def _float32_out(self, y, like):
    return y.astype(np.float32)


def _nan_on_zero_var(self, x, mean, var, eps, gamma, beta):
    y = NumpyAdapter.normalize(self, x, mean, var, eps, gamma, beta)
    return np.where(var == 0, np.nan, y)


def _one_value_returns_input(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
    fa = (self.profile["default_feature_axis"] if feature_axis is DEFAULT else feature_axis) % x_eval.ndim
    if batches[0].size // batches[0].shape[fa] == 1:
        out = NumpyAdapter(dict(self.profile, running_variance="biased")).batch_norm_steps(
            batches, x_eval, feature_axis, gamma, beta, eps, momentum)
        out["y_train"] = np.stack(batches)
        return out
    return NumpyAdapter.batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum)


def _channels_first_always(method):
    def run(self, *args):
        args = list(args)
        index = 2 if method == "batch_norm_steps" else 1
        args[index] = 1  # ignores the feature axis: channels-last input normalized as channels-first
        return getattr(NumpyAdapter, method)(self, *args)
    return run


def _one_axis_too_few(self, x, axes, gamma, beta, eps, affine_axes):
    axes = sorted(a % x.ndim for a in axes)
    reduced = axes[1:] or axes
    ct = self.compute_dtype(x)
    xc = x.astype(ct)
    mean, var = self.statistics(xc, tuple(reduced), 0)
    from adapters.numpy_adapter import _broadcast
    y = self.normalize(xc, mean, var, eps if eps is not DEFAULT else 1e-5,
                       _broadcast(gamma, x.ndim, affine_axes, ct), _broadcast(beta, x.ndim, affine_axes, ct))
    return {"y": y.astype(x.dtype)}


def _per_feature_affine(self, x, axes, gamma, beta, eps, affine_axes):
    if gamma is not None and np.ndim(gamma) > 1:  # keeps only the last axis of a per-element affine
        gamma, beta = gamma[(0,) * (gamma.ndim - 1)], beta[(0,) * (beta.ndim - 1)]
        affine_axes = (x.ndim - 1,)
    return NumpyAdapter.layer_norm(self, x, axes, gamma, beta, eps, affine_axes)


def _swap_affine(method):
    def run(self, *args):
        args = list(args)
        i = {"layer_norm": 2, "batch_norm_steps": 3, "batch_norm_eval": 4}[method]
        args[i], args[i + 1] = args[i + 1], args[i]
        return getattr(NumpyAdapter, method)(self, *args)
    return run


def _cumulative_ignored(self, running, batch_stat, momentum, step):
    return NumpyAdapter.update(self, running, batch_stat, 0.1 if momentum is None else momentum, step)


def _eval_without_affine(self, x, fa, running_mean, running_var, g, b, eps):
    return NumpyAdapter.eval_forward(self, x, fa, running_mean, running_var, None, None, eps)


def _eval_eps_outside(self, x, fa, running_mean, running_var, g, b, eps):
    shape = tuple(-1 if a == fa else 1 for a in range(x.ndim))
    ct = self.compute_dtype(x)
    xc = x.astype(ct)
    var = np.asarray(running_var, ct).reshape(shape)
    y = (xc - np.asarray(running_mean, ct).reshape(shape)) / (np.sqrt(var) + ct.type(eps))
    y = y if g is None else y * g + b
    return y.astype(x.dtype)


# -- a few on the real torch layers ---------------------------------------------------------------

def _torch(name, **methods):
    def make():
        from adapters.torch_adapter import TorchAdapter
        return type(name, (TorchAdapter,), {"name": name, **methods})()
    return make


def _torch_eps_dropped(self, x, axes, gamma, beta, eps, affine_axes):
    from adapters.torch_adapter import TorchAdapter
    return TorchAdapter.layer_norm(self, x, axes, gamma, beta, DEFAULT, affine_axes)


def _torch_momentum_untranslated(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
    from adapters.torch_adapter import TorchAdapter
    native = momentum if momentum in (None, DEFAULT) else 1.0 - momentum  # a Keras port's 0.9 left as is
    return TorchAdapter.batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, native)


def _torch_eval_in_train_mode(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
    from adapters.torch_adapter import TorchAdapter
    out = TorchAdapter.batch_norm_steps(self, [x], x, feature_axis, gamma, beta, eps, 0.1)
    return {"y": out["y_train"][0]}  # forgot model.eval(): batch statistics


MUTANTS: list[Mutant] = [
    Mutant("eps_outside_sqrt", "y = (x - mean) / (std + eps)", "eps_placement", _np("eps_outside_sqrt", eps_placement="added_to_std")),
    Mutant("eps_10x", "eps multiplied by 10", "family:eps", _sub("eps_10x", inv_std=_scaled_eps(10))),
    Mutant("eps_100x", "eps multiplied by 100", "family:eps", _sub("eps_100x", inv_std=_scaled_eps(100))),
    Mutant("unbiased_norm_variance", "normalizes with the N-1 variance", "norm_variance",
           _np("unbiased_norm_variance", norm_variance="unbiased")),
    Mutant("running_var_biased", "stores the biased variance where the unbiased is documented", "running_variance",
           _np("running_var_biased", running_variance="biased")),
    Mutant("running_var_unbiased", "stores the unbiased variance where the biased is documented (a Keras-like profile)",
           "running_variance", _np("running_var_unbiased", running_variance="unbiased"),
           documented={"running_variance": "biased"}),
    Mutant("momentum_form_flipped", "momentum read as the weight of the old value", "momentum_form",
           _sub("momentum_form_flipped", update=_flipped_form)),
    Mutant("momentum_applied_twice", "running statistics updated twice per step", "in running_mean",
           _sub("momentum_applied_twice", update=_update_twice)),
    Mutant("momentum_skipped_first_step", "no running update on the first step", "in running_mean",
           _sub("momentum_skipped_first_step", update=_skip_first)),
    Mutant("running_stats_not_updated", "running statistics never updated", "in running_mean",
           _sub("running_stats_not_updated", update=_no_update)),
    Mutant("running_stats_updated_in_eval", "eval forward updates the running statistics first", "in y_eval",
           _sub("running_stats_updated_in_eval", eval_forward=_update_in_eval)),
    Mutant("eval_uses_batch_stats", "eval normalizes with the batch statistics", "eval_statistics",
           _np("eval_uses_batch_stats", eval_statistics="batch")),
    Mutant("zero_debiased_average", "zero-debiased moving average instead of (0, 1) start", "initial_running_stats",
           _np("zero_debiased_average", initial_running_stats="zero_debiased")),
    Mutant("channels_last_as_channels_first", "ignores the feature axis", "family:layout",
           _sub("channels_last_as_channels_first", batch_norm_steps=_channels_first_always("batch_norm_steps"),
                batch_norm_eval=_channels_first_always("batch_norm_eval")), raises=True),
    Mutant("layernorm_one_axis_too_few", "LayerNorm reduces one normalized axis too few", "family:layout",
           _sub("layernorm_one_axis_too_few", layer_norm=_one_axis_too_few)),
    Mutant("affine_per_feature_not_element", "LayerNorm affine per last axis instead of per element", "family:layout",
           _sub("affine_per_feature_not_element", layer_norm=_per_feature_affine)),
    Mutant("gamma_beta_swapped", "gamma and beta swapped", "matches no variant",
           _sub("gamma_beta_swapped", layer_norm=_swap_affine("layer_norm"),
                batch_norm_steps=_swap_affine("batch_norm_steps"), batch_norm_eval=_swap_affine("batch_norm_eval"))),
    Mutant("naive_variance_float32", "variance as E[x^2] - E[x]^2 in float32", "family:stress",
           _sub("naive_variance_float32", statistics=_naive_variance)),
    Mutant("low_precision_stats_not_upcast", "float16/bfloat16 statistics computed in float16/bfloat16",
           "family:dtype", _sub("low_precision_stats_not_upcast", compute_dtype=_no_upcast,
                                   statistics=_low_precision_statistics)),
    Mutant("output_dtype_float32", "returns float32 whatever the input dtype", "has dtype float32",
           _sub("output_dtype_float32", finish=_float32_out)),
    Mutant("nan_on_zero_variance", "NaN where a group has zero variance", "family:stress",
           _sub("nan_on_zero_variance", normalize=_nan_on_zero_var)),
    Mutant("one_value_returns_input", "returns the input when there is one value per channel", "documented to raise",
           _sub("one_value_returns_input", batch_norm_steps=_one_value_returns_input)),
    Mutant("default_eps_1e-3", "default eps 1e-3 where 1e-5 is documented", "default_eps",
           _np("default_eps_1e-3", default_eps=1e-3)),
    Mutant("default_momentum_0.01", "default momentum 0.01 where 0.1 is documented", "default_momentum",
           _np("default_momentum_0.01", default_momentum=0.01)),
    Mutant("cumulative_average_ignored", "momentum=None treated as 0.1", "family:momentum",
           _sub("cumulative_average_ignored", update=_cumulative_ignored)),
    Mutant("eval_without_affine", "eval forward drops gamma and beta", "in y_eval",
           _sub("eval_without_affine", eval_forward=_eval_without_affine)),
    Mutant("eval_eps_outside_sqrt", "eval forward puts eps outside the square root", "in y_eval",
           _sub("eval_eps_outside_sqrt", eval_forward=_eval_eps_outside)),
    Mutant("torch_layernorm_eps_dropped", "torch LayerNorm built without the given eps", "family:eps",
           _torch("torch_layernorm_eps_dropped", layer_norm=_torch_eps_dropped), requires="torch"),
    Mutant("torch_momentum_untranslated", "a Keras momentum (1 - m) handed to torch untranslated", "in running_mean",
           _torch("torch_momentum_untranslated", batch_norm_steps=_torch_momentum_untranslated), requires="torch"),
    Mutant("torch_eval_without_model_eval", "eval forward without model.eval(): batch statistics", "eval_statistics",
           _torch("torch_eval_without_model_eval", batch_norm_eval=_torch_eval_in_train_mode), requires="torch"),
]
MUTANTS_BY_NAME = {m.name: m for m in MUTANTS}
FAILING = ("fail", "error", "bad_output", "timeout", "xpass", "crashed")


def expectation_for(mutant: Mutant) -> Expectation:
    """numpy.toml's documented profile (PyTorch's), with the mutant's overrides."""
    base = load_all()[0]["numpy"]
    documented = dict(base.documented)
    documented.update({c: {"variant": v, "cite": "mutant's claimed profile"} for c, v in mutant.documented.items()})
    return Expectation(f"mutant {mutant.name}", (mutant.name,), documented, base.outcomes, base.deviations)


def unavailable(mutant: Mutant) -> str | None:
    if mutant.requires and importlib.util.find_spec(mutant.requires) is None:
        return f"{mutant.requires} not installed"
    return None


def kill_record(mutant: Mutant, case_names=None) -> dict:
    """Run the mutant through the conformance checks of every case; who caught it, naming what, by how much."""
    case_names = sorted(CASES) if case_names is None else sorted(case_names)
    adapter = mutant.make()
    expectation = expectation_for(mutant)
    caught, margins, named, outcomes = [], {}, [], {}
    for case in case_names:
        # the adapter's name is the mutant's own, so the expectation's rules (e.g. raising) apply to it
        cell = run_cell(adapter, mutant.name, case, _renamed(expectation, mutant.name), None)
        if cell["outcome"] in FAILING:
            caught.append(case)
            outcomes[case] = cell["outcome"]
            if cell.get("scaled_error") is not None and cell.get("tolerance"):
                margins[case] = round(cell["scaled_error"] / cell["tolerance"], 3)
            if names_the_bug(mutant.breaks, case, cell["message"]):
                named.append(case)
    return {"mutant": mutant.name, "bug": mutant.bug, "breaks": mutant.breaks, "killed": bool(caught),
            "named": bool(named), "caught_by": caught, "named_by": named, "margins": margins, "outcomes": outcomes}


def names_the_bug(breaks: str, case: str, message: str) -> bool:
    if breaks.startswith("family:"):
        return CASES[case].family == breaks.split(":", 1)[1]
    return breaks in message


def _renamed(expectation: Expectation, name: str) -> Expectation:
    from dataclasses import replace
    rules = lambda rs: [replace(r, adapters=None) for r in rs]  # noqa: E731 - numpy.toml rules, any adapter name
    return Expectation(expectation.path, (name,), expectation.documented, rules(expectation.outcomes),
                       rules(expectation.deviations))

