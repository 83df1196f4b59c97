"""Compute one case's fixture: inputs in the case's dtype, parameters, the expected outputs of the
documented profiles (the oracle the fixture stores), and the proof that the case shows what it declares:
over every combination of convention variants (golden/candidates.py), the outputs that fit a profile
agree on each declared convention, or differ only where it cannot move them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normconf.golden import candidates as cand
from normconf.golden import reference as ref
from normconf.golden.bfloat16 import to_bfloat16
from normconf.golden.cases import GAMMA_SIGNS, GROUPED, PER_SAMPLE, STEPPED, Case
from normconf.golden.ragged import joined_shape, split_steps
from normconf.golden.rms_inputs import HALF, guarded
from normconf.golden.tolerance import DECISIVENESS_MARGIN, INERT, initial_variance_excess, output_floors, tolerances

# numpy's own casts round to nearest even; bfloat16 has the project's (golden/bfloat16.py), not ml_dtypes'
CASTS = {"float32": lambda a: a.astype(np.float32), "float64": lambda a: a.astype(np.float64),
         "float16": lambda a: a.astype(np.float16), "bfloat16": to_bfloat16}
PERIOD = 997  # periodic long inputs repeat every PERIOD values so the fixture compresses
# grid and drift inputs: N(0,1) rounded to multiples of 1/GRID, no period (so block-merged statistics
# differ from block to block), yet few distinct values (so inputs and outputs compress); drift adds a
# ramp from 0 to DRIFT standard deviations over the flattened input (block means then differ a lot).
GRID = 256
DRIFT = 2.0

# What the frameworks normconf knows document where they differ (the rest is BASE_PROFILE).  The
# fixture stores their expected outputs, and every convention a case declares must show under each.
DOCUMENTED_PROFILES = (
    {"running_variance": "unbiased", "momentum_form": "weight_on_new"},  # PyTorch
    {"running_variance": "biased", "momentum_form": "weight_on_old"},    # Keras, Flax
)
UNTRANSLATED = ("running_variance",)
# The documented defaults a default probe's fixture holds expected outputs for (momentum as the weight
# on the new batch).  The judge measures the value, whatever it is.
DEFAULT_VALUES = {"eps": (1e-5, 1e-6, 1e-3), "momentum": (0.1, 0.01), "feature_axis": (1, -1), "groups": (32,)}
# profile keys that name a measured argument, not a convention (a default probe's candidate groups)
ARGUMENT_KEYS = ("feature_axis", "groups")


def conventions_only(profile: dict) -> dict:
    return {c: v for c, v in profile.items() if c not in ARGUMENT_KEYS}


class NotDecisive(ValueError):
    pass


@dataclass
class Fixture:
    case: Case
    inputs: dict[str, np.ndarray]            # in the case's dtype
    variants: list[dict]                     # per stored expectation: {"profile", "eps", "momentum", "feature_axis"}
    expected: list[dict[str, np.ndarray]]    # float64, one dict of compared outputs per variant
    tolerances: dict[str, float]             # output name -> tolerance (golden/tolerance.py)
    conditioning: float
    decisiveness_margin: float | None        # None when the case declares no convention

    @property
    def tolerance(self) -> float:
        return max(self.tolerances.values())


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
    if case.layer not in PER_SAMPLE:
        return (case.shape[case.axes[0] % nd],)
    if case.layernorm_affine == "per_feature_axis":
        return (case.shape[-1],)
    return tuple(case.shape[a % nd] for a in sorted(a % nd for a in case.axes))


def _gamma_factor(case: Case):
    """gamma_scale with gamma_sign: -1 everywhere, or +1, -1, ... along gamma's flat order (mixed)."""
    sign = GAMMA_SIGNS[case.gamma_sign]
    if sign is None:
        shape = param_shape(case)
        sign = np.where(np.arange(int(np.prod(shape))).reshape(shape) % 2, -1.0, 1.0)
    return sign * case.gamma_scale


def make_inputs(case: Case) -> dict[str, np.ndarray]:
    rng = case.rng()
    cast = CASTS[case.dtype]
    out = {}
    if case.layer in STEPPED:
        out["x"] = cast(_draw(case, rng, joined_shape(case)))  # the batches joined (golden/ragged.py)
        out["x_eval"] = cast(_draw(case, rng, case.shape))
    else:
        out["x"] = cast(_draw(case, rng, case.shape))
    if case.affine:
        out["gamma"] = CASTS[case.weight_dtype or case.dtype](rng.uniform(0.5, 2.0, param_shape(case)) * _gamma_factor(case))
        out["beta"] = cast(rng.normal(0.0, 1.0, param_shape(case)) * case.beta_scale)
    if case.layer == "rms_norm":
        return rms_inputs(case, out, rng, cast)
    if case.layer == "batch_norm_eval":
        c = param_shape(case)[0]
        out["running_mean"] = cast(case.loc + case.scale * rng.uniform(1.0, 2.0, c))
        out["running_var"] = cast(case.scale ** 2 * rng.uniform(2.0, 4.0, c))
    return out


