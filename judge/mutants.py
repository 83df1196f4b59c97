"""Mutant implementations: each claims a documented profile and differs from it in one realistic way.

Most change one step of the numpy adapter (adapters/numpy_adapter.py, PyTorch's profile); a few wrap
the real torch layers.  `breaks` is the text a failing check must contain for the kill to count as
named: the convention's name where the bug is a convention, else what the check reports.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import numpy as np

from normconf.adapters.base import DEFAULT
from normconf.adapters.cache import cache_dir
from normconf.adapters.correct import BLOCK, Blocked, InputDtypeAware, chan_merge, grouped
from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.cases import CASES, GROUPED
from normconf.golden.generated import draw_specs, fixture_of, to_json
from normconf.judge.expectations import Expectation, load_all
from normconf.judge.verdict import run_cell


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    breaks: str    # what a catching check must name: text of its message, or family:F (a case of family F)
    make: object                      # () -> adapter
    documented: dict = field(default_factory=dict)  # overrides of numpy.toml's documented variants
    requires: str | None = None       # a framework module the mutant wraps
    raises: bool = False              # the bug shows as an exception (else a kill by crashing proves nothing)
    # the layers whose code the mutant changes: it runs through their cases only (another layer's cases
    # go through code it leaves alone, and cost the main job time for nothing)
    layers: tuple[str, ...] = ("layer_norm", "batch_norm", "batch_norm_eval")
    cite: str = ""                    # the real bug it models, where one was shipped and reported
    # where set, the only case families it runs through: its bug is invisible in every other case
    families: tuple[str, ...] = ()


# Families only the mutants that name them run through: the ragged cases (batch sizes that change from
# step to step) catch what no one-shape case can, and every other mutant is caught elsewhere; running
# all ~80 BatchNorm mutants through them would cost the main job ~1.6 s of CPU for no kill.
OPT_IN_FAMILIES = ("ragged",)


def runs_through(mutant: Mutant, family: str) -> bool:
    return family in mutant.families if mutant.families else family not in OPT_IN_FAMILIES


def _np(name, **profile):
    return lambda: NumpyAdapter(profile, name=name)


def _sub(name, base=NumpyAdapter, **methods):
    cls = type(name, (base,), methods)
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
    from normconf.adapters.numpy_adapter import _broadcast
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
        from normconf.adapters.torch_adapter import TorchAdapter
        return type(name, (TorchAdapter,), {"name": name, **methods})()
    return make


def _torch_eps_dropped(self, x, axes, gamma, beta, eps, affine_axes):
    from normconf.adapters.torch_adapter import TorchAdapter
    return TorchAdapter.layer_norm(self, x, axes, gamma, beta, DEFAULT, affine_axes)


def _torch_momentum_untranslated(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
    from normconf.adapters.torch_adapter import TorchAdapter
    native = momentum if momentum in (None, DEFAULT) else 1.0 - momentum  # a Keras port's 0.9 left as is
    return TorchAdapter.batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, native)


def _torch_eval_in_train_mode(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
    from normconf.adapters.torch_adapter import TorchAdapter
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


# -- issue 13: bug classes the first catalog could not reach ---------------------------------------
# Long non-periodic reductions merged block by block (adapters/correct.py's Blocked, BLOCK elements).

def _merge_unweighted(self, parts):
    """Block results averaged as if every block were full: means and variances of blocks, unweighted."""
    n = sum(p[0] for p in parts)
    means = np.stack([p[1] for p in parts])
    variances = np.stack([p[2] / p[1].dtype.type(p[0]) for p in parts])
    mean = means.mean(axis=0)
    return n, mean, (variances.mean(axis=0) + ((means - mean) ** 2).mean(axis=0)) * mean.dtype.type(n)


def _merge_without_correction(self, parts):
    acc = parts[0]
    for part in parts[1:]:
        acc = chan_merge(acc, part, correction=False)  # M2 = M2a + M2b: the spread between blocks is lost
    return acc


def _remainder_dropped(self, x, axes, ddof):
    """A loop over whole blocks that forgets the remainder: its elements never summed, n still the full count."""
    flat, keep = grouped(x, axes)
    n = flat.shape[-1]
    whole = flat[..., :n - n % BLOCK] if n > BLOCK else flat
    mean = whole.sum(axis=-1) / x.dtype.type(n)
    var = ((whole - mean[..., None]) ** 2).sum(axis=-1) / x.dtype.type(n - ddof)
    return mean.reshape(keep), var.reshape(keep)


def _pairwise_dropping_odd(a):
    while a.shape[-1] > 1:
        a = a[..., 0:a.shape[-1] - a.shape[-1] % 2:2] + a[..., 1::2][..., :a.shape[-1] // 2]  # odd one lost
    return a[..., 0]


def _statistics_from_sum(total):
    def statistics(self, x, axes, ddof):
        flat, keep = grouped(x, axes)
        t = x.dtype.type
        mean = total(flat) / t(flat.shape[-1])
        dev = flat - mean[..., None]
        return mean.reshape(keep), (total(dev * dev) / t(flat.shape[-1] - ddof)).reshape(keep)
    return statistics


def _welford_in_input_dtype(self, x, axes, ddof):
    """Welford's update with its accumulators in the input's (half) dtype."""
    if not self.half:
        return NumpyAdapter.statistics(self, x, axes, ddof)
    flat, keep = grouped(x.astype(self.input_dtype), axes)
    t = self.input_dtype.type
    mean, m2 = np.zeros(flat.shape[:-1], self.input_dtype), np.zeros(flat.shape[:-1], self.input_dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # float16 overflows: that is the bug
        for k in range(flat.shape[-1]):
            delta = flat[..., k] - mean
            mean = mean + delta / t(k + 1)
            m2 = m2 + delta * (flat[..., k] - mean)
    return mean.astype(x.dtype).reshape(keep), (m2 / t(flat.shape[-1] - ddof)).astype(x.dtype).reshape(keep)


# float16/bfloat16 arithmetic where the documentation promises float32 (InputDtypeAware knows the dtype).

def _mean_in_input_dtype(self, x, axes, ddof):
    if not self.half:
        return NumpyAdapter.statistics(self, x, axes, ddof)
    mean = self.to_input_dtype(x.mean(axis=axes, keepdims=True))   # the mean kept in float16/bfloat16
    return mean, ((x - mean) ** 2).sum(axis=axes, keepdims=True) / x.dtype.type(self._size(x, axes) - ddof)


def _epilogue_in_input_dtype(self, x, mean, var, eps, gamma, beta):
    """The fused epilogue y = x * scale + shift computed in float16/bfloat16 (scale, shift from float32)."""
    if not self.half:
        return NumpyAdapter.normalize(self, x, mean, var, eps, gamma, beta)
    scale = self.inv_std(var, eps) * (1 if gamma is None else gamma)
    shift = (0 if beta is None else beta) - mean * scale
    dt = self.input_dtype
    return (x.astype(dt) * scale.astype(dt) + shift.astype(dt)).astype(x.dtype)


def _squares_in_input_dtype(self, x, axes, ddof):
    if not self.half:
        return NumpyAdapter.statistics(self, x, axes, ddof)
    mean = x.mean(axis=axes, keepdims=True)
    with np.errstate(over="ignore"):
        squares = self.to_input_dtype((x - mean) ** 2)             # float16 overflows from 256^2
    return mean, squares.sum(axis=axes, keepdims=True) / x.dtype.type(self._size(x, axes) - ddof)


def _variance_in_input_dtype(self, x, axes, ddof):
    mean, var = NumpyAdapter.statistics(self, x, axes, ddof)
    if not self.half:
        return mean, var
    with np.errstate(over="ignore"):
        return mean, self.to_input_dtype(var)


def _raw_squares_in_input_dtype(self, x, axes, ddof):
    """E[x^2] - E[x]^2 with x^2 rounded to float16/bfloat16 (sums in float32)."""
    if not self.half:
        return NumpyAdapter.statistics(self, x, axes, ddof)
    n = self._size(x, axes)
    mean = x.mean(axis=axes, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        mean_sq = self.to_input_dtype(x * x).mean(axis=axes, keepdims=True)
        return mean, (mean_sq - mean * mean) * x.dtype.type(n / (n - ddof))


# The 5th and later training steps.

def _state_lost_every_4_steps(self, batches, x_eval, *args):
    """The layer is re-created every 4 steps (its buffers re-initialized to 0 and 1)."""
    if len(batches) <= 4:
        return NumpyAdapter.batch_norm_steps(self, batches, x_eval, *args)
    first, rest = NumpyAdapter.batch_norm_steps(self, batches[:4], x_eval, *args), self.batch_norm_steps(batches[4:], x_eval, *args)
    out = {k: np.concatenate([first[k], rest[k]]) for k in ("y_train", "running_mean", "running_var")}
    return {**out, "y_eval": rest["y_eval"]}


def _counter_saturates_at_4(self, running, batch_stat, momentum, step):
    if momentum is None:  # num_batches_tracked in two bits: the cumulative average turns into 1/4 weights
        return running + (batch_stat - running) / running.dtype.type(min(step, 4))
    return NumpyAdapter.update(self, running, batch_stat, momentum, step)


# Outputs rounded in the wrong direction: at most one ULP each, but all the same way.

def _directed(y, dtype, toward):
    """y (float32/64) rounded to nearest in dtype, then moved one ULP where that overshot `toward`."""
    rn = np.asarray(y).astype(dtype)
    exact, got = np.asarray(y, np.float64), rn.astype(np.float64)
    wrong = np.abs(got) > np.abs(exact) if toward == "zero" else got > exact
    bits = rn.view(np.uint16).copy()
    magnitude_up = (toward == "-inf") & (got < 0)   # toward -inf, a negative value grows in magnitude
    bits[wrong] = np.where(magnitude_up, bits + 1, bits - 1)[wrong]
    return bits.view(rn.dtype)


def _finish_directed(toward):
    def finish(self, y, like):
        if like.dtype.itemsize != 2:
            return NumpyAdapter.finish(self, y, like)
        return _directed(y, like.dtype, toward)
    return finish


# Kernel paths chosen by axis sizes.

def _rows_bound_from_w(self, x, axes, ddof):
    """NCHW statistics whose row loop runs to W instead of H: rows past W are never read (H > W)."""
    if x.ndim != 4 or tuple(axes) != (0, 2, 3):
        return NumpyAdapter.statistics(self, x, axes, ddof)
    n = self._size(x, axes)
    rows = x[:, :, :x.shape[3]]
    mean = rows.sum(axis=axes, keepdims=True) / x.dtype.type(n)
    return mean, ((rows - mean) ** 2).sum(axis=axes, keepdims=True) / x.dtype.type(n - ddof)


def _h1_path_per_sample_variance(self, x, axes, ddof):
    """NCHW with H = 1 taken as N rows of (C, W): the variance averages the samples' own variances."""
    if x.ndim != 4 or tuple(axes) != (0, 2, 3) or x.shape[2] != 1:
        return NumpyAdapter.statistics(self, x, axes, ddof)
    mean = x.mean(axis=axes, keepdims=True)
    per_sample = x.var(axis=(2, 3), keepdims=True)
    n = self._size(x, axes)
    return mean, per_sample.mean(axis=0, keepdims=True) * x.dtype.type(n / (n - ddof))


