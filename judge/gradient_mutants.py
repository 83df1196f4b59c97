"""Gradient mutants (issue 23): the numpy adapter's backward changed in one way each, modelled on public
failures, and the correct alternatives that must pass (float64 throughout, another summation order).
Every mutant must be caught by a gradient cell that names what it broke (`breaks`: text of the message)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.gradient_cases import GRADIENT_CASES
from normconf.judge.gradients import run_gradient_cell


@dataclass(frozen=True)
class GradientMutant:
    name: str
    bug: str
    breaks: str      # text a catching cell's message must contain
    make: object     # () -> adapter


def _sub(name, profile=None, **methods):
    cls = type(name, (NumpyAdapter,), methods)
    return lambda: cls(profile, name=name)


def _constant_statistics(self, dxhat, xhat, inv, axes):
    return dxhat * inv  # the batch mean and variance treated as constants: no projection


def _no_mean_term(self, dxhat, xhat, inv, axes):
    return inv * (dxhat - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))  # mean(dx̂) dropped


def _half_accumulator(self, terms, axes, gamma):
    """A sequential sum in the parameters' own dtype (float16/bfloat16): each partial sum rounded."""
    dtype = np.asarray(gamma).dtype
    rows = np.moveaxis(terms, [a for a in range(terms.ndim) if a not in axes], -1).reshape(-1, np.size(gamma))
    return np.add.accumulate(rows.astype(dtype), axis=0)[-1].reshape(np.shape(gamma))


def _channels_last_sum(self, terms, axes, gamma):
    """dbeta summed over every axis but the last, as if the channels were last."""
    total = terms.sum(axis=tuple(range(terms.ndim - 1)))
    dtype = np.asarray(gamma).dtype
    return total.reshape(np.shape(gamma)).astype(dtype) if total.size == np.size(gamma) else total.astype(dtype)


def _eval_as_training(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
    """The forward uses the running statistics; the backward is the training one, through the batch's."""
    out = NumpyAdapter.batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean, running_var)
    if running_mean is not None:
        out = {**NumpyAdapter.batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy), "y": out["y"]}
    return out


def _rms_no_projection(self, dxhat, xhat, inv, ms, axes):
    return inv * dxhat  # the RMS treated as a constant: x's own direction not projected out


def _raw_weight(self, weight, ct):
    return None if weight is None else np.asarray(weight).astype(ct)  # w where the forward used 1 + w


GRADIENT_MUTANTS = [
    GradientMutant("grad_statistics_constant", "the batch (and LayerNorm's) mean and variance treated as constants "
                   "in the backward, the classic hand-written bug", "statistics_gradient is constant_statistics",
                   _sub("grad_statistics_constant", dx_through_statistics=_constant_statistics)),
    GradientMutant("grad_dx_without_mean_term", "dx without the -mean(dx̂) term", "off in dx",
                   _sub("grad_dx_without_mean_term", dx_through_statistics=_no_mean_term)),
    GradientMutant("grad_dgamma_half_accumulation", "dgamma accumulated in float16/bfloat16 (Liger-Kernel, llm.c)",
                   "dgamma", _sub("grad_dgamma_half_accumulation", dgamma_sum=_half_accumulator)),
    GradientMutant("grad_dbeta_wrong_axes", "dbeta summed over the wrong axes (every axis but the last)", "dbeta",
                   _sub("grad_dbeta_wrong_axes", param_sum=_channels_last_sum, dgamma_sum=NumpyAdapter.param_sum)),
    GradientMutant("grad_eval_as_training", "eval-mode gradient computed as if training (through batch statistics)",
                   "eval_gradient is as_training", _sub("grad_eval_as_training", batch_norm_grad=_eval_as_training)),
    GradientMutant("grad_rms_dx_without_projection", "RMSNorm dx without the projection term (the RMS held constant)",
                   "off in dx", _sub("grad_rms_dx_without_projection", rms_dx=_rms_no_projection)),
    GradientMutant("grad_rms_one_plus_w_backward_forgotten", "RMSNorm applied as x̂ (1 + w) in the forward, its "
                   "backward with w (Gemma-style weight forgotten in a hand-written backward)",
                   "the backward follows rms_weight_form w, its forward one_plus_w",
                   _sub("grad_rms_one_plus_w_backward_forgotten", {"rms_weight_form": "one_plus_w"},
                        rms_backward_weight=_raw_weight)),
    GradientMutant("grad_rms_dweight_half_accumulation", "RMSNorm dweight accumulated in bfloat16 (Liger-Kernel)",
                   "dweight", _sub("grad_rms_dweight_half_accumulation", rms_dweight_sum=_half_accumulator)),
    # the numpy backward's projection is written for eps inside the root and the biased variance: a forward
    # switched to another convention without its backward (the gradient cells see the two disagree)
    GradientMutant("grad_backward_assumes_eps_inside", "forward with eps added to the std, backward derived for eps "
                   "inside the root", "the backward follows eps_placement neither, its forward added_to_std",
                   _sub("grad_backward_assumes_eps_inside", {"eps_placement": "added_to_std"})),
    GradientMutant("grad_backward_assumes_biased", "forward normalizing by the unbiased variance, backward derived "
                   "for the biased one", "the backward follows norm_variance neither, its forward unbiased",
                   _sub("grad_backward_assumes_biased", {"norm_variance": "unbiased"})),
]


def _float64_throughout(self, x):
    return np.dtype(np.float64)


def _reversed_sum(self, terms, axes, gamma):
    """Another summation order: the positions in reverse, pairwise (numpy's own) over the reversed array."""
    flipped = np.flip(terms, axis=axes)
    return NumpyAdapter.param_sum(self, np.ascontiguousarray(flipped), axes, gamma)


# correct implementations that differ from the numpy adapter in precision or order: they must pass every cell
CORRECT_ALTERNATIVES = {
    "grad_float64_throughout": _sub("grad_float64_throughout", compute_dtype=_float64_throughout),
    "grad_reversed_summation": _sub("grad_reversed_summation", param_sum=_reversed_sum),
}


def gradient_kill_record(mutant: GradientMutant, case_names=None) -> dict:
    """The mutant through every gradient case: which cells caught it, and which of them named the bug."""
    adapter = mutant.make()
    caught, named = [], []
    for case in sorted(GRADIENT_CASES if case_names is None else case_names):
        cell = run_gradient_cell(adapter, mutant.name, case, None, None)
        if cell["outcome"] not in ("pass", "unsupported"):
            caught.append(case)
            if mutant.breaks in cell["message"]:
                named.append(case)
    return {"mutant": mutant.name, "bug": mutant.bug, "breaks": mutant.breaks, "killed": bool(caught),
            "named": bool(named), "caught_by": caught, "named_by": named}