def rms_inputs(case: Case, out, rng, cast) -> dict[str, np.ndarray]:
    """RMSNorm holds one weight and no bias; a float16/bfloat16 input that is not a default probe is
    kept away from rounding midpoints (golden/rms_inputs.py) so its tolerance can be float32's."""
    weight = out.pop("gamma", None)
    out.pop("beta", None)
    if weight is not None:
        out["weight"] = weight
    if rms_simulated(case):
        x = guarded(lambda shape: _f64(cast(_draw(case, rng, shape))), _f64(out["x"]), _f64(weight), case.eps,
                    case.dtype, case.name)
        out["x"] = cast(x)
    return out


def rms_simulated(case: Case) -> bool:
    """An RMSNorm case whose casting styles the reference simulates to the bit (see make_inputs)."""
    return case.layer == "rms_norm" and case.dtype in HALF and not case.defaults and case.distribution == "normal"


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


@dataclass(frozen=True)
class Call:
    """One way a layer receives the case: the numbers handed to it, and the documented profiles that
    receive it so (PyTorch takes momentum m as it is, Keras and Flax are handed 1 - m)."""
    eps: float
    momentum: float | None
    feature_axis: int | None
    documented: tuple[dict, ...]
    groups: int | None = None  # GroupNorm's, where a default probe hands none


def calls(case: Case) -> list[Call]:
    eps_values = DEFAULT_VALUES["eps"] if "eps" in case.defaults else (case.eps,)
    axes = DEFAULT_VALUES["feature_axis"] if "feature_axis" in case.defaults else (None,)
    group_counts = DEFAULT_VALUES["groups"] if "groups" in case.defaults else (None,)
    torch, keras = DOCUMENTED_PROFILES
    if case.layer not in STEPPED:
        momenta = [(None, ({},))]
    elif "momentum" in case.defaults:  # measured as the weight on the new batch
        new = {"momentum_form": "weight_on_new"}
        momenta = [(w, ({**p, **new},)) for w, p in zip(DEFAULT_VALUES["momentum"], (torch, keras))]
    elif case.momentum is None:
        cumulative = {"momentum_form": "cumulative_average"}
        momenta = [(None, ({**torch, **cumulative}, {**keras, **cumulative}))]
    elif case.raw_momentum or case.momentum == 1.0 - case.momentum:
        momenta = [(case.momentum, (torch, keras))]
    else:
        momenta = [(case.momentum, (torch,)), (1.0 - case.momentum, (keras,))]
    return [Call(e, m, a, docs, g) for e in eps_values for m, docs in momenta for a in axes for g in group_counts]


def allowed_variants(case: Case, momentum) -> dict[str, tuple[str, ...]]:
    """Conventions a call pins: a None momentum is the cumulative average; a measured momentum cannot
    tell the weight on the new batch from the weight on the old."""
    if case.layer not in STEPPED:
        return {}
    if "momentum" in case.defaults:
        return {"momentum_form": ("weight_on_new", "cumulative_average")}
    if momentum is None:
        return {"momentum_form": ("cumulative_average",)}
    return {}


def candidate_set(case: Case, inputs, call: Call, tolerances: dict[str, float]):
    """Every profile under one call, with its outputs.  A default-feature-axis probe has one group of
    profiles per axis of the input (the profile names it as `feature_axis`).  The judge's calls hand
    estimators (callables) as eps or momentum where it measures a default."""
    eps, momentum = call.eps, call.momentum
    allowed = allowed_variants(case, momentum)
    if "groups" in case.defaults:
        groups = [(cand.for_case(case, inputs, eps=eps, momentum=momentum, groups=g),
                   [{**p, "groups": str(g)} for p in cand.profiles(case.layer, allowed)])
                  for g in range(1, case.channels + 1) if case.channels % g == 0]
    elif "feature_axis" not in case.defaults:
        groups = [(cand.for_case(case, inputs, eps=eps, momentum=momentum), cand.profiles(case.layer, allowed))]
    else:
        ndim = len(case.shape)
        groups = [(cand.for_case(case, inputs, eps=eps, momentum=momentum, feature_axis=a),
                   [{**p, "feature_axis": axis_name(a, ndim)} for p in cand.profiles(case.layer, allowed)])
                  for a in probe_axes(case)]
    return cand.CandidateSet(groups, tolerances, case_floors(case, inputs))