def _squeezed_layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
    """x.squeeze() first, then the trailing len(axes) dims: a singleton normalized dim pulls in another."""
    axes = sorted(a % x.ndim for a in axes)
    if not any(x.shape[a] == 1 for a in axes):
        return NumpyAdapter.layer_norm(self, x, axes, gamma, beta, eps, affine_axes)
    from normconf.adapters.numpy_adapter import _broadcast
    ct = self.compute_dtype(x)
    squeezed = np.squeeze(x).astype(ct)
    reduced = tuple(range(max(squeezed.ndim - len(axes), 0), squeezed.ndim))
    mean, var = self.statistics(squeezed, reduced, self._ddof_norm())
    y = self.normalize(squeezed, mean, var, self._eps(eps), None, None).reshape(x.shape)
    g, b = _broadcast(gamma, x.ndim, affine_axes, ct), _broadcast(beta, x.ndim, affine_axes, ct)
    y = y if g is None else y * g + b
    return {"y": self.finish(y, x)}


def _tall_matrix_transposed(self, x, axes, gamma, beta, eps, affine_axes):
    """A 2-D 'tall' path (more rows than columns) that reduces over the rows."""
    if x.ndim == 2 and x.shape[0] > x.shape[1] and [a % 2 for a in axes] == [1]:
        return NumpyAdapter.layer_norm(self, x, (0,), gamma, beta, eps, affine_axes)
    return NumpyAdapter.layer_norm(self, x, axes, gamma, beta, eps, affine_axes)


