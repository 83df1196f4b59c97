"""Which variant of each convention an adapter's outputs follow, identified jointly; and the defaults
it was not given, measured.

Every combination of the layer's convention variants is a candidate profile (golden/candidates.py).
The plausible profiles are those whose error is within PLAUSIBLE times the best one's (at least one
tolerance).  The generator proves that for an implementation within 2.5 tolerances of any profile
they agree on every convention the case declares (golden/generate.py check_shows).  A convention is
  named      when the plausible profiles agree on it,
  not shown  when the case does not declare it, or they differ only where it cannot move the outputs,
  unclear    otherwise: no variant explains the outputs ("matches no variant").
Accuracy is measured against one reference profile -- the named variants, the documented ones for
the rest where that fits, else the nearest -- so a precision miss is an accuracy figure, never a
convention.

A measured default is read under the reference profile where it is plausible, else under the nearest
(a documented variant that does not fit gives no reading of a default), and under every plausible profile that differs from the reference only in a
convention the probe does not show (an eps under a biased or an unbiased normalization variance): the
readings are kept, and the uncertainty covers them all.  A debiased running average with no weight
on the new batch is the cumulative average (momentum=None), which has its own profile.  An eps is no
number where another normalizer (a listed one, or the layer's own reported running statistics) explains
the training output clearly better than the probe profile's and reads another eps (`_other_normalizer`).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from normconf.adapters.base import DEFAULT
from normconf.golden import candidates as cand
from normconf.golden import reference as ref
from normconf.golden.cases import STEPPED
from normconf.golden.generate import ARGUMENT_KEYS, Call, candidate_set, case_floors
from normconf.golden.ragged import split_steps
from normconf.golden.reference import LAYER_CONVENTIONS
from normconf.golden.tolerance import scaled_error
from normconf.judge import measure

PLAUSIBLE = 3.0
EPS_CONFOUNDERS = ("norm_variance", "eps_placement", "rms_statistic")  # what an eps estimate depends on besides the output
STATES = {cand.NOT_SHOWN: "not_shown", cand.UNCLEAR: "unclear"}


@dataclass
class Identification:
    profiles: list[dict]
    errors: np.ndarray                # each profile's error, in tolerances
    reference: int                    # the profile accuracy is measured against
    expected: dict[str, np.ndarray]   # its outputs
    documented: int                   # the profile of the documented variants (the nearest where undocumented)
    conventions: dict[str, dict]      # convention -> {"observed", "state", "nearest", "margin"}
    measured: dict[str, dict]         # default_eps, default_momentum, default_feature_axis, running_variance_factor
    nearest: dict[str, np.ndarray]    # the outputs of the profile that fits best: the implementation's own
    floors: dict[str, float]          # each output's scale floor (golden/tolerance.py)


class _EpsEstimator:
    """eps under each profile, from the output normalized with that profile's statistics."""

    def __init__(self, case, outputs, tolerances, floors):
        self.output = "y_train" if case.layer in STEPPED else "y"
        self.floor = floors[self.output]
        self.y = np.asarray(outputs[self.output], np.float64)
        self.y = split_steps(self.y, case)[0] if case.layer in STEPPED else self.y  # the first step's
        self.tol, self._found, self._misfits = tolerances[self.output], {}, {}
        # the running statistics the layer reports after the first step: a normalizer no profile may compute
        self.own = (outputs["running_mean"][0], outputs["running_var"][0]) if case.layer == "batch_norm" else None

    def _key(self, cands, p) -> tuple:
        return id(cands), cands.dependencies(self.output, p), p["eps_placement"]

    def measure(self, cands, p) -> tuple[float, float]:
        key = self._key(cands, p)
        if key not in self._found:
            x, y, centre, var, gamma, beta = cands.eps_inputs(p, self.y)
            self._found[key] = measure.estimate_eps(x, y, centre, var, p["eps_placement"], gamma, beta, self.tol,
                                                    self.floor)
        return self._found[key]

    def misfit(self, cands, p) -> float:
        """How far the (first step's) output is from the one p's normalizer gives with the eps read under
        it, in tolerances: the estimate is a mean square, so a wrong normalizer still gives a number."""
        key = self._key(cands, p)
        if key not in self._misfits:
            self._misfits[key] = self._misfit(*cands.normalizer(p), self.measure(cands, p)[0], p["eps_placement"], cands)
        return self._misfits[key]

    def _misfit(self, x, centre, var, eps, placement, cands) -> float:
        if not math.isfinite(eps):
            return math.inf
        with np.errstate(all="ignore"):
            predicted = ref.normalize(x, centre, var, eps, placement, cands.gamma, cands.beta)
        return scaled_error(self.y, predicted, self.floor) / self.tol

    def own_reading(self, cands, p) -> tuple[float, float, float]:
        """eps, its uncertainty and the misfit with the layer's own reported running statistics as the
        normalizer (p gives the eps placement): right whatever rule updated them."""
        x, centre, _ = cands.normalizer(p)
        if any(np.size(a) != centre.size for a in self.own):  # not one value per channel: no normalizer
            return math.nan, math.inf, math.inf
        mean, var = (np.reshape(np.asarray(a, np.float64), centre.shape) for a in self.own)
        v, u = measure.estimate_eps(x, self.y, mean, var, p["eps_placement"], cands.gamma, cands.beta, self.tol,
                                    self.floor)
        return v, u, self._misfit(x, mean, var, v, p["eps_placement"], cands)

    def __call__(self, cands, p):
        return self.measure(cands, p)[0]


