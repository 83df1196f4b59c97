"""Compute one case's fixture: inputs in the case's dtype, parameters, and the expected outputs of every
combination of its conventions' variants, refusing a case whose variants are not decisively apart."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from golden import reference as ref
from golden.cases import VARIANTS, Case
from golden.tolerance import DECISIVENESS_MARGIN, scaled_error, tolerances

NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
                "bfloat16": ml_dtypes.bfloat16}
PERIOD = 997  # periodic long inputs repeat every PERIOD values so the fixture compresses
# grid and drift inputs: N(0,1) rounded to multiples of 1/GRID, no period (so block-merged statistics
# differ from block to block), yet few distinct values (so inputs and outputs compress); drift adds a
# ramp from 0 to DRIFT standard deviations over the flattened input (block means then differ a lot).
GRID = 256
DRIFT = 2.0


class NotDecisive(ValueError):
    pass


@dataclass
class Fixture:
    case: Case
    inputs: dict[str, np.ndarray]            # in the case's dtype
    variants: list[dict[str, str]]           # one profile per combination
    expected: list[dict[str, np.ndarray]]    # float64, one dict of compared outputs per combination
    intermediates: list[dict[str, np.ndarray]]
    tolerance: float                         # the largest of `tolerances` (what the verdict uses today)
    decisiveness_margin: float | None        # None when the case holds a single variant
    tolerances: dict[str, float]             # output name -> tolerance (golden/tolerance.py)


def _draw(case: Case, rng: np.random.Generator, shape) -> np.ndarray:
    if case.distribution == "constant":
        return np.full(shape, case.loc)
    if case.distribution == "periodic":
        block = rng.standard_normal(PERIOD)
        flat = np.resize(block, int(np.prod(shape)))
        return case.loc + case.scale * flat.reshape(shape)
    if case.distribution in ("grid", "drift"):
        z = rng.standard_normal(int(np.prod(shape)))
        if case.distribution == "drift":
            z = z + np.linspace(0.0, DRIFT, z.size)
        return case.loc + case.scale * (np.round(z * GRID) / GRID).reshape(shape)
    return case.loc + case.scale * rng.standard_normal(shape)


def param_shape(case: Case) -> tuple[int, ...]:
    """Shape of gamma/beta as the layer holds them."""
    nd = len(case.shape)
    if case.layer != "layer_norm":
        return (case.shape[case.axes[0] % nd],)
    if case.layernorm_affine == "per_feature_axis":
        return (case.shape[-1],)
    return tuple(case.shape[a % nd] for a in sorted(a % nd for a in case.axes))


def make_inputs(case: Case) -> dict[str, np.ndarray]:
    rng = case.rng()
    dt = NUMPY_DTYPES[case.dtype]
    out = {}
    if case.layer == "batch_norm":
        out["x"] = _draw(case, rng, (case.steps, *case.shape)).astype(dt)
        out["x_eval"] = _draw(case, rng, case.shape).astype(dt)
    else:
        out["x"] = _draw(case, rng, case.shape).astype(dt)
    if case.affine:
        out["gamma"] = rng.uniform(0.5, 2.0, param_shape(case)).astype(dt)
        out["beta"] = rng.normal(0.0, 1.0, param_shape(case)).astype(dt)
    if case.layer == "batch_norm_eval":
        c = param_shape(case)[0]
        out["running_mean"] = (case.loc + case.scale * rng.uniform(1.0, 2.0, c)).astype(dt)
        out["running_var"] = (case.scale ** 2 * rng.uniform(2.0, 4.0, c)).astype(dt)
    return out


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _ln_params(case: Case, inputs):
    """gamma/beta reshaped to broadcast against the input, as the reference takes them."""
    if not case.affine:
        return None, None
    shape = ref.affine_shape(case.shape, case.axes, case.layernorm_affine)
    return _f64(inputs["gamma"]).reshape(shape), _f64(inputs["beta"]).reshape(shape)


def expected_for(case: Case, inputs, profile: dict[str, str]):
    """(compared outputs, intermediates) of one variant combination, in float64."""
    conv = {k: v for k, v in profile.items() if k in ref.CONVENTIONS}
    eps = float(profile["default_eps"]) if "default_eps" in profile else case.eps
    momentum = float(profile["default_momentum"]) if "default_momentum" in profile else case.momentum
    feature_axis = int(profile["default_feature_axis"]) if "default_feature_axis" in profile else case.axes[0]
    x = _f64(inputs["x"])
    gamma, beta = _f64(inputs.get("gamma")), _f64(inputs.get("beta"))
    if case.layer == "layer_norm":
        g, b = _ln_params(case, inputs)
        out = ref.layer_norm(x, case.axes, g, b, eps, norm_variance=conv.get("norm_variance", "biased"),
                             eps_placement=conv.get("eps_placement", "inside_sqrt"))
        return {"y": out.y}, {"mean": out.mean, "inv_std": out.inv_std}
    if case.layer == "batch_norm_eval":
        if conv.get("eval_statistics", "running") == "batch":
            out = ref.batch_norm_train(x, feature_axis, gamma, beta, eps)
        else:
            out = ref.batch_norm_eval(x, feature_axis, _f64(inputs["running_mean"]),
                                      _f64(inputs["running_var"]), gamma, beta, eps)
        return {"y": out.y}, {"mean": out.mean, "inv_std": out.inv_std}
    if momentum is None:
        conv["momentum_form"] = "cumulative_average"
    elif not case.raw_momentum:
        conv["momentum_form"] = "weight_on_new"  # the adapter translates PyTorch form to its own
    run = ref.batch_norm_steps(list(x), _f64(inputs["x_eval"]), feature_axis, gamma, beta, eps,
                               momentum, conv)
    return ({"y_train": run.y_train, "running_mean": run.running_mean, "running_var": run.running_var,
             "y_eval": run.y_eval}, {})


def conditioning(case: Case, inputs) -> float:
    """max over normalized groups of |mean| / sqrt(var + eps), from the stored input in float64: the
    factor by which the output amplifies a centring error of u * |mean| (see golden/tolerance.py).
    For a default probe the smallest eps probed is used."""
    eps = min(float(v) for v in VARIANTS["default_eps"]) if "eps" in case.defaults else case.eps
    x = _f64(inputs["x"])
    feature_axes = {case.axes[0]}
    if "feature_axis" in case.defaults:
        feature_axes |= {int(v) for v in VARIANTS["default_feature_axis"]}
    if case.layer == "layer_norm":
        groups = [(x, ref.normalize_axes(case.axes, x.ndim))]
    elif case.layer == "batch_norm":
        groups = [(b, ref.batch_axes(b.ndim, f)) for b in list(x) + [_f64(inputs["x_eval"])] for f in feature_axes]
    else:
        groups = [(x, ref.batch_axes(x.ndim, f)) for f in feature_axes]
    worst = 0.0
    for data, axes in groups:
        mean = data.mean(axis=axes)
        var = data.var(axis=axes)
        worst = max(worst, float(np.max(np.abs(mean) / np.sqrt(var + eps))))
    if case.layer == "batch_norm_eval":  # eval centres with the given running mean
        rm, rv = _f64(inputs["running_mean"]), _f64(inputs["running_var"])
        worst = max(worst, float(np.max(np.abs(rm) / np.sqrt(rv + eps))))
    return worst


def build_fixture(case: Case) -> Fixture:
    inputs = make_inputs(case)
    combos = [dict(zip(case.conventions, vs)) for vs in
              itertools.product(*(VARIANTS[c] for c in case.conventions))]
    expected, intermediates = [], []
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is the formula's answer for N-1 = 0
        for profile in combos:
            e, i = expected_for(case, inputs, profile)
            expected.append(e)
            intermediates.append(i)
    tols = output_tolerances(case, inputs, expected)
    tol = max(tols.values())
    margin = decisiveness(case, combos, expected, tol)
    with np.errstate(divide="ignore", invalid="ignore"):
        check_hidden_conventions(case, inputs, combos[0], expected[0], tol)
    return Fixture(case, inputs, combos, expected, intermediates, tol, margin, tols)


def output_tolerances(case: Case, inputs, expected: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Output name -> tolerance: what golden/tolerance.py needs to know about the case, gathered here.
    A BatchNorm's buffers are charged for the weights its variants can show and for the eval offset
    max |running_mean| / sqrt(running_var + eps) of any variant after the last step."""
    offset = conditioning(case, inputs)
    if case.layer != "batch_norm":
        return tolerances(case.dtype, case.reduction_size, offset, layer=case.layer)
    if case.momentum is None:
        weights = (None,)
    elif "momentum" in case.defaults:
        weights = tuple(float(v) for v in VARIANTS["default_momentum"])
    else:
        weights = (case.momentum, 1.0 - case.momentum) if case.raw_momentum else (case.momentum,)
    eps = min(float(v) for v in VARIANTS["default_eps"]) if "eps" in case.defaults else case.eps
    with np.errstate(divide="ignore", invalid="ignore"):
        eval_offset = max(float(np.nanmax(np.abs(e["running_mean"][-1]) / np.sqrt(e["running_var"][-1] + eps),
                                          initial=0.0)) for e in expected)
    return tolerances(case.dtype, case.reduction_size, offset, layer=case.layer, steps=case.steps,
                      weights=weights, eval_offset=eval_offset)