def _wide_matrix_unbiased(self, x, axes, gamma, beta, eps, affine_axes):
    """A 2-D 'wide' path (more columns than rows) that normalizes with the N-1 variance."""
    if x.ndim == 2 and x.shape[1] > x.shape[0]:
        wide = NumpyAdapter(dict(self.profile, norm_variance="unbiased"))
        return wide.layer_norm(x, axes, gamma, beta, eps, affine_axes)
    return NumpyAdapter.layer_norm(self, x, axes, gamma, beta, eps, affine_axes)


def _channel_axis_by_size(method):
    """The channel axis found as the first axis whose size is the channel count."""
    def run(self, *args):
        args = list(args)
        x = args[1] if method == "batch_norm_steps" else args[0]
        index = 2 if method == "batch_norm_steps" else 1
        fa = self.profile["default_feature_axis"] if args[index] is DEFAULT else args[index]
        args[index] = list(x.shape).index(x.shape[fa])
        return getattr(NumpyAdapter, method)(self, *args)
    return run


def _in_half(name, bug, **methods):
    """A mutant that does one step in float16/bfloat16; caught by the dtype family's cases."""
    return Mutant(name, bug, "family:dtype", _sub(name, InputDtypeAware, **methods))


MUTANTS += [
    Mutant("blocked_unweighted_means", f"blocks of {BLOCK} merged as if equal: unweighted block means and variances",
           "family:long", _sub("blocked_unweighted_means", Blocked, merge=_merge_unweighted)),
    Mutant("welford_merge_without_correction", "Chan/Welford block merge without the delta^2 n_a n_b / n term",
           "family:long", _sub("welford_merge_without_correction", Blocked, merge=_merge_without_correction)),
    Mutant("remainder_block_dropped", f"sums over whole blocks of {BLOCK} only, divided by the full count",
           "family:long", _sub("remainder_block_dropped", statistics=_remainder_dropped)),
    Mutant("pairwise_sum_drops_odd_element", "pairwise sum that loses the odd element of each level",
           "matches no variant", _sub("pairwise_sum_drops_odd_element", statistics=_statistics_from_sum(_pairwise_dropping_odd))),
    _in_half("welford_in_input_dtype", "Welford accumulators in float16/bfloat16", statistics=_welford_in_input_dtype),
    _in_half("mean_in_input_dtype", "batch mean rounded to float16/bfloat16 before centring",
             statistics=_mean_in_input_dtype),
    _in_half("epilogue_in_input_dtype", "fused x * scale + shift computed in float16/bfloat16",
             normalize=_epilogue_in_input_dtype),
    _in_half("squares_in_input_dtype", "(x - mean)^2 rounded to float16/bfloat16 before summing",
             statistics=_squares_in_input_dtype),
    _in_half("variance_in_input_dtype", "variance rounded to float16/bfloat16 before the rsqrt",
             statistics=_variance_in_input_dtype),
    _in_half("raw_squares_in_input_dtype", "E[x^2] - E[x]^2 with x^2 rounded to float16/bfloat16",
             statistics=_raw_squares_in_input_dtype),
    Mutant("state_lost_every_4_steps", "layer re-created every 4 training steps (buffers back to 0 and 1)",
           "family:momentum", _sub("state_lost_every_4_steps", batch_norm_steps=_state_lost_every_4_steps)),
    Mutant("cumulative_counter_saturates_at_4", "momentum=None: the step counter saturates at 4",
           "family:momentum", _sub("cumulative_counter_saturates_at_4", update=_counter_saturates_at_4)),
    Mutant("output_truncated_toward_zero", "float16/bfloat16 outputs truncated instead of rounded to nearest",
           "rounding bias", _sub("output_truncated_toward_zero", finish=_finish_directed("zero"))),
    Mutant("output_rounded_toward_minus_inf", "float16/bfloat16 outputs rounded toward -inf", "rounding bias",
           _sub("output_rounded_toward_minus_inf", finish=_finish_directed("-inf"))),
    Mutant("bn_rows_bound_from_w", "NCHW statistics loop over rows bounded by W (rows past W unread)",
           "family:layout", _sub("bn_rows_bound_from_w", statistics=_rows_bound_from_w)),
    Mutant("bn_h1_path_per_sample_variance", "NCHW with H = 1: variance as the mean of per-sample variances",
           "family:layout", _sub("bn_h1_path_per_sample_variance", statistics=_h1_path_per_sample_variance)),
    Mutant("layernorm_squeezed_input", "x.squeeze() before normalizing the trailing dims (singleton dims)",
           "family:layout", _sub("layernorm_squeezed_input", layer_norm=_squeezed_layer_norm)),
    Mutant("layernorm_tall_matrix_transposed", "2-D LayerNorm with more rows than columns reduces the rows",
           "family:layout", _sub("layernorm_tall_matrix_transposed", layer_norm=_tall_matrix_transposed)),
    Mutant("layernorm_wide_matrix_unbiased", "2-D LayerNorm with more columns than rows uses N-1", "norm_variance",
           _sub("layernorm_wide_matrix_unbiased", layer_norm=_wide_matrix_unbiased)),
    Mutant("bn_channel_axis_by_size", "channel axis = first axis whose size is the channel count", "family:layout",
           _sub("bn_channel_axis_by_size", batch_norm_steps=_channel_axis_by_size("batch_norm_steps"),
                batch_norm_eval=_channel_axis_by_size("batch_norm_eval"))),
    Mutant("eps_1.1x", "eps multiplied by 1.1 (a rounded constant)", "family:eps", _sub("eps_1.1x", inv_std=_scaled_eps(1.1))),
]


# -- issue 21: what a call owes its caller (judge/contracts.py) ---------------------------------------

