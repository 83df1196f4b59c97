"""A framework-free implementation of one documented profile (PyTorch's), in float32.

It lets the suite and its own tests run with only numpy and pytest installed, and it is the base the
mutants of judge/mutants.py change one thing in.  Statistics are computed in float32 (float64 for
float64 inputs) with the two-pass variance, as the frameworks document; outputs come back in the
input's dtype.
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import DEFAULT, ImportingAdapter, Unsupported, steps_output
from normconf.adapters.numpy_rms import NumpyRMSNorm

PYTORCH_PROFILE = {
    "norm_variance": "biased",
    "running_variance": "unbiased",
    "momentum_form": "weight_on_new",
    "eps_placement": "inside_sqrt",
    "initial_running_stats": "zero_one",
    "eval_statistics": "running",
    "training_statistics": "batch",
    "default_eps": 1e-5,
    "default_momentum": 0.1,
    "default_feature_axis": 1,
    # RMSNorm as torch.nn.RMSNorm: weight as is, float32 with one cast at the end, eps=None
    "rms_weight_form": "w",
    "rms_casting": "float32_cast_once",
    "default_eps@rms_norm": None,
    "rms_output_dtype": "input",
    "group_mapping": "contiguous",
    "instance_eval_statistics": "running",
}


def grouped(x, axes):
    """The reduced axes moved last and flattened: (groups..., n), and the keepdims shape of a statistic."""
    axes = tuple(a % x.ndim for a in axes)
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    keep = tuple(1 if i in axes else size for i, size in enumerate(x.shape))
    # contiguous: numpy sums pairwise only along a contiguous axis (a strided view is summed in sequence)
    return np.ascontiguousarray(moved.reshape(moved.shape[:x.ndim - len(axes)] + (-1,))), keep


class NumpyAdapter(NumpyRMSNorm, ImportingAdapter):
    name = "numpy"
    requires = ("numpy",)

    def __init__(self, profile: dict | None = None, name: str | None = None):
        self.profile = {**PYTORCH_PROFILE, **(profile or {})}
        self.momentum_form = self.profile["momentum_form"]
        if name:
            self.name = name

    # -- the arithmetic, in small overridable steps (mutants replace one of them) --
    def compute_dtype(self, x) -> np.dtype:
        return np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)

    def statistics(self, x, axes, ddof: int):
        # summed over one contiguous last axis, where numpy sums pairwise: over a leading axis it adds row
        # by row, a sequential sum whose mean errs by ~u sqrt(n) |mean|, beyond the tolerance at a mean
        # 30 std off and n = 180 (found by --explore; golden/tolerance.py models pairwise and blocked sums)
        flat, keep = grouped(x, axes)
        mean = flat.mean(axis=-1, keepdims=True)
        var = ((flat - mean) ** 2).sum(axis=-1) / (flat.shape[-1] - ddof)
        return mean.reshape(keep), var.reshape(keep)

    @staticmethod
    def _size(x, axes) -> int:
        return int(np.prod([x.shape[a] for a in axes]))

    def inv_std(self, var, eps):
        if self.profile["eps_placement"] == "added_to_std":
            return 1 / (np.sqrt(var) + var.dtype.type(eps))
        return 1 / np.sqrt(var + var.dtype.type(eps))

    def normalize(self, x, mean, var, eps, gamma, beta):
        y = (x - mean) * self.inv_std(var, eps)
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
        return y

    def finish(self, y, like):
        return y.astype(like.dtype)

    def _eps(self, eps):
        return self.profile["default_eps"] if eps is DEFAULT else eps

    # -- the operations --
    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        ct = self.compute_dtype(x)
        xc = x.astype(ct)
        axes = tuple(sorted(a % x.ndim for a in axes))
        mean, var = self.statistics(xc, axes, self._ddof_norm())
        g = _broadcast(gamma, x.ndim, affine_axes, ct)
        b = _broadcast(beta, x.ndim, affine_axes, ct)
        return {"y": self.finish(self.normalize(xc, mean, var, self._eps(eps), g, b), x)}

    def _ddof_norm(self) -> int:
        return 1 if self.profile["norm_variance"] == "unbiased" else 0

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        eps = self._eps(eps)
        momentum = self.profile["default_momentum"] if momentum is DEFAULT else momentum
        if feature_axis is DEFAULT:
            feature_axis = self.profile["default_feature_axis"]
        fa = feature_axis % batches[0].ndim
        axes = tuple(a for a in range(batches[0].ndim) if a != fa)
        ct = self.compute_dtype(batches[0])
        channels = batches[0].shape[fa]
        debias = self.profile["initial_running_stats"] == "zero_debiased"
        run_mean = np.zeros(channels, ct)
        run_var = np.zeros(channels, ct) if debias else np.ones(channels, ct)
        g = _broadcast(gamma, batches[0].ndim, (fa,), ct)
        b = _broadcast(beta, batches[0].ndim, (fa,), ct)
        ys, means, vars_ = [], [], []
        shown = (run_mean, run_var)  # what the layer reports before a step (raw accumulators at first)
        for step, x in enumerate(batches, start=1):
            xc = x.astype(ct)
            mean, biased = self.statistics(xc, axes, 0)
            n = self._size(xc, axes)
            if n == 1 and self.profile["running_variance"] == "unbiased":
                raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
            with np.errstate(divide="ignore", invalid="ignore"):  # N - 1 = 0: the formula's own 0/0
                var = biased * n / (n - 1) if self._ddof_norm() else biased
                stored = (biased * n / (n - 1) if self.profile["running_variance"] == "unbiased" else biased).reshape(-1)
            run_mean = self.update(run_mean, mean.reshape(-1), momentum, step)
            run_var = self.update(run_var, stored, momentum, step)
            before = shown
            if debias and momentum is not None:  # a cumulative average has total weight 1 already
                w_new = momentum if self.momentum_form == "weight_on_new" else 1 - momentum
                shown = (run_mean / (1 - (1 - w_new) ** step), run_var / (1 - (1 - w_new) ** step))
            else:
                shown = (run_mean.copy(), run_var.copy())
            means.append(shown[0])
            vars_.append(shown[1])
            centre, spread = {"batch": (mean, var), "running_updated": shown,
                              "running_previous": before}[self.profile["training_statistics"]]
            cshape = mean.shape
            ys.append(self.finish(self.normalize(xc, np.reshape(centre, cshape), np.reshape(spread, cshape),
                                                 eps, g, b), x))
        y_eval = self.eval_forward(x_eval, fa, means[-1], vars_[-1], g, b, eps)
        return {"y_train": steps_output(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}

    def update(self, running, batch_stat, momentum, step):
        if momentum is None:
            return running + (batch_stat - running) / running.dtype.type(step)
        w_new = momentum if self.momentum_form == "weight_on_new" else 1 - momentum
        return (1 - w_new) * running + w_new * batch_stat

    def eval_forward(self, x, fa, running_mean, running_var, g, b, eps):
        ct = self.compute_dtype(x)
        xc = x.astype(ct)
        if self.profile["eval_statistics"] == "batch":
            axes = tuple(a for a in range(x.ndim) if a != fa)
            mean, var = self.statistics(xc, axes, self._ddof_norm())
        else:
            shape = tuple(-1 if a == fa else 1 for a in range(x.ndim))
            mean = np.asarray(running_mean, ct).reshape(shape)
            var = np.asarray(running_var, ct).reshape(shape)
        return self.finish(self.normalize(xc, mean, var, eps, g, b), x)

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        fa = feature_axis % x.ndim
        ct = self.compute_dtype(x)
        g = _broadcast(gamma, x.ndim, (fa,), ct)
        b = _broadcast(beta, x.ndim, (fa,), ct)
        return {"y": self.eval_forward(x, fa, running_mean, running_var, g, b, self._eps(eps))}

    # -- gradients (issue 23): the backward of the forward above, written out by hand for the PyTorch profile
    # (biased variance, eps inside the root); independent of the oracle's golden/gradients.py --
    def layer_norm_grad(self, x, axes, gamma, beta, eps, dy):
        ct = self.compute_dtype(x)
        axes = tuple(sorted(a % x.ndim for a in axes))
        xc = x.astype(ct)
        mean, var = self.statistics(xc, axes, self._ddof_norm())
        return self.backward(xc, dy.astype(ct), mean, var, self._eps(eps), _broadcast(gamma, x.ndim, axes, ct),
                             _broadcast(beta, x.ndim, axes, ct), axes, True, x, gamma)

    def batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
        ct = self.compute_dtype(x)
        fa = feature_axis % x.ndim
        axes = tuple(a for a in range(x.ndim) if a != fa)
        xc = x.astype(ct)
        training = running_mean is None
        if training:
            mean, var = self.statistics(xc, axes, self._ddof_norm())
        else:
            shape = tuple(-1 if a == fa else 1 for a in range(x.ndim))
            mean, var = (np.asarray(r, ct).reshape(shape) for r in (running_mean, running_var))
        return self.backward(xc, dy.astype(ct), mean, var, self._eps(eps), _broadcast(gamma, x.ndim, (fa,), ct),
                             _broadcast(beta, x.ndim, (fa,), ct), axes, training, x, gamma)

    def backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like, gamma):
        inv = self.inv_std(var, eps)
        xhat = (x - mean) * inv
        dxhat = dy * g
        dx = self.dx_through_statistics(dxhat, xhat, inv, axes) if through_statistics else dxhat * inv
        shared = tuple(a for a in range(x.ndim) if g.shape[a] == 1)  # the axes each parameter is used over
        return {"y": self.finish(xhat * g + b, like), "dx": self.finish(dx, like),
                "dgamma": self.dgamma_sum(dy * xhat, shared, gamma), "dbeta": self.param_sum(dy, shared, gamma)}

    def dx_through_statistics(self, dxhat, xhat, inv, axes):
        """dx when the statistics come from x: the projection removing dx̂'s mean and its x̂ component."""
        return inv * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                      - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))

    def dgamma_sum(self, terms, axes, gamma):
        return self.param_sum(terms, axes, gamma)

    def param_sum(self, terms, axes, gamma):
        """dgamma / dbeta: the sum over the positions a parameter is shared by, in gamma's shape and dtype."""
        return terms.sum(axis=axes).reshape(np.shape(gamma)).astype(np.asarray(gamma).dtype)

    # -- GroupNorm and InstanceNorm (torch.nn.GroupNorm, torch.nn.InstanceNorm*d's formulas) --
    def group_view(self, x, channel_axis, groups):
        """x as (N, G, C/G, *other axes): channels in contiguous blocks (strided: every G-th)."""
        ca = channel_axis % x.ndim
        moved = np.moveaxis(x, ca, 1)
        n, c, rest = moved.shape[0], moved.shape[1], moved.shape[2:]
        if c % groups:
            raise ValueError(f"num_groups {groups} must divide the {c} channels")
        if self.profile["group_mapping"] == "strided":
            return np.swapaxes(moved.reshape(n, c // groups, groups, *rest), 1, 2)
        return moved.reshape(n, groups, c // groups, *rest)

    def ungroup(self, g, shape, channel_axis):
        if self.profile["group_mapping"] == "strided":
            g = np.swapaxes(g, 1, 2)
        moved = g.reshape(g.shape[0], g.shape[1] * g.shape[2], *g.shape[3:])
        return np.moveaxis(moved, 1, channel_axis % len(shape))

    def grouped_forward(self, xc, channel_axis, groups, eps, ddof: int):
        """Normalized xc (already in the compute dtype), with the per-(sample, group) statistics."""
        g = self.group_view(xc, channel_axis, groups)
        axes = tuple(range(2, g.ndim))
        mean, var = self.statistics(g, axes, ddof)
        return self.ungroup(self.normalize(g, mean, var, eps, None, None), xc.shape, channel_axis), mean, var

    def channel_affine(self, y, channel_axis, gamma, beta):
        if gamma is not None:
            y = y * _broadcast(gamma, y.ndim, (channel_axis,), y.dtype)
        if beta is not None:
            y = y + _broadcast(beta, y.ndim, (channel_axis,), y.dtype)
        return y

    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        if groups is DEFAULT:
            if "default_groups" not in self.profile:  # as torch.nn.GroupNorm's constructor
                raise TypeError("GroupNorm.__init__() missing 1 required positional argument: 'num_groups'")
            groups = self.profile["default_groups"]
        if channel_axis is DEFAULT:
            channel_axis = self.profile["default_feature_axis"]
        xc = x.astype(self.compute_dtype(x))
        y, _, _ = self.grouped_forward(xc, channel_axis, groups, self._eps(eps), self._ddof_norm())
        return {"y": self.finish(self.channel_affine(y, channel_axis, gamma, beta), x)}

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        return self.group_norm(x, channel_axis, x.shape[channel_axis % x.ndim], gamma, beta, eps)

    def instance_stored_variance(self, var, n: int):
        """What the running variance is fed from one instance's biased variance over n values."""
        return var * n / (n - 1) if self.profile["running_variance"] == "unbiased" else var

    def instance_norm_steps(self, batches, x_eval, channel_axis, gamma, beta, eps, momentum):
        eps = self._eps(eps)
        momentum = self.profile["default_momentum"] if momentum is DEFAULT else momentum
        ca = channel_axis % batches[0].ndim
        ct = self.compute_dtype(batches[0])
        channels = batches[0].shape[ca]
        run_mean, run_var = np.zeros(channels, ct), np.ones(channels, ct)
        ys, means, vars_ = [], [], []
        for step, x in enumerate(batches, start=1):
            xc = x.astype(ct)
            y, mean, var = self.grouped_forward(xc, ca, channels, eps, self._ddof_norm())
            n = xc.size // (xc.shape[0] * channels)
            biased = var if not self._ddof_norm() else var * (n - 1) / n
            with np.errstate(divide="ignore", invalid="ignore"):
                stored = self.instance_stored_variance(biased, n)
            run_mean = self.update(run_mean, mean.reshape(-1, channels).mean(axis=0), momentum, step)
            run_var = self.update(run_var, stored.reshape(-1, channels).mean(axis=0), momentum, step)
            means.append(run_mean.copy())
            vars_.append(run_var.copy())
            ys.append(self.finish(self.channel_affine(y, ca, gamma, beta), x))
        if self.profile["instance_eval_statistics"] == "instance":
            y_eval = self.instance_norm(x_eval, ca, gamma, beta, eps)["y"]
        else:
            g = _broadcast(gamma, x_eval.ndim, (ca,), ct)
            b = _broadcast(beta, x_eval.ndim, (ca,), ct)
            shape = tuple(-1 if a == ca else 1 for a in range(x_eval.ndim))
            y_eval = self.finish(self.normalize(x_eval.astype(ct), means[-1].reshape(shape), vars_[-1].reshape(shape),
                                                eps, g, b), x_eval)
        return {"y_train": np.stack(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}


def _broadcast(param, ndim, param_axes, dtype):
    """A parameter spanning `param_axes` reshaped to broadcast against an ndim input."""
    if param is None:
        return None
    axes = sorted(a % ndim for a in param_axes)
    if len(axes) != np.ndim(param):
        raise Unsupported(f"parameter of shape {np.shape(param)} does not span axes {axes}")
    shape = [1] * ndim
    for a, size in zip(axes, np.shape(param)):
        shape[a] = size
    return np.asarray(param).astype(dtype).reshape(shape)