class _WeightEstimator:
    """The weight on the new batch under each profile's initial statistics (None: cumulative average)."""

    def __init__(self, outputs, tolerances, floors):
        self.running_mean, self.tol, self._found = outputs["running_mean"], tolerances["running_mean"], {}
        self.floor = floors["running_mean"]

    def measure(self, cands, p) -> tuple[float | None, float]:
        if p["momentum_form"] == "cumulative_average":
            return None, 0.0
        key = (id(cands), p["initial_running_stats"])
        if key not in self._found:
            self._found[key] = measure.estimate_weight(cands.stats.mean, self.running_mean,
                                                       p["initial_running_stats"], self.tol, self.floor)
        return self._found[key]

    def __call__(self, cands, p):
        return self.measure(cands, p)[0]


class _CandidateCache:
    """Candidate sets of the calls with no measured default, kept within a memory budget: every
    adapter and mutant that receives a case the same way shares them."""

    def __init__(self, budget_bytes: int = 300 * 2 ** 20):
        self.budget, self.used, self._sets = budget_bytes, 0, OrderedDict()

    def get(self, fixture, call: Call, tolerances):
        key = (fixture.path, call.eps, call.momentum)
        if key in self._sets:
            self._sets.move_to_end(key)
            return self._sets[key][0]
        cset = candidate_set(fixture.case, fixture.inputs, call, tolerances)
        size = sum(a.nbytes for arrays in cset._unique.values() for a in arrays)
        self._sets[key] = (cset, size)
        self.used += size
        while self.used > self.budget and len(self._sets) > 1:
            self.used -= self._sets.popitem(last=False)[1][1]
        return cset


CACHE = _CandidateCache()


def identify(fixture, outputs: dict, args, documented) -> Identification:
    """`args`: the harness's Arguments of the call; `documented(convention)`: the documented variant or None."""
    case, tolerances = fixture.case, fixture.tolerances
    floors = case_floors(case, fixture.inputs)
    eps = _EpsEstimator(case, outputs, tolerances, floors) if args.eps is DEFAULT else args.eps
    momentum = _WeightEstimator(outputs, tolerances, floors) if args.momentum is DEFAULT else args.momentum
    call = Call(eps, momentum, None, ())
    measuring = callable(eps) or callable(momentum) or args.feature_axis is DEFAULT
    cset = candidate_set(case, fixture.inputs, call, tolerances) if measuring else CACHE.get(fixture, call, tolerances)
    errors = cset.errors(outputs)
    profiles = cset.profiles
    if callable(momentum):
        errors = _without_vanishing_weight(cset, errors, momentum)
    best = int(np.argmin(errors))
    floor = max(1.0, float(errors[best]))
    members = np.nonzero(errors <= PLAUSIBLE * floor)[0]
    judged = list(LAYER_CONVENTIONS[case.layer]) + [k for k in ARGUMENT_KEYS if k in profiles[0]]
    conventions = {}
    for c in judged:
        nearest = profiles[best][c]
        rivals = errors[cset.codes[c] != nearest]
        verdict = cset.decide(members, c) if c in case.shows or c in ARGUMENT_KEYS else cand.NOT_SHOWN
        conventions[c] = {"observed": verdict, "state": STATES.get(verdict, "named"), "nearest": nearest,
                          "margin": _finite(rivals.min()) if rivals.size else None}
    ref = _reference(cset, errors, conventions, documented)
    # a default is read under a profile that fits: the reference where it does, else the nearest
    probe = ref if ref in members else best
    measured = _measured(case, cset, ref, probe, eps, momentum, conventions, outputs, tolerances, members)
    for key in ARGUMENT_KEYS:
        conventions.pop(key, None)
    return Identification(profiles, errors, ref, cset.outputs_of(ref), _reference(cset, errors, {}, documented),
                          conventions, measured, cset.outputs_of(best), cset.floors)