def _output_into_input(self, *args):
    """An in-place kernel (`inplace=True`, as in fused or memory-saving norms) writing y over x."""
    if isinstance(args[0], list):  # batch_norm_steps: every batch overwritten by its output
        out = NumpyAdapter.batch_norm_steps(self, *args)
        for batch, y in zip(args[0], out["y_train"]):
            batch[...] = y
        return out
    out = NumpyAdapter.layer_norm(self, *args) if len(args) == 6 else NumpyAdapter.batch_norm_eval(self, *args)
    args[0][...] = out["y"]
    return out


def _eval_updates_given_buffers(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
    """A functional batch_norm that updates the running statistics it was handed in place (as
    torch.nn.functional.batch_norm does with training=True), while normalizing with the old ones."""
    out = NumpyAdapter.batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps)
    axes = tuple(a for a in range(x.ndim) if a != feature_axis % x.ndim)
    running_mean *= 0.9
    running_mean += (0.1 * x.astype(np.float64).mean(axis=axes)).astype(running_mean.dtype)
    running_var *= 0.9
    running_var += (0.1 * x.astype(np.float64).var(axis=axes)).astype(running_var.dtype)
    return out


def _statistics_cached_by_shape(self, x, axes, ddof):
    """A kernel-plan cache keyed by (shape, axes, ddof) that keeps the first call's statistics too."""
    cache = self.__dict__.setdefault("_plans", {})
    key = (x.shape, tuple(axes), ddof, str(x.dtype))
    if key not in cache:
        cache[key] = NumpyAdapter.statistics(self, x, axes, ddof)
    return cache[key]


def _which_statistic(adapter) -> int:
    """0 for the running mean, 1 for the running variance: update() is called for the mean, then the
    variance, on every step; the adapter counts the calls."""
    which = adapter.__dict__.get("_which", 0)
    adapter._which = 1 - which
    return which


def _update_from_last_call(self, running, batch_stat, momentum, step):
    """Running buffers kept by the adapter across calls (one module reused for every call): a call's
    first update starts from the last call's final statistics instead of (0, 1)."""
    which = _which_statistic(self)
    carry = self.__dict__.setdefault("_carry", {})
    if step == 1 and which in carry and carry[which].shape == running.shape:
        running = carry[which]
    carry[which] = NumpyAdapter.update(self, running, batch_stat, momentum, step)
    return carry[which]


def _storage_order(method):
    """Reads the input's memory in storage order as if it were C-contiguous (a kernel ignoring strides)."""
    def run(self, *args):
        args = list(args)
        if method == "batch_norm_steps":
            args[0] = [np.ravel(b, order="K").reshape(b.shape) for b in args[0]]
        else:
            args[0] = np.ravel(args[0], order="K").reshape(args[0].shape)
        return getattr(NumpyAdapter, method)(self, *args)
    return run


MUTANTS += [
    Mutant("output_written_into_input", "in-place kernel: writes the output over the caller's input", "inputs:",
           _sub("output_written_into_input", layer_norm=_output_into_input, batch_norm_steps=_output_into_input,
                batch_norm_eval=_output_into_input)),
    Mutant("eval_updates_given_running_stats", "eval updates the running statistics it was handed, in place",
           "inputs:", _sub("eval_updates_given_running_stats", batch_norm_eval=_eval_updates_given_buffers)),
    Mutant("statistics_cached_by_shape", "a plan cache keyed by shape keeps the first call's statistics", "state:",
           _sub("statistics_cached_by_shape", statistics=_statistics_cached_by_shape)),
    Mutant("running_buffers_shared_between_calls", "one module reused: a call starts from the last call's buffers",
           "state:", _sub("running_buffers_shared_between_calls", update=_update_from_last_call)),
    Mutant("input_read_in_storage_order", "reads the input's memory as if C-contiguous (strides ignored)", "layout:",
           _sub("input_read_in_storage_order", layer_norm=_storage_order("layer_norm"),
                batch_norm_steps=_storage_order("batch_norm_steps"), batch_norm_eval=_storage_order("batch_norm_eval"))),
]


# -- issue 21: more failure modes frameworks and ports have shipped ----------------------------------

def _gamma_plus_one(self, x, mean, var, eps, gamma, beta):
    """Zero-centred weights read as 1 + gamma (Gemma's norm in transformers: `x * (1 + weight)`) where the
    layer documents plain gamma."""
    return NumpyAdapter.normalize(self, x, mean, var, eps, None if gamma is None else gamma + 1, beta)


def _update_with_std(self, running, batch_stat, momentum, step):
    """The running variance fed the batch standard deviation (a port that stores `std`)."""
    which = _which_statistic(self)
    fed = np.sqrt(np.maximum(batch_stat, 0)) if which == 1 else batch_stat
    return NumpyAdapter.update(self, running, fed, momentum, step)


def _fixed_variance_momentum(self, running, batch_stat, momentum, step):
    """The momentum reaches the running mean only; the running variance keeps a hard-coded 0.1."""
    which = _which_statistic(self)
    return NumpyAdapter.update(self, running, batch_stat, 0.1 if which == 1 and momentum is not None else momentum, step)


def _global_mean(self, x, axes, ddof):
    """BatchNorm statistics centred on the mean over every axis (the channel axis too); variances per channel."""
    if len(axes) == x.ndim - 1 and x.ndim > 1:
        mean = np.broadcast_to(x.mean(), x.mean(axis=axes, keepdims=True).shape).astype(x.dtype)
        return mean, ((x - mean) ** 2).sum(axis=axes, keepdims=True) / x.dtype.type(self._size(x, axes) - ddof)
    return NumpyAdapter.statistics(self, x, axes, ddof)


def _rsqrt_bfloat16_precision(self, var, eps):
    """A fast approximate rsqrt (about 8 bits, as hardware rsqrt estimates give before refinement)."""
    import ml_dtypes
    inv = NumpyAdapter.inv_std(self, var, eps)
    return inv.astype(ml_dtypes.bfloat16).astype(inv.dtype)


def _gamma_flattened_column_major(self, x, axes, gamma, beta, eps, affine_axes):
    """A per-element gamma/beta flattened in column-major order and reshaped row-major (a port from a
    column-major framework): right for 1-D parameters, scrambled for 2-D and larger."""
    if gamma is not None and np.ndim(gamma) > 1:
        gamma = np.reshape(np.ravel(gamma, order="F"), np.shape(gamma))
        beta = np.reshape(np.ravel(beta, order="F"), np.shape(beta))
    return NumpyAdapter.layer_norm(self, x, axes, gamma, beta, eps, affine_axes)


