"""The case catalog, as data.  Nothing here computes expected values (see generate.py); inputs are
drawn from a generator seeded with crc32 of the case name, so adding a case changes no other case.
"""
from __future__ import annotations

import dataclasses
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from normconf.golden.layouts import LAYOUTS
from normconf.golden.ragged import batch_axis
from normconf.golden.reference import LAYER_CONVENTIONS

LAYERS = ("layer_norm", "batch_norm", "batch_norm_eval", "rms_norm", "group_norm", "instance_norm",
          "instance_norm_tracked")
# layers normalizing each sample over `axes` (no feature axis, no running statistics)
PER_SAMPLE = ("layer_norm", "rms_norm")
# the layers trained over several steps (x holds the steps; x_eval follows): running statistics
STEPPED = ("batch_norm", "instance_norm_tracked")
# the layers whose statistics are per sample and group of channels (golden/reference.py grouped)
GROUPED = ("group_norm", "instance_norm", "instance_norm_tracked")
DTYPES = ("float32", "float64", "float16", "bfloat16")
DISTRIBUTIONS = ("normal", "constant", "periodic", "grid", "drift")  # grid, drift: golden/generate.py
DEFAULT_ARGUMENTS = ("eps", "momentum", "feature_axis", "groups")  # what a default probe may leave to the framework
GAMMA_SIGNS = {"positive": 1.0, "negative": -1.0, "mixed": None}
# Case fields added after fixtures were first written: stored only where not their default, so the
# fixtures of cases that do not use them stay byte for byte as they were (Case.meta)
LATER_FIELDS = {"weight_dtype": None, "gamma_scale": 1.0, "gamma_sign": "positive", "beta_scale": 1.0, "layout": "c",
                "seed_name": "", "groups": 0, "batch_sizes": ()}


