"""One cell of the matrix: a golden case run through one adapter, judged against its expectations,
as a record of built-in Python types only (it crosses from xdist workers to the controller).

Outcomes: pass, fail, xfail (a known deviation), xpass (a known deviation that no longer happens),
unsupported, not_installed, error (raised, fixture or expectation problem), bad_output (missing
output, wrong shape or dtype), timeout, and, filled in by the controller, crashed and missing.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import traceback

import numpy as np

from adapters.base import CALL_TIMEOUT_S, Unsupported
from adapters.harness import call
from golden import fixtures
from golden.bias import HALF, output_budget, rounding_bias
from golden.compare import NO_MATCH, check_outputs, measures, observe

PASSING = ("pass", "xfail")
NOT_RUN = ("unsupported", "not_installed")


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def new_cell(case_name: str, adapter_name: str) -> dict:
    return {"case": case_name, "adapter": adapter_name, "outcome": "error", "message": "", "conventions": {},
            "observed": None, "expected": None, "tolerance": None, "scaled_error": None, "max_abs": None,
            "max_rel": None, "max_ulp": None, "margin": None, "behaviour": None, "rule": None, "seconds": None,
            "layout": None,
            "layer": None, "family": None, "dtype": None}


def one_value_behaviour(outputs, fixture) -> str:
    """What a layer did with one value per channel: NaN, zeros (beta), or the input back."""
    y = np.asarray(outputs["y_train"], dtype=np.float64)
    x = np.asarray(fixture.inputs["x"], dtype=np.float64)
    beta = fixture.inputs.get("beta")
    if np.isnan(y).any():
        return "NaN"
    if np.allclose(y, x):
        return "returns the input"
    target = 0.0
    if beta is not None:  # y_train is (steps, *shape): the feature axis moves one to the right
        shape = [1] * y.ndim
        shape[1 + fixture.case.axes[0] % len(fixture.case.shape)] = -1
        target = np.asarray(beta, np.float64).reshape(shape)
    return "zeros (beta)" if np.allclose(y, target) else "other"


class CellTimeout(TimeoutError):
    pass


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise CellTimeout in the main thread after `seconds` (in-process adapters; remote ones are
    killed by adapters/remote.py).  Code stuck inside C is interrupted when it returns to Python."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _fire(signum, frame):
        raise CellTimeout(f"no result within {seconds:g} s (NORMCONF_CALL_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cell(adapter, adapter_name: str, case_name: str, expectation, unavailable: str | None) -> dict:
    cell = new_cell(case_name, adapter_name)
    start = time.perf_counter()
    try:
        # A remote adapter kills its child on time; a second timer could fire first and leave the child's
        # late answer in the pipe for the next cell.
        guard = contextlib.nullcontext() if getattr(adapter, "kills_on_timeout", False) else deadline(CALL_TIMEOUT_S)
        with guard:
            _judge(cell, adapter, case_name, expectation, unavailable)
    except CellTimeout as exc:
        cell.update(outcome="timeout", message=str(exc))
    except Exception as exc:  # a bug in a plug-in adapter must cost one cell, not the run
        cell.update(outcome="error", message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    cell["seconds"] = round(time.perf_counter() - start, 4)
    return cell


def _judge(cell, adapter, case_name, expectation, unavailable):
    if unavailable:
        cell.update(outcome="not_installed", message=unavailable)
        return
    try:
        fx = fixtures.load_case(case_name)
    except fixtures.FixtureError as exc:
        cell.update(outcome="error", message=str(exc))
        return
    case = fx.case
    cell.update(layer=case.layer, family=case.family, dtype=case.dtype, tolerance=fx.tolerance)
    if case.layer != "layer_norm" and case.axes[0] % len(case.shape) != 1:  # channels-last input
        cell["layout"] = getattr(adapter, "layout_note", None) or "native feature-axis argument"
    if expectation is None:
        cell.update(outcome="error", message=f"no expectations file names adapter {cell['adapter']!r}")
        return
    if getattr(expectation, "error", ""):
        cell.update(outcome="error", message=f"expectations unusable: {expectation.error}")
        return
    raises_rules = expectation.rules_for(cell["adapter"], case.name, "outcome")
    try:
        outputs = call(adapter, fx)
    except Unsupported as exc:
        cell.update(outcome="unsupported", message=str(exc))
        return
    except TimeoutError as exc:
        cell.update(outcome="timeout", message=str(exc))
        return _deviation(cell, expectation)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        rule = next((r for r in raises_rules if r.match in message), None)
        if rule is not None:
            cell.update(outcome="pass", behaviour="raises", rule=rule.id, message=message)
        else:
            cell.update(outcome="error", behaviour="raises", message=message)
            _deviation(cell, expectation)
        return
    if raises_rules:
        cell.update(outcome="fail", message=f"documented to raise ({raises_rules[0].match!r}), returned outputs",
                    rule=raises_rules[0].id)
        return _deviation(cell, expectation)
    if case.family == "one_value_per_channel":
        cell["behaviour"] = one_value_behaviour(outputs, fx)
    problem = check_outputs(outputs, fx)
    if problem:
        cell.update(outcome="bad_output", message=problem)
        return _deviation(cell, expectation)
    _compare(cell, fx, outputs, expectation)
    _deviation(cell, expectation)


def _compare(cell, fx, outputs, expectation):
    case = fx.case
    obs = observe(fx, outputs)
    observed = obs.observed()
    documented = {}
    for convention in case.conventions:
        doc = expectation.documented_variant(convention, case.layer)
        documented[convention] = doc["variant"] if doc else None
        cell["conventions"][convention] = {"observed": observed[convention], "expected": documented[convention],
                                           "cite": doc["cite"] if doc else None}
    target = next((i for i, v in enumerate(fx.variants) if v == documented), None)
    ref_index = target if target is not None else obs.nearest
    m = measures(outputs, fx.expected[ref_index], str(fx.inputs["x"].dtype))
    others = [e for i, e in enumerate(obs.errors) if i != ref_index]
    cell.update(observed=_profile(observed), expected=_profile(documented),
                scaled_error=_finite(obs.errors[ref_index]), max_abs=_finite(m["max_abs"]),
                max_rel=_finite(m["max_rel"]), max_ulp=_finite(m["max_ulp"]),
                margin=_finite(min(others) / fx.tolerance) if others else None)
    missing = [c for c, v in documented.items() if v is None]
    if missing:
        cell.update(outcome="error", message=f"{expectation.path}: no documented variant for {', '.join(missing)}")
    elif obs.matched is not None and obs.matched == target:
        cell.update(outcome="pass", message=f"within tolerance ({obs.errors[target] / fx.tolerance:.3g}x)")
        _rounding_bias(cell, fx, outputs, target)  # rounding-bias check (golden/bias.py)
    elif obs.matched is not None:
        diffs = [f"{c}: observed {observed[c]}, documented {documented[c]}" for c in case.conventions
                 if observed[c] != documented[c]]
        cell.update(outcome="fail", message="; ".join(diffs))
    else:
        nearest = fx.variants[obs.nearest]
        cell.update(outcome="fail", message=(
            f"{NO_MATCH}: nearest {_profile(nearest) or 'the only variant'} misses by "
            f"{obs.errors[obs.nearest] / fx.tolerance:.3g}x tolerance ({fx.tolerance:.3g}) in {obs.worst_output[obs.nearest]}"))


# ---- rounding-bias check (golden/bias.py): a float16/bfloat16 output within tolerance must also not
# lean one way (truncation or rounding toward -inf instead of to nearest).  Records the worst output in
# cell["rounding_bias"]; fails the cell when its mean signed error exceeds the threshold. ----
def _rounding_bias(cell, fx, outputs, target):
    dtype = str(fx.inputs["x"].dtype)
    if dtype not in HALF:
        return
    tolerances = fx.meta.get("tolerances") or {}
    worst = None
    for name, expected in fx.expected[target].items():
        if str(np.asarray(outputs[name]).dtype) != dtype:
            continue
        budget = output_budget(tolerances.get(name, fx.tolerance), dtype, expected)
        mean, threshold = rounding_bias(outputs[name], expected, dtype, budget)
        if worst is None or abs(mean) / threshold > worst["ratio"]:
            worst = {"output": name, "mean_ulp": mean, "threshold": threshold, "ratio": abs(mean) / threshold}
    if worst is None:
        return
    cell["rounding_bias"] = {k: (_finite(v) if isinstance(v, float) else v) for k, v in worst.items()}
    if worst["ratio"] > 1.0:
        cell.update(outcome="fail", message=(
            f"rounding bias in {worst['output']}: mean signed error {worst['mean_ulp']:+.3f} ULP from the correctly "
            f"rounded reference, threshold {worst['threshold']:.3f} ({worst['ratio']:.3g}x): not rounded to nearest"))
# ---- end of the rounding-bias check ----


def _profile(p: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in p.items())


def _deviation(cell, expectation):
    """A known deviation turns its failure into xfail; a listed cell that passes becomes xpass."""
    rules = expectation.rules_for(cell["adapter"], cell["case"], "deviation")
    if not rules:
        return
    if cell["outcome"] == "pass":
        cell.update(outcome="xpass", rule=rules[0].id,
                    message=f"known deviation {rules[0].id} no longer happens: {rules[0].reason}")
        return
    rule = next((r for r in rules if r.match in cell["message"]), None)
    if rule is not None:
        cell.update(outcome="xfail", rule=rule.id, message=f"{cell['message']} [known: {rule.reason}]")