MUTANTS += [
    Mutant("gamma_read_as_one_plus_gamma", "zero-centred weights: y = z * (1 + gamma) + beta (Gemma's norm)",
           "matches no variant", _sub("gamma_read_as_one_plus_gamma", normalize=_gamma_plus_one)),
    Mutant("running_var_fed_std", "the running variance is fed the batch std", "in running_var",
           _sub("running_var_fed_std", update=_update_with_std)),
    Mutant("variance_momentum_hardcoded", "momentum reaches the running mean only; the variance keeps 0.1",
           "in running_var", _sub("variance_momentum_hardcoded", update=_fixed_variance_momentum)),
    Mutant("bn_mean_over_all_axes", "statistics reduced over all axes but one centre on the mean over every axis",
           "matches no variant", _sub("bn_mean_over_all_axes", statistics=_global_mean)),
    Mutant("rsqrt_8_bit_estimate", "inverse std from an 8-bit rsqrt estimate, never refined", "accuracy:",
           _sub("rsqrt_8_bit_estimate", inv_std=_rsqrt_bfloat16_precision)),
    Mutant("affine_flattened_column_major", "per-element gamma and beta flattened column-major, reshaped row-major",
           "family:layout", _sub("affine_flattened_column_major", layer_norm=_gamma_flattened_column_major)),
]


def _cumulative_off_by_one(self, running, batch_stat, momentum, step):
    """momentum=None divides by the step count plus one (a counter that starts at 1)."""
    if momentum is None:
        return running + (batch_stat - running) / running.dtype.type(step + 1)
    return NumpyAdapter.update(self, running, batch_stat, momentum, step)


def _falsy_momentum(self, running, batch_stat, momentum, step):
    """`momentum = momentum or 0.1`: a momentum of 0 becomes the default."""
    return NumpyAdapter.update(self, running, batch_stat, 0.1 if momentum == 0 else momentum, step)


def _float64_in_float32(self, x):
    """float64 inputs computed in float32 (a compute dtype fixed at float32)."""
    return np.dtype(np.float32)


MUTANTS += [
    Mutant("cumulative_average_off_by_one", "momentum=None divides by step + 1", "family:momentum",
           _sub("cumulative_average_off_by_one", update=_cumulative_off_by_one)),
    Mutant("momentum_zero_becomes_default", "`momentum or 0.1`: momentum 0 becomes 0.1", "in running_",
           _sub("momentum_zero_becomes_default", update=_falsy_momentum)),
    Mutant("float64_computed_in_float32", "float64 inputs computed in float32", "float32 precision",
           _sub("float64_computed_in_float32", compute_dtype=_float64_in_float32)),
]


# -- RMSNorm (issue 22): the numpy adapter's RMSNorm steps (adapters/numpy_rms.py), one changed --------

def _one_plus_w_twice(self, weight, ct):
    """(1 + w) applied by the loader and again by the layer: 2 + w."""
    return None if weight is None else np.asarray(weight).astype(ct) + ct.type(2)


def _mean_square_accumulated_in_input_dtype(self, x, axes, weight, eps):
    """A naive kernel: the squares summed in a float16/bfloat16 accumulator, the rest in float32."""
    from normconf.adapters.numpy_rms import HALF, NumpyRMSNorm
    if str(x.dtype) not in HALF:
        return NumpyRMSNorm.rms_norm(self, x, axes, weight, eps)
    axes = tuple(sorted(a % x.ndim for a in axes))
    moved = np.moveaxis(np.square(x), axes, tuple(range(x.ndim - len(axes), x.ndim)))
    flat = moved.reshape(moved.shape[:x.ndim - len(axes)] + (-1,))
    total = np.add.accumulate(flat, axis=-1, dtype=x.dtype)[..., -1]
    keep = [1 if i in axes else n for i, n in enumerate(x.shape)]
    ms = (total.astype(np.float32) / np.float32(flat.shape[-1])).reshape(keep)
    xc = x.astype(np.float32)
    inv = self.rms_inverse(ms, self.rms_eps(eps, np.dtype(np.float32)))
    return {"y": self.rms_scale(xc, inv, self.rms_weight(weight, np.dtype(np.float32)), x)}


def _eps_of_input_dtype(self, eps, ct):
    """eps=None read as the machine epsilon of the input dtype, as torch.nn.RMSNorm's docs say (bfloat16:
    7.8e-3), where the kernel uses the computing dtype's."""
    from normconf.adapters.numpy_rms import NumpyRMSNorm
    if eps is DEFAULT and self.profile["default_eps@rms_norm"] is None:
        return float(np.finfo(np.float32).eps) if self._input_dtype is None else self._input_dtype_eps()
    return NumpyRMSNorm.rms_eps(self, eps, ct)


class _InputDtypeEps(NumpyAdapter):
    """Remembers the input dtype, so that eps=None can be read from it (the bug above)."""
    _input_dtype = None

    def rms_norm(self, x, axes, weight, eps):
        self._input_dtype = x.dtype
        return NumpyAdapter.rms_norm(self, x, axes, weight, eps)

    def _input_dtype_eps(self):
        import ml_dtypes
        return float(ml_dtypes.finfo(self._input_dtype).eps)


RMS_GEMMA = {"rms_weight_form": "one_plus_w"}
RMS = ("rms_norm",)


def _rms_mutant(*args, **kwargs) -> Mutant:
    return Mutant(*args, layers=RMS, **kwargs)