@dataclass(frozen=True)
class Case:
    name: str
    layer: str                      # layer_norm | batch_norm (K steps, then eval) | batch_norm_eval
    shape: tuple[int, ...]          # one batch
    axes: tuple[int, ...]           # layer_norm: normalized axes; batch norm: (feature_axis,)
    dtype: str = "float32"
    eps: float = 1e-5
    momentum: float | None = 0.1    # PyTorch form (weight on the new batch); None: cumulative average
    steps: int = 3                  # batch_norm training steps before eval
    affine: bool = True
    layernorm_affine: str = "per_element"
    distribution: str = "normal"    # normal: loc + scale * N(0,1); constant: loc; periodic, grid, drift: long inputs
    loc: float = 0.0
    scale: float = 1.0
    shows: tuple[str, ...] = ()     # the conventions the case decides (the generator proves it); blind to the rest
    family: str = "basic"
    raw_momentum: bool = False      # hand `momentum` to the layer untranslated (momentum_form probe)
    defaults: tuple[str, ...] = ()  # arguments left to the framework's default: eps, momentum, feature_axis
    note: str = ""
    weight_dtype: str | None = None  # RMSNorm: the weight's dtype where it differs from the input's
    # issue 21, generated cases and the regressions they became (a fixture stores these only where set)
    gamma_scale: float = 1.0        # gamma times this (the catalog's gamma is uniform in [0.5, 2])
    gamma_sign: str = "positive"    # positive | negative | mixed (alternating along gamma's flat order)
    beta_scale: float = 1.0         # beta times this (the catalog's beta is N(0, 1))
    layout: str = "c"               # the memory layout x is handed in: golden/layouts.py
    seed_name: str = ""             # inputs seeded by this name instead (a saved case keeps its draw)
    groups: int = 0                 # group_norm: the number of groups (the others: 0)
    # batch_norm: each step's length of the batch axis, where it changes from step to step (golden/ragged.py)
    batch_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        problems = []
        if self.layer not in LAYERS:
            problems.append(f"layer {self.layer!r} not in {LAYERS}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} not in {DTYPES}")
        if self.weight_dtype is not None and (self.layer != "rms_norm" or self.weight_dtype not in DTYPES):
            problems.append(f"weight_dtype {self.weight_dtype!r}: an RMSNorm's, one of {DTYPES}")
        if self.distribution not in DISTRIBUTIONS:
            problems.append(f"distribution {self.distribution!r} not in {DISTRIBUTIONS}")
        for c in self.shows:
            if c not in LAYER_CONVENTIONS.get(self.layer, ()):
                problems.append(f"unknown convention {c!r} for {self.layer}")
        if self.layer == "rms_norm" and [a % len(self.shape) for a in self.axes] != [len(self.shape) - 1]:
            problems.append("RMSNorm normalizes the last axis (golden/rms_inputs.py keeps its rows off midpoints)")
        if self.layer not in PER_SAMPLE and len(self.axes) != 1:
            problems.append("batch norm takes exactly one feature axis")
        if self.gamma_sign not in GAMMA_SIGNS:
            problems.append(f"gamma_sign {self.gamma_sign!r} not in {tuple(GAMMA_SIGNS)}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout {self.layout!r} not in {tuple(LAYOUTS)}")
        if self.momentum is None and "momentum_form" in self.shows:
            problems.append("momentum None is the cumulative average: it has no momentum_form variants")
        for d in self.defaults:
            if d not in DEFAULT_ARGUMENTS:
                problems.append(f"unknown default {d!r}")
        problems += self._group_problems() + self._batch_size_problems()
        if problems:
            raise ValueError(f"case {self.name!r}: " + "; ".join(problems))

    def _group_problems(self) -> list[str]:
        if self.layer not in GROUPED:
            return ["groups is GroupNorm's"] if self.groups else []
        if len(self.axes) != 1:
            return []
        channels = self.shape[self.axes[0] % len(self.shape)] if self.axes else 0
        problems = ["axis 0 is the batch: the channel axis must be another"] if self.axes[0] % len(self.shape) == 0 else []
        if self.layer == "group_norm" and "groups" in self.defaults:
            if self.groups:
                problems.append("a default-groups probe hands no groups")
        elif self.layer == "group_norm" and (self.groups < 1 or channels % self.groups):
            problems.append(f"groups {self.groups} must divide the {channels} channels")
        if self.layer != "group_norm" and self.groups:
            problems.append("InstanceNorm has one channel a group: leave groups unset")
        return problems

    @property
    def channels(self) -> int:
        return self.shape[self.axes[0] % len(self.shape)]

    def _batch_size_problems(self) -> list[str]:
        if not self.batch_sizes:
            return []
        if self.layer != "batch_norm" or len(self.batch_sizes) != self.steps:
            return [f"batch_sizes {list(self.batch_sizes)}: a batch_norm case's, one per step ({self.steps})"]
        if len(set(self.batch_sizes)) < 2 or min(self.batch_sizes) < 1:
            return [f"batch_sizes {list(self.batch_sizes)}: positive, and not all equal (else leave it out)"]
        return []

    @property
    def reduction_size(self) -> int:
        """Values per normalized group; with batch sizes that change, the smallest batch's (x_eval has the
        case's shape): the tolerance is derived for the least-averaged statistics."""
        nd = len(self.shape)
        if self.layer in GROUPED:  # one sample's group (an instance: one channel)
            # a default-groups probe: the largest group it considers (one group), whose tolerance is widest
            return int(np.prod(self.shape[1:])) // (max(self.groups, 1) if self.layer == "group_norm" else self.channels)
        if self.layer in PER_SAMPLE:
            return int(np.prod([self.shape[a % nd] for a in self.axes]))
        n = int(np.prod(self.shape)) // self.shape[self.axes[0] % nd]
        if self.batch_sizes:
            return min(n, n // self.shape[batch_axis(self.shape, self.axes[0])] * min(self.batch_sizes))
        return n

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32((self.seed_name or self.name).encode()))

    def meta(self) -> dict:
        """The case as a fixture stores it: the fields of LATER_FIELDS only where they differ from their
        default, so adding them left every committed fixture's bytes as they were."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}


def _registry(cases) -> dict[str, Case]:
    out: dict[str, Case] = {}
    for c in cases:
        if c.name in out:
            raise ValueError(f"duplicate case name {c.name!r}")
        out[c.name] = c
    return out


def _ln(name, shape, axes, **kw) -> Case:
    return Case(name=name, layer="layer_norm", shape=shape, axes=axes, **kw)


def _bn(name, shape, feature_axis, **kw) -> Case:
    return Case(name=name, layer="batch_norm", shape=shape, axes=(feature_axis,), **kw)


# What cases show (the generator refuses a declaration it cannot prove; see golden/generate.py).
NV = ("norm_variance",)
EPS = ("eps_placement",)
# A BatchNorm training run with momentum strictly between 0 and 1 (and not 0.5) shows all of these.
BN = ("norm_variance", "running_variance", "momentum_form", "initial_running_stats", "eval_statistics",
      "training_statistics")
# With momentum 1 the running statistics are the last batch's: the initial ones are gone, and the
# batch's normalization cannot be told from the running one's.
BN_MOMENTUM_1 = ("running_variance", "momentum_form", "eval_statistics")


def _catalog() -> list[Case]:
    cases = [
        # --- the seeds' setups (../shared/seeds) ---
        _bn("seed000_bn2d_5x3x2x2", (5, 3, 2, 2), 1, affine=False, steps=4, family="seed",
            shows=BN, note="seed 000: BatchNorm2d, N in training, N-1 in running_var"),
        _ln("seed000_ln_3x2x2", (5, 3, 2, 2), (1, 2, 3), affine=False, family="seed", shows=NV),
        _ln("seed001_ln_16x768", (16, 768), (1,), family="seed", shows=NV,
            note="seed 001: torch.var defaults to N-1 and disagrees with LayerNorm"),
        _bn("seed002_bn1d_8x3", (8, 3), 1, affine=False, family="seed", shows=BN),
        _ln("seed002_ln_8x3", (8, 3), (1,), affine=False, family="seed", shows=NV),
        _bn("seed003_bn_3x4", (3, 4), 1, family="seed", shows=BN),
        _ln("seed003_ln_3x4", (3, 4), (1,), family="seed", shows=NV),
        _bn("seed003_bn2d_2x2x2x3", (2, 2, 2, 3), 1, family="seed", shows=BN),
        _ln("seed003_ln_chw_2x2x2x3", (2, 2, 2, 3), (1, 2, 3), family="seed", shows=NV,
            note="per-element affine over [C,H,W]"),
        _bn("seed003_bn_tokens_2x3x4", (2, 3, 4), -1, family="seed", shows=BN,
            note="BatchNorm over (N,S) of (N,S,H): feature axis last, no transpose"),
        _ln("seed003_ln_tokens_2x3x4", (2, 3, 4), (2,), family="seed", shows=NV),
        _bn("seed004_bn_offset100", (16, 4), 1, loc=100.0, scale=10.0, family="seed", shows=BN),
        _ln("seed004_ln_offset100", (8, 32), (1,), loc=100.0, scale=10.0, family="seed", shows=NV),
        # --- layouts: BatchNorm 1d/2d/3d channels first and last; LayerNorm over 1-3 axes ---
        _bn("bn1d_nc", (8, 4), 1, family="layout", shows=BN),
        _bn("bn1d_ncl", (4, 3, 5), 1, family="layout", shows=BN),
        _bn("bn1d_nlc", (4, 5, 3), -1, family="layout", shows=BN),
        _bn("bn2d_nchw", (2, 3, 4, 5), 1, family="layout", shows=BN),
        _bn("bn2d_nhwc", (2, 4, 5, 3), -1, family="layout", shows=BN),
        _bn("bn3d_ncdhw", (2, 3, 2, 3, 4), 1, family="layout", shows=BN),
        _bn("bn3d_ndhwc", (2, 2, 3, 4, 3), -1, family="layout", shows=BN),
        _ln("ln_last1", (4, 6, 10), (2,), family="layout", shows=NV),
        _ln("ln_last2", (4, 6, 10), (1, 2), family="layout", shows=NV),
        _ln("ln_last3", (3, 4, 5, 6), (1, 2, 3), family="layout", shows=NV),
        _ln("ln_noncontiguous_1_3", (2, 3, 4, 5), (1, 3), family="layout", shows=NV,
            note="Keras axis=[1,3], Flax reduction_axes=(1,3); PyTorch cannot express it"),
        _ln("ln_affine_per_feature", (2, 3, 4, 5), (1, 2, 3), layernorm_affine="per_feature_axis",
            family="layout", shows=NV, note="Flax feature_axes=-1 with reduction_axes=(1,2,3)"),
        # --- affine off and on, eps, momenta ---
        _ln("ln_no_affine", (6, 12), (1,), affine=False, family="affine", shows=NV),
        _bn("bn_no_affine", (10, 4), 1, affine=False, family="affine", shows=BN),
        _ln("ln_eps_1e-3", (6, 12), (1,), eps=1e-3, family="eps", shows=NV + EPS),
        _ln("ln_eps_1e-6", (6, 12), (1,), eps=1e-6, family="eps", shows=NV),
        _ln("ln_eps_0.5", (6, 12), (1,), eps=0.5, family="eps", shows=NV + EPS),
        _bn("bn_eps_1e-3", (10, 4), 1, eps=1e-3, family="eps", shows=BN + EPS),
        _bn("bn_eps_1e-6", (10, 4), 1, eps=1e-6, family="eps", shows=BN),
        _bn("bn_eps_0.5", (10, 4), 1, eps=0.5, family="eps", shows=BN + EPS),
        _bn("bn_momentum_0.5", (10, 4), 1, momentum=0.5, family="momentum", shows=("norm_variance", "running_variance", "initial_running_stats", "eval_statistics", "training_statistics")),
        _bn("bn_momentum_0.0", (10, 4), 1, momentum=0.0, family="momentum", shows=("momentum_form", "eval_statistics"),
            note="momentum 0 keeps the initial (0, 1): the running variance convention cannot show"),
        _bn("bn_momentum_1.0", (10, 4), 1, momentum=1.0, family="momentum", shows=BN_MOMENTUM_1),
        _bn("bn_cumulative", (10, 4), 1, momentum=None, steps=4, family="momentum", shows=("norm_variance", "running_variance", "eval_statistics", "training_statistics"),
            note="PyTorch momentum=None: running = mean of the batch statistics so far"),
        # --- convention probes ---
        _bn("probe_momentum_form", (10, 4), 1, momentum=0.1, raw_momentum=True, family="probe",
            shows=BN,
            note="0.1 handed to the layer untranslated: weight on new gives 0.1, on old 0.9"),
        _bn("probe_initial_running_stats", (10, 4), 1, momentum=0.1, family="probe",
            shows=BN),
        Case("probe_eval_statistics", "batch_norm_eval", (10, 4), (1,), family="probe",
             shows=("eval_statistics",), note="running statistics given far from the batch's"),
        # --- default probes: one argument left to the framework each, measured (judge/measure.py) ---
        _ln("probe_default_eps_ln", (6, 16), (1,), scale=1e-2, affine=False, defaults=("eps",), family="defaults",
            note="std 1e-2: the output measures eps from about 1e-8 to 1e-1"),
        _bn("probe_default_eps_bn", (12, 4), 1, scale=1e-3, affine=False, defaults=("eps",), steps=2,
            family="defaults", note="std 1e-3: the training output measures eps; momentum given"),
        _bn("probe_default_feature_axis", (6, 3, 5), 1, affine=False, defaults=("feature_axis",), steps=2,
            family="defaults", shows=BN,
            note="(6, 3, 5) with no axis argument: every axis has its own size, so its statistics name it"),
        _bn("probe_default_momentum_bn", (12, 4), 1, loc=1.0, affine=False, defaults=("momentum",), steps=3,
            family="defaults", shows=("norm_variance", "running_variance", "initial_running_stats",
                                      "eval_statistics", "training_statistics"),
            note="channel means near 1 (well off 0, yet no large-mean stress): the first running-mean updates "
                 "measure the weight on the new batch"),
        # --- stress ---
        _ln("stress_ln_offset_1e2", (8, 64), (1,), loc=1e2, family="stress", shows=NV),
        _ln("stress_ln_offset_1e3", (8, 64), (1,), loc=1e3, family="stress", shows=NV),
        _ln("stress_ln_offset_1e4", (8, 64), (1,), loc=1e4, family="stress"),
        _bn("stress_bn_offset_1e2", (32, 4), 1, loc=1e2, family="stress", shows=BN),
        _bn("stress_bn_offset_1e3", (32, 4), 1, loc=1e3, family="stress", shows=BN),
        _bn("stress_bn_offset_1e3_nchw", (2, 3, 4, 5), 1, loc=1e3, family="stress", shows=BN,
            note="BatchNorm2d at mean offset 1e3 x std, in bn2d_nchw's shape (no new compilation): the porting "
                 "guide's cost case, followed by hand (tests/self/test_honest_readings.py)"),
        _bn("stress_bn_offset_1e4", (8, 4), 1, loc=1e4, momentum=1.0, family="stress", shows=BN_MOMENTUM_1,
            note="momentum 1: the running variance is the last batch's, N/(N-1) visible above the offset"),
        _ln("stress_ln_tiny_scale", (6, 16), (1,), scale=1e-4, family="stress", shows=EPS,
            note="std 1e-4 < sqrt(eps): eps dominates"),
        _bn("stress_bn_tiny_scale", (16, 4), 1, scale=1e-4, family="stress", shows=EPS + ("eval_statistics", "training_statistics")),
        _ln("stress_ln_constant", (4, 16), (1,), distribution="constant", loc=3.0, family="stress",
            note="zero variance: output is beta"),
        _bn("stress_bn_constant", (8, 4), 1, distribution="constant", loc=-2.0, family="stress",
            shows=("eval_statistics", "training_statistics")),
        _bn("stress_bn_one_value_per_channel", (1, 4), 1, family="one_value_per_channel", shows=("running_variance",),
            steps=1, note="N-1 = 0: the unbiased running variance is 0/0"),
        _bn("stress_bn_one_value_per_channel_2d", (1, 3, 1, 1), 1, family="one_value_per_channel",
            steps=1, affine=False, shows=("running_variance",)),
        _ln("stress_ln_long_100000", (2, 100000), (1,), distribution="periodic", family="long", affine=False,
            note="N/(N-1) is 1 + 1e-5 here: no convention can show, accuracy only"),
        _bn("stress_bn_long_100000", (100000, 2), 1, distribution="periodic", steps=1, family="long",
            affine=False, shows=("eval_statistics", "training_statistics")),
    ]
    # --- dtypes: float64, float16 and bfloat16 (float32 is every other case) ---
    for dtype in ("float64", "float16", "bfloat16"):
        cases.append(_ln(f"dtype_ln_{dtype}", (8, 48), (1,), dtype=dtype, family="dtype",
                         shows=NV + EPS if dtype == "float64" else ()))
        # half precision needs N/(N-1) large and undiluted (the running buffers round on every step,
        # golden/tolerance.py): 4 values a channel, momentum 1
        low = {"momentum": 1.0} if dtype in ("float16", "bfloat16") else {}
        shows = BN_MOMENTUM_1 if low else BN + EPS if dtype == "float64" else BN
        cases.append(_bn(f"dtype_bn_{dtype}", (4, 4) if low else (8, 4), 1, dtype=dtype, family="dtype",
                         shows=shows, **low))
        cases.append(_bn(f"dtype_bn2d_{dtype}", (2, 3, 2, 1) if low else (4, 3, 2, 2), 1, dtype=dtype,
                         family="dtype", shows=shows, **low))
    for dtype in ("float16", "bfloat16"):  # long enough that low-precision partial sums stop absorbing terms
        cases.append(_ln(f"dtype_ln_{dtype}_long", (4, 4096), (1,), dtype=dtype, family="dtype", affine=False))
    return cases


def _sensitivity_cases() -> list[Case]:
    """Cases aimed at bug classes the catalog above cannot reach (issue 13); each names what it catches.
    What they show is proven like every case's (golden/generate.py)."""
    half = ("float16", "bfloat16")
    return [
        # --- long reductions, non-periodic: block-merged statistics (unweighted block means, a Welford/Chan
        # merge without its correction term, a dropped remainder block) differ from the exact ones ---
        _ln("long_ln_grid_100000", (1, 100000), (1,), distribution="grid", affine=False, family="long",
            note="N(0,1) on a 1/16 grid, no period: block means and variances differ from block to block"),
        _ln("long_ln_drift_100000", (1, 100000), (1,), distribution="drift", affine=False, family="long",
            note="N(0,1) plus a ramp of 2 std: unweighted block means miss the true mean"),
        _bn("long_bn_grid_100000", (100000, 1), 1, distribution="grid", steps=1, affine=False, family="long"),
        _bn("long_bn_drift_100000", (100000, 1), 1, distribution="drift", steps=1, affine=False, family="long"),
        # --- float16/bfloat16 with a mean offset 100x the std: a mean or an affine epilogue kept in the
        # input dtype costs u_out * 100; LayerNorm is charged at float32 precision (golden/tolerance.py) ---
        *[_ln(f"dtype_ln_{d}_offset100", (8, 64), (1,), dtype=d, loc=100.0, family="dtype") for d in half],
        *[_bn(f"dtype_bn_{d}_offset100", (4, 4), 1, dtype=d, loc=100.0, momentum=1.0, family="dtype",
              shows=("running_variance", "momentum_form"),
              note="as dtype_bn_float16: 4 values a channel and momentum 1, so the running variance shows")
          for d in half],
        # --- float16/bfloat16 with scale 1000: (x - mean)^2 ~ 1e6 overflows float16 (max 65504), so squares
        # or a variance rounded to the input dtype show; the running variance must still fit (momentum 0.01) ---
        *[_ln(f"dtype_ln_{d}_scale1000", (8, 64), (1,), dtype=d, scale=1000.0, family="dtype") for d in half],
        _bn("dtype_bn_float16_scale1000", (16, 4), 1, dtype="float16", scale=1000.0, momentum=0.01, steps=2,
            family="dtype", shows=("running_variance", "eval_statistics"), note="running variance ~2e4 fits float16; the batch variance ~1e6 does not"),
        _bn("dtype_bn_bfloat16_scale1000", (4, 4), 1, dtype="bfloat16", scale=1000.0, momentum=1.0, family="dtype",
            shows=BN_MOMENTUM_1, note="4 values a channel and momentum 1, as dtype_bn_bfloat16"),
        # --- many training steps: anything that goes wrong from the 5th update on ---
        _bn("bn_steps_10", (8, 4), 1, steps=10, loc=0.5, scale=2.0, family="momentum", shows=BN),
        _bn("bn_cumulative_steps_8", (8, 4), 1, momentum=None, steps=8, loc=0.5, scale=2.0, family="momentum",
            shows=("norm_variance", "running_variance", "eval_statistics", "training_statistics"), note="PyTorch momentum=None over 8 steps"),
        # --- batch sizes that change from step to step (golden/ragged.py): N/(N-1) is each step's own, and
        # the cumulative average weighs steps equally whatever their size (three batch shapes at most: JAX
        # compiles once per shape) ---
        _bn("bn_steps_ragged", (6, 3), 1, steps=3, batch_sizes=(2, 6, 3), loc=0.5, scale=2.0, family="ragged",
            shows=BN, note="batch sizes 2, 6, 3: an unbiased factor taken from one batch misses the others"),
        _bn("bn_cumulative_ragged", (8, 3), 1, momentum=None, steps=3, batch_sizes=(2, 8, 2), loc=0.5, scale=2.0,
            family="ragged", shows=("norm_variance", "running_variance", "eval_statistics", "training_statistics"),
            note="PyTorch momentum=None with batch sizes 2, 8, 2: an equal-weight average of the steps' statistics"),
        # --- axis sizes: N, C, H, W all different, and the same layers with H = 1 and with W = 1; 2-D
        # LayerNorm with more rows than columns and with more columns than rows ---
        _bn("bn2d_sizes_5x3x6x4", (5, 3, 6, 4), 1, family="layout", shows=BN),
        _bn("bn2d_sizes_h1_5x3x1x4", (5, 3, 1, 4), 1, family="layout", shows=BN),
        _bn("bn2d_sizes_w1_5x3x6x1", (5, 3, 6, 1), 1, family="layout", shows=BN),
        _bn("bn2d_nhwc_sizes_5x6x4x3", (5, 6, 4, 3), -1, family="layout", shows=BN),
        _ln("ln_chw_sizes_5x3x6x4", (5, 3, 6, 4), (1, 2, 3), family="layout", shows=NV),
        _ln("ln_chw_sizes_h1_5x3x1x4", (5, 3, 1, 4), (1, 2, 3), family="layout", shows=NV),
        _ln("ln_chw_sizes_w1_5x3x6x1", (5, 3, 6, 1), (1, 2, 3), family="layout", shows=NV),
        _ln("ln2d_tall_64x6", (64, 6), (1,), family="layout", shows=NV),
        _ln("ln2d_wide_6x64", (6, 64), (1,), family="layout", shows=NV),
    ]