def case_floors(case: Case, inputs) -> dict[str, float]:
    """Each output's scale floor (golden/tolerance.py): a default-eps probe uses the smallest eps probed."""
    eps = min(DEFAULT_VALUES["eps"]) if "eps" in case.defaults else case.eps
    return output_floors("batch_norm" if case.layer in STEPPED else case.layer, inputs, eps)


def probe_axes(case: Case) -> range:
    """The axes a default-feature-axis probe considers: any, or (grouped layers) any but the batch's."""
    return range(1 if case.layer in GROUPED else 0, len(case.shape))


def expected_shapes(case: Case) -> dict[str, set[tuple]]:
    """The output shapes a layer may return for the case (a default-axis probe: any feature axis)."""
    if case.layer not in STEPPED:
        return {"y": {case.shape}}
    axes = probe_axes(case) if "feature_axis" in case.defaults else (case.axes[0],)
    running = {(case.steps, case.shape[a]) for a in axes}
    return {"y_train": {joined_shape(case)}, "running_mean": running, "running_var": running,
            "y_eval": {case.shape}}


def axis_name(axis: int, ndim: int) -> str:
    """An axis as users write it: -1 for the last, else its index."""
    return "-1" if axis % ndim == ndim - 1 else str(axis % ndim)


def documented_profile(case: Case, call: Call, documented: dict) -> dict:
    p = cand.base_profile(case.layer, {k: v for k, v in documented.items() if k in ref.LAYER_CONVENTIONS[case.layer]})
    if call.feature_axis is not None:
        p["feature_axis"] = axis_name(call.feature_axis, len(case.shape))
    if call.groups is not None:
        p["groups"] = str(call.groups)
    return p