MUTANTS += [
    _rms_mutant("rms_casting_llama_for_torch", "RMSNorm casts x * rsqrt to the input dtype before the weight, where "
                "float32 with one cast is documented", "rms_casting",
                _np("rms_casting_llama_for_torch", rms_casting="cast_before_weight")),
    _rms_mutant("rms_casting_torch_for_llama", "RMSNorm multiplies by the weight in float32, where Llama's cast "
                "before the weight is documented", "rms_casting", _np("rms_casting_torch_for_llama"),
                documented={"rms_casting": "cast_before_weight"}),
    _rms_mutant("rms_all_in_input_dtype", "every RMSNorm step rounded to float16/bfloat16", "rms_casting",
                _np("rms_all_in_input_dtype", rms_casting="input_dtype")),
    _rms_mutant("rms_one_plus_w_not_applied", "Gemma's zero-centred weight used as a plain multiplier", "rms_weight_form",
                _np("rms_one_plus_w_not_applied"), documented=RMS_GEMMA),
    _rms_mutant("rms_one_plus_w_applied_twice", "Gemma's (1 + w) applied by the loader and again by the layer",
                "rms_weight_form", _sub("rms_one_plus_w_applied_twice", rms_weight=_one_plus_w_twice),
                documented=RMS_GEMMA),
    _rms_mutant("rms_one_plus_w_where_w", "(1 + w) applied to a plain weight", "rms_weight_form",
                _np("rms_one_plus_w_where_w", rms_weight_form="one_plus_w")),
    _rms_mutant("rms_eps_outside_root", "x / (rms + eps)", "eps_placement", _np("rms_eps_outside_root", eps_placement="added_to_std")),
    _rms_mutant("rms_mean_square_accumulated_in_bfloat16", "the mean of squares summed in a float16/bfloat16 accumulator",
                "rms_casting", _sub("rms_mean_square_accumulated_in_bfloat16", rms_norm=_mean_square_accumulated_in_input_dtype)),
    _rms_mutant("rms_float32_output_for_mixed_dtypes", "a float32 weight beside bfloat16 x promotes the output to "
                "float32 where the input's dtype is documented", "rms_output_dtype",
                _np("rms_float32_output_for_mixed_dtypes", rms_output_dtype="promoted")),
    _rms_mutant("rms_mean_subtracted", "divides by the standard deviation (keras rms_scaling=True)", "rms_statistic",
                _sub("rms_mean_subtracted", rms_mean_square=lambda self, xc, axes: (
               (xc - xc.mean(axis=axes, keepdims=True)) ** 2).mean(axis=axes, keepdims=True))),
    _rms_mutant("rms_eps_none_from_input_dtype", "eps=None read as the input dtype's machine epsilon (bfloat16: 7.8e-3)",
                "default_eps", _sub("rms_eps_none_from_input_dtype", base=_InputDtypeEps, rms_eps=_eps_of_input_dtype)),
]


# -- issue 21: bugs in the regions only generated cases draw (parameters, eps 0, momentum 0, layouts) ------

def _gamma_magnitude(self, x, mean, var, eps, gamma, beta):
    """The scale's sign lost: gamma kept as a log-magnitude (or folded into the inverse std through a
    square root), so a negative gamma acts as |gamma|."""
    return NumpyAdapter.normalize(self, x, mean, var, eps, None if gamma is None else np.abs(gamma), beta)


def _eps_or_default(self, var, eps):
    """`eps = eps or 1e-5`: an eps of 0 becomes the default (the falsy-zero bug of momentum_zero_becomes_default)."""
    return NumpyAdapter.inv_std(self, var, eps or 1e-5)


def _eps_at_least_cudnn_minimum(self, var, eps):
    """eps raised to cuDNN's CUDNN_BN_MIN_EPSILON (1e-5), as wrappers of cudnnBatchNormalizationForward do to
    avoid its CUDNN_STATUS_BAD_PARAM, silently changing what a smaller eps computes."""
    return NumpyAdapter.inv_std(self, var, max(eps, 1e-5))


def _zero_momentum_cumulative(self, running, batch_stat, momentum, step):
    """`if not momentum:` meant for None: a momentum of 0 runs the cumulative average."""
    return NumpyAdapter.update(self, running, batch_stat, momentum or None, step)


def _affine_skipped_without_bias(self, x, mean, var, eps, gamma, beta):
    """A fast path taken when beta is all zeros that skips the whole affine step, gamma too."""
    if beta is not None and not np.any(beta):
        gamma = beta = None
    return NumpyAdapter.normalize(self, x, mean, var, eps, gamma, beta)


def _reading(method, read):
    """NumpyAdapter's `method` with its input (each batch of batch_norm_steps) first read through `read`."""
    def run(self, *args):
        args = list(args)
        args[0] = [read(b) for b in args[0]] if method == "batch_norm_steps" else read(args[0])
        return getattr(NumpyAdapter, method)(self, *args)
    return run


def _either_order_as_c(method):
    """Accepts any contiguous input (C or Fortran: numpy's flags.forc) and then reads it as C order."""
    def read(x):
        return np.ravel(x, order="K").reshape(x.shape) if x.flags.f_contiguous and not x.flags.c_contiguous else x

    return _reading(method, read)


def _strided_from_start_of_buffer(method):
    """A non-contiguous view read as its buffer's first x.size elements (a raw data pointer taken without
    .contiguous(), the classic custom-kernel bug)."""
    def read(x):
        if x.flags.c_contiguous or x.flags.f_contiguous or x.base is None:
            return x
        return np.ascontiguousarray(x.base).ravel()[:x.size].reshape(x.shape)

    return _reading(method, read)


def _per_method(factory):
    return {m: factory(m) for m in ("layer_norm", "batch_norm_steps", "batch_norm_eval")}


MUTANTS += [
    Mutant("gamma_sign_lost", "a negative gamma acts as |gamma| (scale kept as a magnitude)", "accuracy:",
           _sub("gamma_sign_lost", normalize=_gamma_magnitude)),
    Mutant("eps_zero_becomes_default", "`eps or 1e-5`: eps 0 becomes 1e-5", "accuracy:",
           _sub("eps_zero_becomes_default", inv_std=_eps_or_default)),
    Mutant("eps_raised_to_cudnn_minimum", "eps raised to cuDNN's CUDNN_BN_MIN_EPSILON 1e-5", "accuracy:",
           _sub("eps_raised_to_cudnn_minimum", inv_std=_eps_at_least_cudnn_minimum)),
    Mutant("momentum_zero_runs_cumulative_average", "`if not momentum`: momentum 0 runs the cumulative average",
           "in running_", _sub("momentum_zero_runs_cumulative_average", update=_zero_momentum_cumulative)),
    Mutant("affine_skipped_when_beta_is_zero", "a beta of zeros skips the affine step, gamma too", "accuracy:",
           _sub("affine_skipped_when_beta_is_zero", normalize=_affine_skipped_without_bias)),
    Mutant("fortran_order_read_as_c", "a Fortran-order input read as C order (any contiguous input accepted)",
           "accuracy:", _sub("fortran_order_read_as_c", **_per_method(_either_order_as_c)),
           cite="https://github.com/pytorch/pytorch/pull/63392 (BatchNorm2d on a non-contiguous CPU input, #63224)"),
    Mutant("strided_view_read_from_buffer_start", "a non-contiguous view read as its buffer's first elements",
           "accuracy:", _sub("strided_view_read_from_buffer_start",
                             **_per_method(_strided_from_start_of_buffer)),
           cite="https://github.com/NVIDIA/TransformerEngine/pull/1017 (LayerNorm: wrong results for non-contiguous input)"),
]