def _without_vanishing_weight(cset, errors, momentum) -> np.ndarray:
    """Errors with the debiased profiles whose measured weight on the new batch is 0 within 3
    uncertainties left out: they are the cumulative average (momentum=None), which has its own profile,
    and their 0/0 debiasing makes them fit as well without naming it."""
    errors = errors.copy()
    for i, p in enumerate(cset.profiles):
        if p["momentum_form"] != "cumulative_average" and p["initial_running_stats"] == "zero_debiased":
            w, u = momentum.measure(cset.candidates_of(i), p)
            if w is not None and abs(w) <= 3 * u:
                errors[i] = math.inf
    return errors


def _reference(cset, errors, conventions, documented) -> int:
    """The named variants; the documented ones for the rest where the call allows them; the nearest."""
    named = {c: v["observed"] for c, v in conventions.items() if v["state"] == "named"}
    fits = cset.match(named)
    fits = fits if fits.any() else np.ones_like(fits)
    wanted = {c: documented(c) for c in cset.codes if c not in named and documented(c) is not None}
    preferred = fits & cset.match(wanted)
    chosen = preferred if preferred.any() else fits
    return int(np.flatnonzero(chosen)[np.argmin(errors[chosen])])


def _measured(case, cset, ref, probe, eps, momentum, conventions, outputs, tolerances, members) -> dict[str, dict]:
    p, cands = cset.profiles[ref], cset.candidates_of(ref)
    out = {}
    if callable(eps):
        out["default_eps"] = _eps_measurement(cset, probe, eps, conventions, members)
    if callable(momentum):
        w, u = momentum.measure(cset.candidates_of(probe), cset.profiles[probe])
        out["default_momentum"] = ({**measure.measurement(math.nan, 0.0, "cumulative average"), "state": "named"}
                                   if w is None else measure.default_measurement("default_momentum", w, u))
    for convention, key in (("feature_axis", "default_feature_axis"), ("groups", "default_groups")):
        if convention in conventions:
            out[key] = _integer_default(conventions[convention])
    # one factor over every step: with batch sizes that change, N/(N-1) is no single number (not measured)
    if case.layer in STEPPED and "running_variance" in case.shows and not case.batch_sizes:
        fed = cands.stats.var
        alpha = cands.trajectory(p, np.zeros_like(fed)).var
        f, u = measure.estimate_factor(outputs["running_var"], alpha, cands.trajectory(p, fed).var - alpha,
                                       tolerances["running_var"], cset.floors["running_var"])
        name = measure.factor_name(f, u, cands.stats.n)
        out["running_variance_factor"] = {**measure.measurement(f, u, name), "n": cands.stats.n}
    return out


def _integer_default(reading: dict) -> dict:
    """A default read as one of a few integers (an axis, a number of groups): exact where named."""
    named = reading["state"] == "named"
    return {"value": int(reading["observed"]) if named else None, "uncertainty": 0.0,
            "name": reading["observed"] if named else None,
            "display": reading["observed"] if named else f"unclear (nearest {reading['nearest']})"}


