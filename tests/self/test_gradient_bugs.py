"""More gradient bugs, kept out of judge/gradient_mutants.py (whose five bugs the cases were designed against):
each is a plausible hand-written backward error, and each must fail some gradient cell.  They were written
after the cases (by the same author), so this is a second look, not an outsider's held-out set.  One candidate
was dropped as no bug: dx̂ = gamma dy rounded to float16/bfloat16 before the projection is one rounding of the
output dtype, which the tolerance admits (golden/tolerance.py: 2 u_out)."""
import numpy as np
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.gradient_cases import GRADIENT_CASES
from normconf.judge.gradients import run_gradient_cell


class _Bug(NumpyAdapter):
    def __init__(self):
        super().__init__(name=type(self).__name__)


class DgammaWithoutXhat(_Bug):
    """dgamma = sum(dy): x̂ forgotten."""
    def backward(self, *args):
        out = NumpyAdapter.backward(self, *args)
        return {**out, "dgamma": out["dbeta"]}


class DbetaAsMean(_Bug):
    def param_sum(self, terms, axes, gamma):
        return NumpyAdapter.param_sum(self, terms, axes, gamma) / np.prod([terms.shape[a] for a in axes])

    def dgamma_sum(self, terms, axes, gamma):
        return NumpyAdapter.param_sum(self, terms, axes, gamma)


class UnbiasedBackward(_Bug):
    def dx_through_statistics(self, dxhat, xhat, inv, axes):
        n = np.prod([dxhat.shape[a] for a in axes])
        return inv * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                      - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True) / (n - 1))


class SecondTermSignFlipped(_Bug):
    def dx_through_statistics(self, dxhat, xhat, inv, axes):
        return inv * (dxhat - dxhat.mean(axis=axes, keepdims=True) + xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))


class InvStdSquared(_Bug):
    def dx_through_statistics(self, dxhat, xhat, inv, axes):
        return NumpyAdapter.dx_through_statistics(self, dxhat, xhat, inv * inv, axes)


class VarianceTermDropped(_Bug):
    def dx_through_statistics(self, dxhat, xhat, inv, axes):
        return inv * (dxhat - dxhat.mean(axis=axes, keepdims=True))


class AbsGamma(_Bug):
    def backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like, gamma):
        out = NumpyAdapter.backward(self, x, dy, mean, var, eps, np.abs(g), b, axes, through_statistics, like, gamma)
        return {**out, "y": NumpyAdapter.backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like,
                                                  gamma)["y"]}


class GammaMissingInDx(_Bug):
    def backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like, gamma):
        right = NumpyAdapter.backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like, gamma)
        ones = NumpyAdapter.backward(self, x, dy, mean, var, eps, np.ones_like(g), b, axes, through_statistics, like,
                                     gamma)
        return {**right, "dx": ones["dx"]}


class EpsDroppedInBackward(_Bug):
    """The backward's inverse std without eps (the forward keeps it)."""
    def backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like, gamma):
        out = NumpyAdapter.backward(self, x, dy, mean, var, 0.0, g, b, axes, through_statistics, like, gamma)
        return {**out, "y": NumpyAdapter.backward(self, x, dy, mean, var, eps, g, b, axes, through_statistics, like,
                                                  gamma)["y"]}


class EvalDgammaWithBatchMean(_Bug):
    """Eval mode: dgamma's x̂ centred on the batch mean instead of the running one."""
    def batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
        out = NumpyAdapter.batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean, running_var)
        if running_mean is None:
            return out
        fa = feature_axis % x.ndim
        batch_mean = x.astype(np.float32).mean(axis=tuple(a for a in range(x.ndim) if a != fa))
        shifted = NumpyAdapter.batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy,
                                               batch_mean.astype(np.asarray(running_mean).dtype), running_var)
        return {**out, "dgamma": shifted["dgamma"]}


class RmsBackwardAsLayerNorm(_Bug):
    """RMSNorm's dx through LayerNorm's projection: dx̂'s mean removed too (nothing was subtracted)."""
    def rms_dx(self, dxhat, xhat, inv, ms, axes):
        return NumpyAdapter.dx_through_statistics(self, dxhat, xhat, inv, axes)


class RmsDweightWithoutInverse(_Bug):
    """dweight = sum(dy x): the 1 / rms forgotten."""
    def rms_norm_grad(self, x, axes, weight, eps, dy):
        out = NumpyAdapter.rms_norm_grad(self, x, axes, weight, eps, dy)
        shared = tuple(range(x.ndim - len(axes)))
        return {**out, "dweight": NumpyAdapter.param_sum(self, dy.astype(np.float32) * x.astype(np.float32), shared,
                                                         weight)}


class RmsEpsDroppedInBackward(_Bug):
    """The projection's x̂ recomputed without eps (the forward keeps it)."""
    def rms_dx(self, dxhat, xhat, inv, ms, axes):
        exact = 1.0 / np.sqrt(ms.astype(inv.dtype))
        return NumpyAdapter.rms_dx(self, dxhat, xhat / inv * exact, exact, ms, axes)


BUGS = [DgammaWithoutXhat, DbetaAsMean, UnbiasedBackward, SecondTermSignFlipped, InvStdSquared, VarianceTermDropped,
        AbsGamma, GammaMissingInDx, EpsDroppedInBackward, EvalDgammaWithBatchMean,
        RmsBackwardAsLayerNorm, RmsDweightWithoutInverse, RmsEpsDroppedInBackward]


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.__name__)
def test_bug_fails_a_gradient_cell(bug):
    adapter = bug()
    outcomes = {c: run_gradient_cell(adapter, adapter.name, c, None, None)["outcome"] for c in GRADIENT_CASES}
    assert "fail" in outcomes.values(), f"{bug.__name__} passed every gradient cell"