def _rms(name, shape, **kw) -> Case:
    """RMSNorm over the last axis (every framework's RMSNorm normalizes trailing axes)."""
    return Case(name=name, layer="rms_norm", shape=shape, axes=(-1,), family="rms", **kw)


RMS_HALF = ("rms_weight_form", "rms_casting", "rms_statistic")


def _rms_cases() -> list[Case]:
    """RMSNorm (issue 22).  float16/bfloat16 inputs are kept away from rounding midpoints
    (golden/rms_inputs.py), so the casting styles are told apart at float32's tolerance."""
    return [
        _rms("rms_8x64", (8, 64), eps=1e-6, shows=("rms_weight_form", "rms_statistic")),
        _rms("rms_mean_offset", (4, 32), loc=1.0, eps=1e-6, shows=("rms_weight_form", "rms_statistic"),
             note="mean 1, std 1: the mean square is 2, the variance 1 (keras rms_scaling=True)"),
        _rms("rms_eps_0.5", (6, 16), eps=0.5, shows=("eps_placement", "rms_weight_form", "rms_statistic")),
        *[_rms(f"rms_{d}", (4, 64), dtype=d, eps=1e-6, shows=RMS_HALF,
               note="casting style: each pair of styles differs by a unit of the dtype somewhere") for d in
          ("bfloat16", "float16")],
        _rms("rms_bfloat16_weight_float32", (4, 64), dtype="bfloat16", weight_dtype="float32", eps=1e-6,
             shows=RMS_HALF + ("rms_output_dtype",),
             note="bfloat16 activations, float32 weight (mixed precision): which dtype comes out, and its casts"),
        _rms("rms_tokens_2x3x32", (2, 3, 32), dtype="bfloat16", eps=1e-5, shows=RMS_HALF,
             note="(batch, sequence, hidden), as language models call it"),
        # default eps: x of RMS ~ 1e-3 (float32: ms 1e-6 measures eps from ~1e-9 to ~1e-3), ~ 3e-4 in
        # bfloat16 (ms 1e-7: float32's 1.2e-7 and 1e-6 show; bfloat16's own 7.8e-3 only roughly), 1e-3 in float16
        _rms("rms_probe_default_eps", (6, 32), scale=1e-3, affine=False, defaults=("eps",),
             note="torch eps=None: finfo of the computing dtype"),
        _rms("rms_probe_default_eps_bfloat16", (6, 32), dtype="bfloat16", scale=3e-4, affine=False,
             defaults=("eps",)),
        _rms("rms_probe_default_eps_float16", (6, 32), dtype="float16", scale=1e-3, affine=False,
             defaults=("eps",)),
    ]




