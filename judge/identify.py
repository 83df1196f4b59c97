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
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from normconf.adapters.base import DEFAULT
from normconf.golden import candidates as cand
from normconf.golden.generate import Call, candidate_set, case_floors
from normconf.golden.reference import LAYER_CONVENTIONS
from normconf.judge import measure

PLAUSIBLE = 3.0
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
    floors: dict[str, float]          # each output's scale floor (golden/tolerance.py)


class _EpsEstimator:
    """eps under each profile, from the output normalized with that profile's statistics."""

    def __init__(self, case, outputs, tolerances, floors):
        self.output = "y_train" if case.layer == "batch_norm" else "y"
        self.floor = floors[self.output]
        self.y = np.asarray(outputs[self.output], np.float64)
        self.y = self.y[0] if case.layer == "batch_norm" else self.y
        self.tol, self._found = tolerances[self.output], {}

    def measure(self, cands, p) -> tuple[float, float]:
        key = (id(cands), cands.dependencies(self.output, p), p["eps_placement"])
        if key not in self._found:
            x, centre, var = cands.normalizer(p)
            self._found[key] = measure.estimate_eps(x, self.y, centre, var, p["eps_placement"], cands.gamma,
                                                    cands.beta, self.tol, self.floor)
        return self._found[key]

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
    best = int(np.argmin(errors))
    floor = max(1.0, float(errors[best]))
    members = np.nonzero(errors <= PLAUSIBLE * floor)[0]
    judged = list(LAYER_CONVENTIONS[case.layer]) + (["feature_axis"] if "feature_axis" in profiles[0] else [])
    conventions = {}
    for c in judged:
        nearest = profiles[best][c]
        rivals = errors[cset.codes[c] != nearest]
        verdict = cset.decide(members, c) if c in case.shows or c == "feature_axis" else cand.NOT_SHOWN
        conventions[c] = {"observed": verdict, "state": STATES.get(verdict, "named"), "nearest": nearest,
                          "margin": _finite(rivals.min()) if rivals.size else None}
    ref = _reference(cset, errors, conventions, documented)
    measured = _measured(case, cset, ref, eps, momentum, conventions, outputs, tolerances)
    conventions.pop("feature_axis", None)
    return Identification(profiles, errors, ref, cset.outputs_of(ref), _reference(cset, errors, {}, documented),
                          conventions, measured, cset.floors)


def _reference(cset, errors, conventions, documented) -> int:
    """The named variants; the documented ones for the rest where the call allows them; the nearest."""
    named = {c: v["observed"] for c, v in conventions.items() if v["state"] == "named"}
    fits = cset.match(named)
    fits = fits if fits.any() else np.ones_like(fits)
    wanted = {c: documented(c) for c in cset.codes if c not in named and documented(c) is not None}
    preferred = fits & cset.match(wanted)
    chosen = preferred if preferred.any() else fits
    return int(np.flatnonzero(chosen)[np.argmin(errors[chosen])])


def _measured(case, cset, ref, eps, momentum, conventions, outputs, tolerances) -> dict[str, dict]:
    p, cands = cset.profiles[ref], cset.candidates_of(ref)
    out = {}
    if callable(eps):
        v, u = eps.measure(cands, p)
        out["default_eps"] = measure.measurement(v, u, measure.short_decimal(v, u))
    if callable(momentum):
        w, u = momentum.measure(cands, p)
        out["default_momentum"] = (measure.measurement(math.nan, 0.0, "cumulative average") if w is None
                                   else measure.measurement(w, u, measure.short_decimal(w, u)))
    if "feature_axis" in conventions:
        axis = conventions["feature_axis"]
        named = axis["state"] == "named"
        out["default_feature_axis"] = {"value": int(axis["observed"]) if named else None, "uncertainty": 0.0,
                                       "name": axis["observed"] if named else None,
                                       "display": axis["observed"] if named else f"unclear (nearest {axis['nearest']})"}
    if case.layer == "batch_norm" and "running_variance" in case.shows:
        fed = cands.stats.var
        alpha = cands.trajectory(p, np.zeros_like(fed)).var
        f, u = measure.estimate_factor(outputs["running_var"], alpha, cands.trajectory(p, fed).var - alpha,
                                       tolerances["running_var"], cset.floors["running_var"])
        name = measure.factor_name(f, u, cands.stats.n)
        out["running_variance_factor"] = {**measure.measurement(f, u, name), "n": cands.stats.n}
    return out


def _finite(x) -> float | None:
    return float(x) if math.isfinite(x) else None