def _beta_before_gamma(self, x, mean, var, eps, gamma, beta):
    """The affine step in the wrong order: (z + beta) * gamma."""
    y = (x - mean) * self.inv_std(var, eps)
    if beta is not None:
        y = y + beta
    return y if gamma is None else y * gamma


def _gamma_clamped(self, x, mean, var, eps, gamma, beta):
    """A non-negativity constraint on the scale (Keras' NonNeg kernel constraint, a ReLU'd log-scale)."""
    return NumpyAdapter.normalize(self, x, mean, var, eps, None if gamma is None else np.maximum(gamma, 0), beta)


def _gamma_reversed(self, x, mean, var, eps, gamma, beta):
    """gamma and beta indexed from the wrong end of the channel axis (an index-direction slip)."""
    if gamma is not None:
        gamma, beta = np.flip(gamma), np.flip(beta)
    return NumpyAdapter.normalize(self, x, mean, var, eps, gamma, beta)


def _eps_twice(self, var, eps):
    """eps added where the variance is computed and again inside the rsqrt (two helpers each adding it)."""
    return NumpyAdapter.inv_std(self, var + var.dtype.type(eps), eps)


def _transposed_read_as_c(method):
    """A permuted view (strides not descending) read in the order its buffer holds it."""
    def read(x):
        strides = [s for s, n in zip(x.strides, x.shape) if n > 1]
        return x if strides == sorted(strides, reverse=True) else np.ravel(x, order="K").reshape(x.shape)

    return _reading(method, read)


def _variance_around_running_mean(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
    """The stored variance taken around the running mean before the step instead of the batch's mean."""
    self.__dict__["_centre"] = None
    return NumpyAdapter.batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum)


def _update_around_running_mean(self, running, batch_stat, momentum, step):
    which = _which_statistic(self)
    if which == 0:
        self.__dict__["_mean_before"], self.__dict__["_batch_mean"] = running, batch_stat
    else:  # var around m_run = var + (m_batch - m_run)^2
        shift = (self.__dict__["_batch_mean"] - self.__dict__["_mean_before"]) ** 2
        batch_stat = batch_stat + shift.astype(batch_stat.dtype)
    return NumpyAdapter.update(self, running, batch_stat, momentum, step)


def _momentum_validated(self, running, batch_stat, momentum, step):
    """A range check that silently replaces a momentum outside (0, 1) by the default 0.1: 0 and 1 lost."""
    if momentum is not None and not 0 < momentum < 1:
        momentum = 0.1
    return NumpyAdapter.update(self, running, batch_stat, momentum, step)


def _eps_dropped_without_affine(self, x, mean, var, eps, gamma, beta):
    """The fast path for a layer without gamma and beta forgets eps (a separate kernel per affine flag)."""
    return NumpyAdapter.normalize(self, x, mean, var, eps if gamma is not None else 0.0, gamma, beta)


MUTANTS += [
    Mutant("beta_added_before_gamma", "affine in the wrong order: (z + beta) * gamma", "accuracy:",
           _sub("beta_added_before_gamma", normalize=_beta_before_gamma)),
    Mutant("negative_gamma_clamped_to_zero", "a non-negativity constraint on gamma", "accuracy:",
           _sub("negative_gamma_clamped_to_zero", normalize=_gamma_clamped)),
    Mutant("affine_parameters_reversed", "gamma and beta indexed from the wrong end of the channel axis",
           "accuracy:", _sub("affine_parameters_reversed", normalize=_gamma_reversed)),
    Mutant("eps_added_twice", "eps added to the variance and again inside the rsqrt", "accuracy:",
           _sub("eps_added_twice", inv_std=_eps_twice)),
    Mutant("transposed_view_read_as_c", "a permuted (transposed) view read in its buffer's order", "accuracy:",
           _sub("transposed_view_read_as_c", **_per_method(_transposed_read_as_c)),
           cite="https://github.com/microsoft/DirectML/issues/588 (layer_norm of a permuted input: wrong values)"),
    Mutant("variance_around_running_mean", "the stored variance taken around the running mean, not the batch's",
           "in running_var", _sub("variance_around_running_mean", batch_norm_steps=_variance_around_running_mean,
                                  update=_update_around_running_mean)),
    Mutant("momentum_outside_0_1_becomes_default", "a range check replaces momentum 0 and 1 by 0.1", "in running_",
           _sub("momentum_outside_0_1_becomes_default", update=_momentum_validated)),
    Mutant("eps_dropped_without_affine", "the no-affine fast path forgets eps", "accuracy:",
           _sub("eps_dropped_without_affine", normalize=_eps_dropped_without_affine)),
]


# -- GroupNorm and InstanceNorm (issue 22) ------------------------------------------------------------

def _groups_from_memory_order(self, x, channel_axis, groups):
    """x.reshape(N, G, -1) whatever the layout: on channels-last input the groups are runs of the
    flattened (..., C) memory, not of channels (code written for NCHW, fed NHWC)."""
    return x.reshape(x.shape[0], groups, -1)


def _ungroup_from_memory_order(self, g, shape, channel_axis):
    return g.reshape(shape)


def _instance_running_var_biased(self, var, n):
    return var  # the instance's biased variance, where torch feeds the unbiased one