REGRESSIONS = "regressions.json"  # beside the fixtures: generated cases saved as catalog cases


def regressions_file() -> Path:
    """$NORMCONF_GOLDEN_DIR/regressions.json, else the package's data/ (as golden/fixtures.golden_dir)."""
    return Path(os.environ.get("NORMCONF_GOLDEN_DIR") or Path(__file__).resolve().parent / "data") / REGRESSIONS


def regression_case(name: str, entry: dict) -> Case:
    """A generated case saved under `name` (`normconf generated ADAPTER SPEC --save NAME`): its specification,
    its inputs seeded by the generated name it was found under, so the saved case is the case found."""
    spec = entry["spec"]
    return Case(name=name, family="generated", seed_name=entry["seed_name"], note=f"saved from {entry['seed_name']}",
                **dict(spec, shape=tuple(spec["shape"]), axes=tuple(spec["axes"])))


def _regression_cases() -> list[Case]:
    path = regressions_file()
    if not path.is_file():
        return []
    return [regression_case(name, entry) for name, entry in sorted(json.loads(path.read_text()).items())]


def _gn(name, shape, channel_axis, groups, **kw) -> Case:
    return Case(name=name, layer="group_norm", shape=shape, axes=(channel_axis,), groups=groups, family=kw.pop("family", "group"), **kw)