# Conventions on which the frameworks' documentation differs.  A case that does not list one must be
# blind to it (its variants within NEGLIGIBLE tolerances), or some framework would fail a case for
# following its own documentation, or pass one by luck.
FRAMEWORKS_DIFFER = {"batch_norm": ("running_variance",)}
NEGLIGIBLE = 0.1


def check_hidden_conventions(case: Case, inputs, profile, expected, tol: float) -> None:
    for convention in FRAMEWORKS_DIFFER.get(case.layer, ()):
        if convention in case.conventions:
            continue
        for variant in VARIANTS[convention][1:]:
            other, _ = expected_for(case, inputs, {**profile, convention: variant})
            seen = distance(expected, other) / tol
            if seen > NEGLIGIBLE:
                raise NotDecisive(f"case {case.name!r}: {convention}={variant} moves the outputs by {seen:.3g} "
                                  f"tolerances but the case does not list {convention}: list it (and make it "
                                  f"decisive) or make it negligible (< {NEGLIGIBLE} tolerances)")


def distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """How far apart two variants' outputs are, in scaled-error units (the worst output decides)."""
    return max(scaled_error(a[k], b[k]) for k in a)


def decisiveness(case: Case, combos, expected, tol: float) -> float | None:
    if len(combos) < 2:
        return None
    worst, worst_pair = float("inf"), None
    for i, j in itertools.combinations(range(len(combos)), 2):
        margin = distance(expected[i], expected[j]) / tol
        if margin < worst:
            worst, worst_pair = margin, (combos[i], combos[j])
    if worst < DECISIVENESS_MARGIN:
        raise NotDecisive(f"case {case.name!r}: variants {worst_pair[0]} and {worst_pair[1]} are only "
                          f"{worst:.3g} tolerances apart (need >= {DECISIVENESS_MARGIN:g})")
    return worst
