"""Correct implementations of PyTorch's documented profile that differ from the numpy adapter only in how
they round: the tolerance must hold all of them (scripts/tolerance_study.py, scripts/redraw.py and
tests/self/test_tolerance.py check that it does).  The mutants (judge/mutants.py) break some of them.

Statistics are computed in float32 (float64 for float64 inputs) by
- two_pass:     numpy's pairwise mean, then the mean of squared deviations (the numpy adapter itself);
- pairwise:     a strict pairwise (tree) sum, for the mean and for the squared deviations;
- sequential:   strictly sequential float32 sums, left to right (np.add.accumulate);
- welford:      Welford's one-element update, sequentially;
- blocked:      blocks of BLOCK elements (two-pass inside), merged with Chan's weighted update;
- buffers_in_input_dtype: two-pass, and running buffers kept and updated in the input's dtype;
- stats_in_input_dtype:   BatchNorm training normalizes with the batch mean and inverse std rounded to
                          the input's dtype, as PyTorch's CPU kernel does for float16/bfloat16 modules.
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.numpy_adapter import NumpyAdapter, grouped

BLOCK = 1024


def pairwise_sum(a):
    """Tree sum over the last axis in a's dtype: pairs, then pairs of pairs; an odd element waits a level."""
    while a.shape[-1] > 1:
        odd = a[..., -1:] if a.shape[-1] % 2 else a[..., :0]
        even = a[..., :a.shape[-1] - odd.shape[-1]]
        a = np.concatenate([even[..., 0::2] + even[..., 1::2], odd], axis=-1)
    return a[..., 0]


def sequential_sum(a):
    return np.add.accumulate(a, axis=-1, dtype=a.dtype)[..., -1]


def block_moments(flat, block=BLOCK):
    """Per-block (count, mean, M2) over the last axis, each block by two passes in flat's dtype."""
    n = flat.shape[-1]
    out = []
    for start in range(0, n, block):
        part = flat[..., start:start + block]
        m = part.mean(axis=-1, dtype=flat.dtype)
        out.append((part.shape[-1], m, ((part - m[..., None]) ** 2).sum(axis=-1, dtype=flat.dtype)))
    return out


def chan_merge(a, b, correction=True):
    """Chan et al.'s merge of two (count, mean, M2) partial results."""
    (na, ma, m2a), (nb, mb, m2b) = a, b
    n = na + nb
    delta = mb - ma
    mean = ma + delta * (nb / n)
    m2 = m2a + m2b + (delta * delta * (na * nb / n) if correction else 0)
    return n, mean.astype(ma.dtype), m2.astype(ma.dtype)


class _Statistics(NumpyAdapter):
    """statistics() from a sum function over the flattened reduced axes (two passes)."""
    total = staticmethod(pairwise_sum)

    def statistics(self, x, axes, ddof):
        flat, keep = grouped(x, axes)
        n = flat.shape[-1]
        mean = (self.total(flat) / flat.dtype.type(n)).astype(flat.dtype)
        dev = flat - mean[..., None]
        var = self.total(dev * dev) / flat.dtype.type(n - ddof)
        return mean.reshape(keep), var.astype(flat.dtype).reshape(keep)


class Pairwise(_Statistics):
    total = staticmethod(pairwise_sum)


class Sequential(_Statistics):
    total = staticmethod(sequential_sum)


class Welford(NumpyAdapter):
    def statistics(self, x, axes, ddof):
        flat, keep = grouped(x, axes)
        t = flat.dtype.type
        mean = np.zeros(flat.shape[:-1], flat.dtype)
        m2 = np.zeros(flat.shape[:-1], flat.dtype)
        for k in range(flat.shape[-1]):
            delta = flat[..., k] - mean
            mean = mean + delta / t(k + 1)
            m2 = m2 + delta * (flat[..., k] - mean)
        return mean.reshape(keep), (m2 / t(flat.shape[-1] - ddof)).reshape(keep)


class Blocked(NumpyAdapter):
    """Blocks of BLOCK elements merged with Chan's update; `merge` is the one step the mutants change."""

    def merge(self, parts):
        acc = parts[0]
        for part in parts[1:]:
            acc = chan_merge(acc, part)
        return acc

    def statistics(self, x, axes, ddof):
        flat, keep = grouped(x, axes)
        n, mean, m2 = self.merge(block_moments(flat))
        return mean.reshape(keep), (m2 / flat.dtype.type(n - ddof)).reshape(keep)


class InputDtypeAware(NumpyAdapter):
    """Knows, inside its steps, the input's dtype and whether it runs BatchNorm training (for a step that
    rounds to the input's dtype; the numpy adapter's steps only see float32 or float64 values)."""
    input_dtype = None
    training = False

    def layer_norm(self, x, *args):
        self.input_dtype, self.training = x.dtype, False
        return NumpyAdapter.layer_norm(self, x, *args)

    def batch_norm_steps(self, batches, *args):
        self.input_dtype, self.training = batches[0].dtype, True
        try:
            return NumpyAdapter.batch_norm_steps(self, batches, *args)
        finally:
            self.training = False

    def batch_norm_eval(self, x, *args):
        self.input_dtype, self.training = x.dtype, False
        return NumpyAdapter.batch_norm_eval(self, x, *args)

    @property
    def half(self) -> bool:
        return self.input_dtype is not None and self.input_dtype.itemsize == 2

    def to_input_dtype(self, a):
        """a rounded to the input's dtype, kept in its own dtype."""
        return np.asarray(a).astype(self.input_dtype).astype(np.asarray(a).dtype)


class BuffersInInputDtype(InputDtypeAware):
    """Running buffers held in the input's dtype: both terms of the update rounded to it, and their sum
    (three roundings a step; the batch statistic itself may not fit the dtype, its weighted share does)."""

    def update(self, running, batch_stat, momentum, step):
        dt = self.input_dtype
        if momentum is None:
            old, new = running, (batch_stat - running) / running.dtype.type(step)
        else:
            w = momentum if self.momentum_form == "weight_on_new" else 1 - momentum
            old, new = (1 - w) * running, w * batch_stat
        return (old.astype(dt) + new.astype(dt)).astype(running.dtype)


class StatsInInputDtype(InputDtypeAware):
    """BatchNorm training: batch mean and inverse std rounded to the input's dtype before normalizing."""

    def normalize(self, x, mean, var, eps, gamma, beta):
        if not self.training:
            return NumpyAdapter.normalize(self, x, mean, var, eps, gamma, beta)
        y = (x - self.to_input_dtype(mean)) * self.to_input_dtype(self.inv_std(var, eps))
        y = y if gamma is None else y * gamma
        return y if beta is None else y + beta


def implementations() -> dict[str, NumpyAdapter]:
    """Name -> a fresh correct implementation (PyTorch's profile, numpy.toml's expectations)."""
    return {"two_pass": NumpyAdapter(name="two_pass"), "pairwise": Pairwise(name="pairwise"),
            "sequential": Sequential(name="sequential"), "welford": Welford(name="welford"),
            "blocked": Blocked(name="blocked"), "buffers_in_input_dtype": BuffersInInputDtype(name="buffers_in_input_dtype"),
            "stats_in_input_dtype": StatsInInputDtype(name="stats_in_input_dtype")}