def _in(name, shape, channel_axis, tracked=False, **kw) -> Case:
    layer = "instance_norm_tracked" if tracked else "instance_norm"
    return Case(name=name, layer=layer, shape=shape, axes=(channel_axis,), family=kw.pop("family", "instance"), **kw)


GN = ("norm_variance", "group_mapping")
IN_TRACKED = ("norm_variance", "running_variance", "momentum_form", "instance_eval_statistics")


def _group_cases() -> list[Case]:
    """GroupNorm and InstanceNorm (issue 22): layouts channels first and last, eps, the mapping of
    channels to groups, running statistics over steps, and the default probes (which run without
    affine parameters: the no-affine path, without a case of its own, to keep the main job fast)."""
    return [
        _gn("gn2d_nchw_6c_3g", (2, 6, 3, 4), 1, 3, shows=GN),
        _gn("gn2d_nhwc_6c_2g", (2, 3, 4, 6), -1, 2, shows=GN,
            note="channels last: groups must be taken along the last axis"),
        _gn("gn1d_ncl_8c_4g", (3, 8, 5), 1, 4, shows=GN),
        _gn("gn_groups_1", (3, 4, 5), 1, 1, shows=NV, note="one group: LayerNorm over (C, L), per-channel affine"),
        _gn("gn_eps_0.5", (2, 6, 5), 1, 3, eps=0.5, shows=GN + EPS),
        _gn("probe_default_eps_gn", (2, 8, 6), 1, 2, scale=1e-2, affine=False, defaults=("eps",), family="defaults",
            note="std 1e-2: the output measures eps from about 1e-8 to 1e-1"),
        _gn("probe_default_channel_axis_gn", (2, 6, 4, 10), 1, 2, affine=False, defaults=("feature_axis",),
            family="defaults", note="no channel axis given: axes 1-3 have their own sizes (6, 4, 10), so the "
                                    "statistics name the axis the layer takes for the channels"),
        Case("probe_default_groups_gn", "group_norm", (2, 3, 64), (-1,), affine=False, defaults=("groups",),
             family="defaults", note="64 channels, no group count: the outputs name it among the divisors of 64"),
        _in("in2d_nchw", (2, 3, 4, 5), 1, shows=NV),
        _in("in1d_nlc", (3, 6, 4), -1, shows=NV, note="channels last"),
        _in("in_eps_0.5", (2, 3, 8), 1, eps=0.5, shows=NV + EPS),
        _in("probe_default_eps_in", (2, 4, 12), 1, scale=1e-2, affine=False, defaults=("eps",), family="defaults"),
        _in("stress_in_one_value_per_instance", (2, 3, 1), 1, family="stress",
            note="one value an instance: the variance is 0 and the output beta (torch raises, documented)"),
        _gn("stress_gn_offset_1e3", (4, 8, 16), 1, 2, loc=1e3, family="stress",
            note="mean 1e3 x the std: E[x^2] - E[x]^2 in float32 loses it (accuracy only, like stress_ln_offset_1e4)"),
        _in("in_tracked_2d", (2, 3, 4, 5), 1, tracked=True, steps=3, shows=IN_TRACKED,
            note="torch track_running_stats=True: running statistics from the means over samples"),
        _in("in_tracked_nlc", (3, 5, 4), -1, tracked=True, steps=3, shows=IN_TRACKED),
    ]


CASES: dict[str, Case] = _registry(_catalog() + _sensitivity_cases() + _rms_cases() + _group_cases()
                                   + _regression_cases())