def output_tolerances(case: Case, offset: float, expected: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Output name -> tolerance: what golden/tolerance.py needs to know about the case, gathered here.
    A BatchNorm's buffers are charged for the weights of the new batch its documented calls hand over,
    and for the eval offset max |running_mean| / sqrt(running_var + eps) of any stored profile."""
    if rms_simulated(case):  # the simulation holds every rounding to the dtype: float32's arithmetic is left
        return tolerances("float32", case.reduction_size, offset, layer=case.layer)
    if case.layer not in STEPPED:
        return tolerances(case.dtype, case.reduction_size, offset, layer=case.layer)
    if case.momentum is None:
        weights = (None,)
    elif "momentum" in case.defaults:
        weights = DEFAULT_VALUES["momentum"]
    else:
        weights = (case.momentum, 1.0 - case.momentum) if case.raw_momentum else (case.momentum,)
    eps = min(DEFAULT_VALUES["eps"]) if "eps" in case.defaults else case.eps
    with np.errstate(divide="ignore", invalid="ignore"):
        eval_offset = max(float(np.nanmax(np.abs(e["running_mean"][-1]) / np.sqrt(e["running_var"][-1] + eps),
                                          initial=0.0)) for e in expected)
    excess, eval_excess = initial_variance_excess([e["running_var"] for e in expected], eps, case.steps, weights)
    return tolerances(case.dtype, case.reduction_size, offset, layer="batch_norm", steps=case.steps,
                      weights=weights, eval_offset=eval_offset, initial_excess=excess, eval_initial_excess=eval_excess)


def prepare(case: Case) -> Fixture:
    """The fixture without the proof of what the case shows (re-draws use it: scripts/redraw.py)."""
    inputs = make_inputs(case)
    cond = conditioning(case, inputs)
    variants, expected = [], []
    for call in calls(case):
        for documented in call.documented:
            profile = documented_profile(case, call, documented)
            cands = cand.for_case(case, inputs, eps=call.eps, momentum=call.momentum, feature_axis=call.feature_axis,
                                  groups=call.groups)
            variants.append({"profile": profile, "eps": call.eps, "momentum": call.momentum,
                             "feature_axis": call.feature_axis, **({"groups": call.groups} if call.groups else {})})
            expected.append(cands.outputs(conventions_only(profile)))
    return Fixture(case, inputs, variants, expected, output_tolerances(case, cond, expected), cond, None)


def build_fixture(case: Case) -> Fixture:
    fx = prepare(case)
    if case.family == "generated":  # a saved generated case shows nothing: judged as its draw was, never refused
        return fx
    margins = []
    for call in calls(case):
        cset = candidate_set(case, fx.inputs, call, fx.tolerances)
        margins.append(check_shows(case, cset, [cset.profiles.index(documented_profile(case, call, d))
                                                for d in call.documented]))
    fx.decisiveness_margin = min((m for m in margins if m is not None), default=None)
    return fx


def check_shows(case: Case, cset, documented: list[int]) -> float | None:
    """Refuse the case unless each convention it declares is decided, for every profile as the truth,
    by the profiles within DECISIVENESS_MARGIN tolerances of it (the judge's plausible set is inside
    that radius for any implementation within 2.5 tolerances of its profile), and is shown -- not
    inert -- under the documented profiles.  Returns the smallest distance between a profile and one
    differing in a decided convention."""
    d = cset.distance_matrix()
    check_hidden(case, cset, documented, d)
    if not case.shows:
        return None
    worst = float("inf")
    for convention in case.shows:
        values = np.array([p[convention] for p in cset.profiles])
        for t in range(len(cset.profiles)):
            near = np.nonzero(d[t] < DECISIVENESS_MARGIN)[0]
            verdict = cset.decide(near, convention)
            if verdict == cand.UNCLEAR or (t in documented and verdict == cand.NOT_SHOWN):
                j = next(j for j in near if values[j] != values[t])
                raise NotDecisive(f"case {case.name!r}: {convention} is not decisive: under {cset.profiles[t]} the "
                                  f"outputs of {cset.profiles[j]} are only {d[t, j]:.3g} tolerances away "
                                  f"(need >= {DECISIVENESS_MARGIN:g}, or < INERT where it cannot matter)")
            if verdict != cand.NOT_SHOWN:
                worst = min(worst, float(d[t][values != values[t]].min(initial=np.inf)))
    return worst


def check_hidden(case: Case, cset, documented: list[int], d) -> None:
    """A convention the case does not show, on which the documented profiles disagree and which no
    argument translates (the stored running variance: momentum_form is translated, each call hands the
    number its documented profile reads), must be inert under each documented profile: else a
    framework documenting the other variant would be judged on a convention the case cannot name."""
    for convention in UNTRANSLATED:
        variants = {p[convention] for p in DOCUMENTED_PROFILES}
        if convention in case.shows or convention not in ref.LAYER_CONVENTIONS[case.layer]:
            continue
        for i in documented:
            for variant in variants:
                j = cset.twin(i, convention, variant)
                if j is not None and max(d[i, j], d[j, i]) > INERT:
                    raise NotDecisive(f"case {case.name!r}: {convention}={variant} moves the outputs by "
                                      f"{max(d[i, j], d[j, i]):.3g} tolerances but the case does not show it: "
                                      f"make it decisive and declare it, or negligible (< {INERT} tolerances)")


def conditioning(case: Case, inputs) -> float:
    """max over normalized groups of |mean| / sqrt(var + eps), from the stored input in float64: the
    factor by which the output amplifies a centring error of u * |mean| (see golden/tolerance.py).
    For a default probe the smallest eps probed is used."""
    eps = min(DEFAULT_VALUES["eps"]) if "eps" in case.defaults else case.eps
    x = _f64(inputs["x"])
    if case.layer == "rms_norm":  # nothing is centred
        return 0.0
    feature_axes = set(probe_axes(case)) if "feature_axis" in case.defaults else {case.axes[0]}
    if case.layer in GROUPED:
        return _grouped_conditioning(case, inputs, feature_axes, eps)
    if case.layer == "layer_norm":
        groups = [(x, ref.normalize_axes(case.axes, x.ndim))]
    elif case.layer == "batch_norm":
        groups = [(b, ref.batch_axes(b.ndim, f)) for b in split_steps(x, case) + [_f64(inputs["x_eval"])]
                  for f in feature_axes]
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




def _grouped_conditioning(case: Case, inputs, channel_axes, eps) -> float:
    """conditioning over each sample's groups (every group count a default probe considers), and, for
    tracked running statistics, over the channels of each batch (what the running mean centres eval with)."""
    x = _f64(inputs["x"])
    batches = list(x) + [_f64(inputs["x_eval"])] if case.layer in STEPPED else [x]
    if case.layer != "group_norm":
        counts = [None]
    else:
        counts = [g for g in range(1, case.channels + 1) if case.channels % g == 0] if "groups" in case.defaults \
            else [case.groups]
    worst = 0.0
    for b in batches:
        for ca in channel_axes:
            for g in counts:
                grouped = ref.grouped(b, ca, g or b.shape[ca])
                axes = tuple(range(2, grouped.ndim))
                worst = max(worst, float(np.max(np.abs(grouped.mean(axis=axes)) / np.sqrt(grouped.var(axis=axes) + eps))))
            if case.layer in STEPPED:
                axes = ref.batch_axes(b.ndim, ca)
                worst = max(worst, float(np.max(np.abs(b.mean(axis=axes)) / np.sqrt(b.var(axis=axes) + eps))))
    return worst