def _affine_per_group(self, x, channel_axis, groups, gamma, beta, eps):
    """ONNX GroupNormalization-18's layout (scale and bias per group) read into a per-channel layer: each
    channel takes its group's first entry."""
    if gamma is None or groups is DEFAULT:
        return NumpyAdapter.group_norm(self, x, channel_axis, groups, gamma, beta, eps)
    per_group = (np.repeat(np.asarray(p).reshape(groups, -1)[:, :1], len(p) // groups, axis=1).reshape(-1)
                 for p in (gamma, beta))
    return NumpyAdapter.group_norm(self, x, channel_axis, groups, *per_group, eps)


MUTANTS += [
    Mutant("gn_affine_per_group", "GroupNorm's scale and shift taken per group (opset-18 layout), not per channel",
           "family:group", _sub("gn_affine_per_group", group_norm=_affine_per_group), layers=GROUPED),
    Mutant("gn_groups_across_wrong_axis", "channels-last GroupNorm/InstanceNorm grouped as if channels-first "
           "(x.reshape(N, G, -1))", "family:group",
           _sub("gn_groups_across_wrong_axis", group_view=_groups_from_memory_order,
                ungroup=_ungroup_from_memory_order), layers=GROUPED),
    Mutant("gn_interleaved_groups", "channel c in group c % G (interleaved) instead of contiguous blocks",
           "group_mapping", _np("gn_interleaved_groups", group_mapping="strided"), layers=GROUPED),
    Mutant("in_running_var_biased", "InstanceNorm's running variance fed the biased instance variance where the "
           "unbiased is documented", "running_variance",
           _sub("in_running_var_biased", instance_stored_variance=_instance_running_var_biased), layers=GROUPED),
    Mutant("in_eval_instance_statistics", "InstanceNorm with tracked statistics normalizes eval with the "
           "instance's own statistics", "instance_eval_statistics",
           _np("in_eval_instance_statistics", instance_eval_statistics="instance"), layers=GROUPED),
]


# Batch sizes that change from step to step (golden/ragged.py): both bugs are invisible while every
# batch has one size.

def _first_size_kept(self, x, axes) -> int:
    """N counted once, on the call's first batch: N/(N-1) of that batch for every later step."""
    if self._first_n is None:
        self._first_n = NumpyAdapter._size(x, axes)
    return self._first_n


def _size_recorded(self, x, axes) -> int:
    n = NumpyAdapter._size(x, axes)
    self._sizes.append(n)
    return n


def _fresh_sizes(self, batches, *args):
    self._first_n, self._sizes = None, []
    return NumpyAdapter.batch_norm_steps(self, batches, *args)


def _sample_weighted_cumulative(self, running, batch_stat, momentum, step):
    """momentum=None as a running average over samples (step k weighs N_k / sum N), where PyTorch documents
    "cumulative moving average (i.e. simple average)": each step's statistics weigh 1/k."""
    if momentum is None:
        weight = self._sizes[step - 1] / sum(self._sizes[:step])
        return running + (batch_stat - running) * running.dtype.type(weight)
    return NumpyAdapter.update(self, running, batch_stat, momentum, step)


MUTANTS += [
    Mutant("unbiased_factor_from_first_batch", "running variance's N/(N-1) computed once, from the first batch",
           "in running_var", _sub("unbiased_factor_from_first_batch", batch_norm_steps=_fresh_sizes,
                                   _size=_first_size_kept), layers=("batch_norm",), families=("ragged",)),
    Mutant("cumulative_average_weighted_by_samples", "momentum=None averages over samples, not steps",
           "in running_var", _sub("cumulative_average_weighted_by_samples", batch_norm_steps=_fresh_sizes,
                                   _size=_size_recorded, update=_sample_weighted_cumulative), layers=("batch_norm",),
           families=("ragged",),
           cite="https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html (momentum=None: "
                "\"cumulative moving average (i.e. simple average)\")"),
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


def kill_record(mutant: Mutant, case_names=None, generated: dict | None = None) -> dict:
    """Run the mutant through the conformance checks of every case of the layers its code changes, and of
    the generated cases `generated` (name -> specification; by default the draw every run makes,
    golden/generated.py); who caught it, naming what, by how much, and whether only generated cases did."""
    case_names = [n for n in (sorted(CASES) if case_names is None else sorted(case_names))
                  if CASES[n].layer in mutant.layers and runs_through(mutant, CASES[n].family)]
    generated = draw_specs(store=cache_dir()) if generated is None else generated
    generated = {name: spec for name, spec in generated.items() if spec["layer"] in mutant.layers
                 and runs_through(mutant, "generated")}
    adapter = mutant.make()
    expectation = expectation_for(mutant)
    caught, margins, named, outcomes = [], {}, [], {}
    runs = [(case, None) for case in case_names] + [(name, spec) for name, spec in sorted(generated.items())]
    for case, spec in runs:
        # the adapter's name is the mutant's own, so the expectation's rules (e.g. raising) apply to it
        fixture = None if spec is None else fixture_of(to_json(spec))
        cell = run_cell(adapter, mutant.name, case, _renamed(expectation, mutant.name), None, fixture=fixture)
        if cell["outcome"] in FAILING:
            caught.append(case)
            outcomes[case] = cell["outcome"]
            missed = (cell.get("accuracy") or {}).get("documented_error")
            nonfinite_only = missed is not None and missed <= 1 and any(
                f["kind"] == "nonfinite" for f in cell.get("failures", []))
            if missed is not None and not nonfinite_only:  # how far from the profile it documents, in tolerances
                margins[case] = round(missed, 3)  # (NaN where the formula is finite has no such figure)
            if (cell.get("rounding_bias") or {}).get("ratio", 0) > 1:  # caught by the bias threshold
                margins[case] = round(cell["rounding_bias"]["ratio"], 3)
            if names_the_bug(mutant.breaks, case, cell["message"]):
                named.append(case)
    only_generated = bool(caught) and all(case in generated for case in caught)
    return {"mutant": mutant.name, "bug": mutant.bug, "breaks": mutant.breaks, "killed": bool(caught),
            "named": bool(named), "caught_by": caught, "named_by": named, "margins": margins, "outcomes": outcomes,
            "only_generated": only_generated}


def names_the_bug(breaks: str, case: str, message: str) -> bool:
    if breaks.startswith("family:"):
        return case in CASES and CASES[case].family == breaks.split(":", 1)[1]
    return breaks in message


def _renamed(expectation: Expectation, name: str) -> Expectation:
    from dataclasses import replace
    rules = lambda rs: [replace(r, adapters=None) for r in rs]  # noqa: E731 - numpy.toml rules, any adapter name
    return Expectation(expectation.path, (name,), expectation.documented, rules(expectation.outcomes),
                       rules(expectation.deviations))

