"""What every call owes its caller besides the right numbers (issue 21):

  inputs     the arrays handed in (input, gamma, beta, running statistics) are unchanged after the call
             -- checked on every call: one comparison with the stored fixture;
  state      a call's result does not depend on the calls before it (a cache or buffer shared between
             calls): after the cell's call, one with other values of the same shapes (judged against
             golden/reference.py's outputs for those values, under the profile the cell identified),
             then the case again;
  layout     the result does not depend on the input's memory layout: the same values again, as a
             Fortran-order view with doubled strides.

The state and layout calls run on CONTRACT_CASES only (BatchNorm channels first and last, LayerNorm
over non-contiguous axes, an eval layer handed running statistics: every operation and both memory
orders, at two calls more per case), inside the cell, so a kill never depends on which process ran
which cells before.  Passing costs two calls: other values (judged against their reference), then the
case as a strided Fortran-order view, which must give the first result again; only when it does not
does a third call (the case as stored) tell state from layout.  A repeat is compared with the cell's
first result: two results within the tolerance of the reference are within twice the tolerance of each
other, so more than REPEAT_TOLERANCES is a violation (the first call's accuracy is judged apart; a leak
or a misread layout moves outputs by orders of magnitude more).
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.harness import arguments
from normconf.golden import candidates as cand
from normconf.golden.generate import case_floors, conditioning, conventions_only, output_tolerances
from normconf.golden.layouts import fortran_strided
from normconf.golden.ragged import steps_form
from normconf.golden.tolerance import scaled_errors

CONTRACT_CASES = ("bn2d_nchw", "bn2d_nhwc", "ln_noncontiguous_1_3", "probe_eval_statistics")
REPEAT_TOLERANCES = 2.0


def changed_inputs(args, fixture) -> list[str]:
    """The names of the handed-in arrays whose values differ from the stored ones after the call."""
    changed = []
    for name, handed in args.handed.items():
        stored = np.asarray(fixture.inputs[name], np.float64)
        if not np.array_equal(np.asarray(handed, np.float64), stored, equal_nan=True):
            changed.append(name)
    return changed


def other_values(x: np.ndarray) -> np.ndarray:
    """Same shape and dtype, other numbers: -2 x + 1 (a constant input stays constant, at another value)."""
    return (-2.0 * np.asarray(x, np.float64) + 1.0).astype(x.dtype)


def violations(adapter, fixture, args, first: dict, profile: dict, floors: dict) -> list[str]:
    """One message per broken contract of the cell's call `args` (its outputs `first`, identified as
    `profile`)."""
    changed = changed_inputs(args, fixture)
    found = [f"inputs: the call modified {', '.join(changed)} in place"] if changed else []
    if fixture.case.name in CONTRACT_CASES and not fixture.case.defaults:
        try:
            found += repeat_violations(adapter, fixture, args, first, profile, floors)
        except Exception as exc:  # a repeat that raises where the first call returned breaks a contract too
            found.append(f"state or layout: a repeated call raised {type(exc).__name__}: {exc}")
    return found


def repeat_violations(adapter, fixture, args, first: dict, profile: dict, floors: dict) -> list[str]:
    """The state and layout contracts: other values (judged against their reference), the case as a
    strided Fortran-order view, and only if that differs from the first result the case as stored."""
    found = []
    other = _call(adapter, arguments(adapter, fixture, other_values), fixture.case)
    expected, other_tolerances, other_floors = other_reference(fixture, args, profile)
    worst, name = _worst(other, expected, other_floors, other_tolerances)
    if worst > REPEAT_TOLERANCES:
        found.append(f"state: a second call with other values (-2 x + 1) {_off(worst)} from their reference in "
                     f"{name} (limit {REPEAT_TOLERANCES:g})")
    worst, name = _repeat(adapter, fixture, fortran_strided, first, floors)
    if worst <= REPEAT_TOLERANCES:
        return found
    stored, stored_name = _repeat(adapter, fixture, np.copy, first, floors)
    if stored > REPEAT_TOLERANCES:
        found.append(f"state: the same input after a call with other values gives other outputs ({_off(stored)} "
                     f"from the first call in {stored_name}, limit {REPEAT_TOLERANCES:g})")
    else:
        found.append(f"layout: the same input as a strided Fortran-order view gives other outputs ({_off(worst)} "
                     f"from the first call in {name}, limit {REPEAT_TOLERANCES:g})")
    return found


def _repeat(adapter, fixture, x_as, first: dict, floors: dict) -> tuple[float, str]:
    return _worst(_call(adapter, arguments(adapter, fixture, x_as), fixture.case), first, floors,
                  fixture.tolerances)


def other_reference(fixture, args, profile: dict) -> tuple[dict, dict, dict]:
    """golden/reference.py's outputs (float64) for the other values under `profile`, with their
    tolerances and scale floors, derived as for a stored fixture."""
    case = fixture.case
    inputs = {k: other_values(v) if k in ("x", "x_eval") else v for k, v in fixture.inputs.items()}
    groups = int(profile["groups"]) if "groups" in profile else None  # a default-groups probe's reading
    cands = cand.for_case(case, inputs, eps=args.eps, momentum=args.momentum, groups=groups)
    expected = cands.outputs(conventions_only(profile))
    return expected, output_tolerances(case, conditioning(case, inputs), [expected]), case_floors(case, inputs)


def _call(adapter, args, case) -> dict:
    outputs, problem = steps_form(getattr(adapter, args.op)(*args.args), case)
    if problem:
        raise ValueError(problem)
    return outputs


def _off(worst: float) -> str:
    return "infinitely far" if not np.isfinite(worst) else f"{worst:.3g}x tolerance"


def _worst(again: dict, first: dict, floors: dict, tolerances: dict) -> tuple[float, str]:
    worst, worst_name = 0.0, ""
    for name, reference in first.items():
        if name not in again or name not in tolerances:
            continue
        err = float(scaled_errors(again[name], [reference], floors[name])[0]) / tolerances[name]
        if not err <= worst:  # NaN and inf count as worst
            worst, worst_name = (err if err == err else np.inf), name
    return worst, worst_name
