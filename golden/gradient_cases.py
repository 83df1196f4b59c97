"""The gradient case catalog, as data (issue 23).  Apart from golden/cases.py so that the forward cases
and their fixtures are unchanged; a new layer's gradient is one more entry in GRADIENT_LAYERS (the
reference backward, golden/gradient_fixtures.py) and cases here.

Every case draws x, gamma, beta (and, in eval mode, running statistics) like a forward case, plus a
fixed cotangent dy = dL/dy ~ 0.5 + N(0, 1): its non-zero mean makes dbeta a sum that grows with the
reduction (a half-precision accumulator then stalls), and makes the mean term of dx large (dropping
it, or treating the batch statistics as constants, misses by a wide margin).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

# The layers with a reference backward (golden/gradient_fixtures.py: BACKWARD), and the gradient
# conventions each can show: the variant every documented framework follows comes first.
GRADIENT_CONVENTIONS = {
    # training BatchNorm: dx flows through the batch mean and variance, or (the classic bug) treats them
    # as constants; LayerNorm likewise through its per-sample statistics
    "statistics_gradient": ("through_statistics", "constant_statistics"),
    # eval BatchNorm: the running statistics are constants (no batch coupling), or (a bug) the training
    # backward is applied
    "eval_gradient": ("running_constant", "as_training"),
    # RMSNorm: the weight applied as w or as 1 + w (Gemma): dweight is the same, dx scales with the form
    "rms_weight_form": ("w", "one_plus_w"),
    # eps inside the root, or added to the standard deviation (the RMS): ds/dvar differs
    "eps_placement": ("inside_sqrt", "added_to_std"),
    # the variance the statistics divide by n (biased) or n - 1 (unbiased): dx's projection term follows it
    "norm_variance": ("biased", "unbiased"),
}
GRADIENT_LAYERS = {
    "layer_norm": ("statistics_gradient",),
    "batch_norm": ("statistics_gradient",),
    "batch_norm_eval": ("eval_gradient",),
    "rms_norm": ("rms_weight_form", "eps_placement"),
}
# appended to a layer's conventions (kept apart so the entries above stay as merged)
GRADIENT_LAYERS["layer_norm"] += ("eps_placement", "norm_variance")
GRADIENT_LAYERS["batch_norm"] += ("eps_placement", "norm_variance")
PER_SAMPLE = ("layer_norm", "rms_norm")  # statistics over the trailing axes of each sample
GRADIENT_DTYPES = ("float32", "float64", "float16", "bfloat16")
COTANGENT_MEAN = 0.5


@dataclass(frozen=True)
class GradCase:
    name: str
    layer: str                      # layer_norm | batch_norm (one training step) | batch_norm_eval | rms_norm
    shape: tuple[int, ...]
    axes: tuple[int, ...]           # layer_norm: normalized axes (trailing); batch norm: (feature_axis,)
    dtype: str = "float32"
    eps: float = 1e-5
    loc: float = 0.0
    scale: float = 1.0
    gamma: str = "positive"         # positive: U(0.5, 2); mixed: the same magnitudes, random signs
    shows: tuple[str, ...] = ()     # gradient conventions the case decides (the generator proves it)
    row: str = "basic"              # the matrix row it answers: basic, dtype, accumulation, offset, eval
    note: str = ""

    def __post_init__(self):
        problems = []
        if self.layer not in GRADIENT_LAYERS:
            problems.append(f"layer {self.layer!r} not in {tuple(GRADIENT_LAYERS)}")
        if self.dtype not in GRADIENT_DTYPES:
            problems.append(f"dtype {self.dtype!r} not in {GRADIENT_DTYPES}")
        problems += [f"unknown gradient convention {c!r} for {self.layer}" for c in self.shows
                     if c not in GRADIENT_LAYERS.get(self.layer, ())]
        if self.gamma not in ("positive", "mixed"):
            problems.append(f"gamma {self.gamma!r} is not positive or mixed")
        if problems:
            raise ValueError(f"gradient case {self.name!r}: " + "; ".join(problems))

    @property
    def feature_axis(self) -> int:
        return self.axes[0] % len(self.shape)

    @property
    def param_shape(self) -> tuple[int, ...]:
        nd = len(self.shape)
        if self.layer in PER_SAMPLE:
            return tuple(self.shape[a % nd] for a in sorted(a % nd for a in self.axes))
        return (self.shape[self.feature_axis],)

    @property
    def reduction_size(self) -> int:
        """n: the values each statistic is taken over."""
        size = int(np.prod(self.shape))
        if self.layer in PER_SAMPLE:
            return int(np.prod(self.param_shape))
        return size // self.shape[self.feature_axis]

    @property
    def param_reduction_size(self) -> int:
        """m: the values dgamma and dbeta each sum (every position a parameter is shared over)."""
        return int(np.prod(self.shape)) // int(np.prod(self.param_shape))

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32(self.name.encode()))


def _ln(name, shape, **kw) -> GradCase:
    return GradCase(name, "layer_norm", shape, (-1,), **kw)


def _bn(name, shape, **kw) -> GradCase:
    return GradCase(name, "batch_norm", shape, (1,), **kw)


def _bn_eval(name, shape, **kw) -> GradCase:
    return GradCase(name, "batch_norm_eval", shape, (1,), **kw)


def _rms(name, shape, **kw) -> GradCase:
    return GradCase(name, "rms_norm", shape, (-1,), **kw)


STATS = ("statistics_gradient",)
EVAL = ("eval_gradient",)
# Half precision: 256 positions a parameter, so dgamma/dbeta summed in float16/bfloat16 drift off
# (partial sums near 128 have a spacing of 0.06 in float16, 0.5 in bfloat16).
HALF_SHAPE_LN, HALF_SHAPE_BN = (256, 8), (64, 4, 4)


def _catalog() -> list[GradCase]:
    return [
        _ln("grad_ln_float32_mixed_gamma", (6, 32), gamma="mixed", shows=STATS,
            note="gamma of mixed sign: a backward that takes |gamma| or drops its sign misses"),
        _ln("grad_ln_float64", (6, 32), dtype="float64", row="dtype", shows=STATS),
        _ln("grad_ln_float16", HALF_SHAPE_LN, dtype="float16", row="accumulation", shows=STATS),
        _ln("grad_ln_bfloat16", HALF_SHAPE_LN, dtype="bfloat16", row="accumulation", shows=STATS),
        _ln("grad_ln_offset1e4", (4, 64), loc=1e4, row="offset", shows=STATS,
            note="mean 1e4 x the std: E[x^2] - E[x]^2 in float32 loses everything"),
        _bn("grad_bn_float32", (8, 3, 2, 2), shows=STATS),
        _bn("grad_bn_float64", (8, 3, 2, 2), dtype="float64", gamma="mixed", row="dtype", shows=STATS),
        _bn("grad_bn_float16", HALF_SHAPE_BN, dtype="float16", row="accumulation", shows=STATS),
        _bn("grad_bn_bfloat16", HALF_SHAPE_BN, dtype="bfloat16", row="accumulation", shows=STATS),
        _bn("grad_bn_offset1e3", (32, 4), loc=1e3, row="offset", shows=STATS,
            note="XLA's one-pass variance made BatchNorm gradients NaN at large offsets"),
        _bn_eval("grad_bn_eval_float32", (8, 3, 2, 2), gamma="mixed", row="eval", shows=EVAL),
        _bn_eval("grad_bn_eval_bfloat16", HALF_SHAPE_BN, dtype="bfloat16", row="eval", shows=EVAL),
        *_family_cases(),
    ]


def _family_cases() -> list[GradCase]:
    """RMSNorm gradients, and the conventions that change a gradient (eps placement, the normalization
    variance): eps 0.5 beside a variance near 1 and n = 16 make each competing variant miss widely."""
    return [
        _rms("grad_rms_float32", (8, 64), eps=1e-6, gamma="mixed", shows=("rms_weight_form",),
             note="dx scales with w or 1 + w; dweight is the same for both"),
        _rms("grad_rms_eps_0.5", (6, 16), eps=0.5, shows=("rms_weight_form", "eps_placement")),
        _rms("grad_rms_bfloat16", HALF_SHAPE_LN, dtype="bfloat16", eps=1e-6, row="accumulation",
             shows=("rms_weight_form",), note="dweight sums 256 positions: a bfloat16 accumulator stalls"),
        _ln("grad_ln_eps_0.5", (6, 16), eps=0.5, shows=STATS + ("eps_placement", "norm_variance")),
        _bn("grad_bn_eps_0.5", (4, 3, 2, 2), eps=0.5, shows=STATS + ("eps_placement", "norm_variance")),
    ]


def _registry(cases) -> dict[str, GradCase]:
    out: dict[str, GradCase] = {}
    for c in cases:
        if c.name in out:
            raise ValueError(f"duplicate gradient case name {c.name!r}")
        out[c.name] = c
    return out


GRADIENT_CASES: dict[str, GradCase] = _registry(_catalog())