def _eps_measurement(cset, probe, eps, conventions, members) -> dict:
    """eps under the probe profile; where plausible profiles that differ from it only in conventions the
    case does not show read another eps, an uncertainty covering every reading, and the readings that
    are usable values (`alternatives`, for the matrix to pick by the run's other cases)."""
    hidden = [c for c in EPS_CONFOUNDERS if c in conventions and conventions[c]["state"] != "named"]
    p = cset.profiles[probe]
    other = _other_normalizer(cset, probe, eps)
    if other:
        return other
    rivals = [i for i in members if i != probe and hidden
              and all(cset.profiles[i][c] == v for c, v in p.items() if c not in hidden)]
    readings = []
    for i in [probe, *rivals]:
        v, u = eps.measure(cset.candidates_of(i), cset.profiles[i])
        given = {c: cset.profiles[i][c] for c in hidden}
        if math.isfinite(v) and math.isfinite(u) and given not in [r["given"] for r in readings]:
            readings.append({"given": given, "value": v, "uncertainty": u})
    if len(readings) < 2 or all(measure.agrees(readings[0], r["value"]) for r in readings[1:]):
        return measure.default_measurement("default_eps", *eps.measure(cset.candidates_of(probe), p))
    m = measure.default_measurement("default_eps", *measure.covering(readings))
    if m["state"] == "named":
        m["display"] += f", covering {measure.given_text(readings)} (not shown by this case)"
    usable = [r for r in readings if not measure.outside_domain("default_eps", r["value"], r["uncertainty"])]
    return {**m, "alternatives": usable} if usable else m


NORMALIZERS = {"batch": "the batch statistics", "running_updated": "running statistics after a listed update",
               "running_previous": "running statistics before a listed update"}


def _other_normalizer(cset, probe, eps) -> dict | None:
    """Unclear, in words, where the training output is explained clearly better (PLAUSIBLE times) by
    another kind of statistics than the probe profile's (batch, or running after or before the update),
    and reads another eps there.  A layer that normalizes with running statistics updated by a rule no
    profile follows fits no profile; read with the batch statistics, its output gives an eps of the
    running variance's size (0.7 for a true 1e-5).  The probe's kind is judged by its best variant of
    the conventions the probe does not show (norm_variance, eps_placement: the covering reading handles
    those); the rivals are every profile of another kind and the layer's own reported running
    statistics (the updated ones), right whatever rule produced them."""
    if not isinstance(eps, _EpsEstimator) or eps.own is None:
        return None
    p = cset.profiles[probe]
    kind = p["training_statistics"]
    if eps.misfit(cset.candidates_of(probe), p) <= PLAUSIBLE:  # explains the output: its reading stands
        return None
    fits = {}
    for i, q in enumerate(cset.profiles):
        cands = cset.candidates_of(i)
        fits[i] = (*eps.measure(cands, q), eps.misfit(cands, q), NORMALIZERS[q["training_statistics"]])
    fit = min(f[2] for i, f in fits.items() if cset.profiles[i]["training_statistics"] == kind)
    if fit <= PLAUSIBLE:
        return None
    own = [(*eps.own_reading(cset.candidates_of(probe), {**p, "eps_placement": e}), "the layer's own running statistics")
           for e in ("inside_sqrt", "added_to_std")]
    rivals = own + [f for i, f in fits.items() if cset.profiles[i]["training_statistics"] != kind]
    reading = dict(zip(("value", "uncertainty"), eps.measure(cset.candidates_of(probe), p)))
    better = [r for r in rivals if r[2] * PLAUSIBLE < fit and not measure.agrees(reading, r[0])]
    if not better:
        return None
    v, u, misfit, where = min(better, key=lambda r: r[2])
    seen = measure.outside_domain("default_eps", v, u) or f"eps {v:.2g} ± {u:.1g}"
    words = (f"not measurable: the training output is not normalized with {NORMALIZERS[kind]}, which the profile "
             f"nearest to the other outputs uses (they miss it by {fit:.3g}x tolerance at best); {where} fit it "
             f"at {misfit:.2g}x ({seen})")
    return {"value": None, "uncertainty": None, "name": None, "display": words, "state": "unclear"}


def _finite(x) -> float | None:
    return float(x) if math.isfinite(x) else None
