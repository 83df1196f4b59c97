"""One cell of the matrix: a golden case run through one adapter, identified, measured and judged
against what the adapter documents, as a record of built-in Python types only (it crosses from xdist
workers to the controller).

Outcomes: pass, fail, xfail (a known deviation), xpass (a known deviation that no longer happens),
unsupported, not_installed, error (raised, fixture or expectation problem), bad_output (missing
output, wrong shape or dtype), timeout, and, filled in by the controller, crashed and missing.
A failing cell lists its failures by kind, each with a message:
  convention  a convention the case shows is named, and differs from the documented variant
  unclear     a convention the case shows matches no variant ("matches no variant"), or a measured
              default is no usable value (outside its domain, below the probe's resolution)
  default     a measured default differs from the documented one
  nonfinite   NaN or inf where the formula gives a number
  accuracy    the outputs miss the reference profile by more than the tolerance
  rounding    a float16/bfloat16 output leans one way: not rounded to nearest (golden/bias.py)
  contract    the call modified what it was handed, or a repeat of it after other calls or in another
              memory layout gives other outputs (judge/contracts.py)
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import threading
import time
import traceback

import numpy as np

from normconf.adapters.base import Unsupported, call_timeout_s
from normconf.adapters.harness import arguments
from normconf.golden import candidates as cand
from normconf.golden import fixtures
from normconf.golden.bias import HALF, output_budget, rounding_bias
from normconf.golden.generate import axis_name, conventions_only, expected_shapes
from normconf.golden.ragged import steps_form
from normconf.golden.tolerance import UNIT_ROUNDOFF, error_measures, scaled_error, scaled_errors, tolerance
from normconf.judge import contracts, measure
from normconf.judge.identify import identify

PASSING = ("pass", "xfail")
NOT_RUN = ("unsupported", "not_installed")
DEFAULT_KEYS = ("default_eps", "default_momentum", "default_feature_axis", "default_groups")


def new_cell(case_name: str, adapter_name: str) -> dict:
    return {"case": case_name, "adapter": adapter_name, "outcome": "error", "message": "", "failures": [],
            "layer": None, "family": None, "dtype": None, "tolerance": None, "conventions": {}, "measured": {},
            "accuracy": None, "nonfinite": {}, "rounding_bias": None, "output_dtypes": {}, "behaviour": None,
            "layout": None, "rule": None, "seconds": None}


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


# After the deadline the timeout is raised again every second; a call that swallows it this many times
# more cannot be ended in its process, and the process is stopped (see deadline).
RE_RAISES = 3
STOPPED_EXIT = 75


def caught_timeout(seconds: float) -> str:
    return f"no result within {seconds:g} s (NORMCONF_CALL_TIMEOUT); the call caught the timeout"


@contextlib.contextmanager
def deadline(seconds: float, on_stuck=None):
    """Raise CellTimeout in the main thread after `seconds` (in-process adapters; remote ones are
    killed by adapters/remote.py).  Code stuck inside C is interrupted when it returns to Python.

    Yields the list of times it fired.  A plug-in cannot swallow it: a call that catches the timeout and
    returns is still a timeout (run_cell reads the list), and the timeout is raised again each second.
    One that catches it RE_RAISES more times is stuck for good: `on_stuck(message)` leaves the cell's
    timeout record (normconf/journal.py) and the process exits (under xdist the worker is replaced and
    the controller reads the record; under -n 0 the next run reports it, with the run, as partial)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    message = f"no result within {seconds:g} s (NORMCONF_CALL_TIMEOUT)"
    fired = []

    def _fire(signum, frame):
        fired.append(time.monotonic())
        if len(fired) > 1 + RE_RAISES:
            signal.setitimer(signal.ITIMER_REAL, 0)
            stuck = f"{message}; the call caught the timeout {RE_RAISES + 1} times, so its process was stopped"
            if on_stuck is not None:
                on_stuck(stuck)
            os._exit(STOPPED_EXIT)
        raise CellTimeout(message if len(fired) == 1 else caught_timeout(seconds))

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cell(adapter, adapter_name: str, case_name: str, expectation, unavailable: str | None,
             fixture=None, on_stuck=None) -> dict:
    """`fixture`: a loaded fixture to use instead of the committed one (re-draws).  `on_stuck(cell)`:
    called with the cell's timeout record just before a stuck call's process is stopped (see deadline)."""
    cell = new_cell(case_name, adapter_name)
    start = time.perf_counter()

    def _stuck(message):
        on_stuck({**cell, "outcome": "timeout", "message": message,
                  "seconds": round(time.perf_counter() - start, 4)})

    try:
        # A remote adapter kills its child on time; a second timer could fire first and leave the child's
        # late answer in the pipe for the next cell.
        guard = (contextlib.nullcontext() if getattr(adapter, "kills_on_timeout", False)
                 else deadline(call_timeout_s(), _stuck if on_stuck else None))
        with guard as fired:
            _judge(cell, adapter, case_name, expectation, unavailable, fixture)
        if fired and cell["outcome"] != "timeout":  # the call caught the timeout and returned late
            raise CellTimeout(caught_timeout(call_timeout_s()))
    except CellTimeout as exc:
        cell.update(outcome="timeout", message=str(exc))
    except Exception as exc:  # a bug in a plug-in adapter must cost one cell, not the run
        cell.update(outcome="error", message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    cell["seconds"] = round(time.perf_counter() - start, 4)
    return cell


@functools.lru_cache(maxsize=None)
def load_fixture(case_name: str, directory=None) -> fixtures.LoadedFixture:
    """A fixture, loaded, hash-checked and compared with golden/reference.py once per process."""
    fx = fixtures.load_case(case_name, directory)
    for i, variant in enumerate(fx.variants):
        cands = cand.for_case(fx.case, fx.inputs, eps=variant["eps"], momentum=variant["momentum"],
                              feature_axis=variant["feature_axis"], groups=variant.get("groups"))
        profile = conventions_only(variant["profile"])
        for name, stored in fx.expected[i].items():
            if scaled_error(cands.output(name, profile), stored, 0.0) > 1e-9:
                raise fixtures.FixtureError(fx.path, f"variant {i} ({name}) disagrees with golden/reference.py: "
                                                     "regenerate with `python -m normconf.golden generate`")
    return fx


def _judge(cell, adapter, case_name, expectation, unavailable, fixture=None):
    if unavailable:
        cell.update(outcome="not_installed", message=unavailable)
        return
    try:
        fx = fixture or load_fixture(case_name)
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
    args = arguments(adapter, fx)
    try:
        outputs = getattr(adapter, args.op)(*args.args)
        _graph(cell, adapter)
    except Unsupported as exc:
        cell.update(outcome="unsupported", message=str(exc))
        return
    except TimeoutError as exc:
        cell.update(outcome="timeout", message=str(exc))
        return _deviation(cell, expectation)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        rule = next((r for r in raises_rules if r.matches(message)), None)
        if rule is not None:
            cell.update(outcome="pass", behaviour="raises", rule=rule.id, message=message)
        else:
            cell.update(outcome="error", behaviour="raises", message=message)
            _deviation(cell, expectation)
        return
    if not isinstance(outputs, dict):
        cell.update(outcome="bad_output", message=f"{cell['adapter']}.{args.op} returned {type(outputs).__name__}, "
                                                  f"not a dict of named outputs (see normconf.api)")
        return _deviation(cell, expectation)
    outputs, problem = steps_form(outputs, case)  # y_train per step (batch sizes that change): joined
    if problem:
        cell.update(outcome="bad_output", message=problem)
        return _deviation(cell, expectation)
    cell["output_dtypes"] = {name: str(np.asarray(v).dtype) for name, v in sorted(outputs.items())}
    if raises_rules:
        cell.update(outcome="fail", message=f"documented to raise ({raises_rules[0].match_text!r}), returned outputs",
                    rule=raises_rules[0].id)
        return _deviation(cell, expectation)
    if case.family == "one_value_per_channel":
        cell["behaviour"] = one_value_behaviour(outputs, fx)
    problem = check_outputs(outputs, fx)
    if problem:
        cell.update(outcome="bad_output", message=problem)
        return _deviation(cell, expectation)
    _compare(cell, fx, outputs, args, expectation, adapter)
    _deviation(cell, expectation)


def _graph(cell, adapter) -> None:
    """What an exporting adapter's graph held (adapters/torch_onnx_adapter.py graph_note), shown per cell."""
    note = getattr(adapter, "graph_note", None)
    note = note() if callable(note) else None
    if note:
        cell["graph"] = note


def check_outputs(outputs, fixture) -> str | None:
    """Why the outputs cannot be compared (missing, wrong shape or dtype), or None."""
    in_dtype = str(fixture.inputs["x"].dtype)
    # RMSNorm with a weight of another dtype may return either (rms_output_dtype)
    dtypes = {in_dtype} | ({str(fixture.inputs["weight"].dtype)} if fixture.case.layer == "rms_norm"
                           and "weight" in fixture.inputs else set())
    for name, shapes in expected_shapes(fixture.case).items():
        if name not in outputs:
            return f"output {name!r} missing"
        got = np.asarray(outputs[name])
        if got.shape not in shapes:
            return f"output {name!r} has shape {got.shape}, expected {' or '.join(map(str, sorted(shapes)))}"
        if name.startswith("y") and str(got.dtype) not in dtypes:
            return f"output {name!r} has dtype {got.dtype}, input was {' or '.join(sorted(dtypes))}"
        if got.dtype.kind != "f" and str(got.dtype) != "bfloat16":
            return f"output {name!r} has non-float dtype {got.dtype}"
    return None


def _compare(cell, fx, outputs, args, expectation, adapter):
    case = fx.case

    def documented(convention):
        doc = expectation.documented_variant(convention, case.layer)
        return None if doc is None else doc["variant"]

    ident = identify(fx, outputs, args, documented)
    failures = []
    for c, v in ident.conventions.items():
        doc = expectation.documented_variant(c, case.layer)
        status = _status(v, doc)
        cell["conventions"][c] = {**v, "expected": doc["variant"] if doc else None,
                                  "cite": doc["cite"] if doc else None, "status": status}
        if status == "disagrees":
            failures.append(("convention", f"{c}: observed {v['observed']}, documented {doc['variant']}"))
        elif status == "unclear":
            best = ident.errors.min()  # inf when the outputs hold NaN or inf: say so, not "infx tolerance"
            off = f"{best:.3g}x tolerance" if math.isfinite(best) else "no finite error: non-finite outputs"
            failures.append(("unclear", f"{c} matches no variant (nearest {v['nearest']}, {off})"))
    for key, m in ident.measured.items():
        doc = expectation.documented_variant(key, case.layer) if key in DEFAULT_KEYS else None
        m["expected"], m["cite"] = (doc["variant"], doc["cite"]) if doc else (None, None)
        m["status"] = _measured_status(key, m, doc, len(case.shape))
        if m["status"] == "disagrees":
            failures.append(("default", f"{key}: measured {m['display']}, documented {doc['variant']}"))
        elif m["status"] == "unclear":
            failures.append(("unclear", f"{key}: {m['display']}"))
        cell["measured"][key] = m
    cell["accuracy"] = accuracy(fx, outputs, ident)
    cell["nonfinite"] = measure.nonfinite(outputs, ident.expected)
    unexpected = [measure.nonfinite_text(o, n) for o, n in cell["nonfinite"].items() if n["unexpected"]]
    if unexpected:
        failures.append(("nonfinite", "; ".join(unexpected) + " where the formula gives numbers"))
    acc = cell["accuracy"]
    if acc["error"] is None or acc["error"] > 1:
        worst = acc["outputs"][acc["worst_output"]]
        shown = "infinitely far" if acc["error"] is None else f"{acc['error']:.3g}x tolerance ({worst['tolerance']:.3g})"
        precision = (f" (computed in {worst['precision']} precision)" if case.dtype == "float64"
                     and worst["precision"] != "float64" else "")
        failures.append(("accuracy", f"misses the reference profile by {shown} in {acc['worst_output']}{precision}"))
    cell["rounding_bias"] = rounding_bias_of(fx, outputs, ident.expected, ident.floors)
    bias = cell["rounding_bias"]
    if bias and bias["ratio"] > 1:
        failures.append(("rounding", f"rounding bias in {bias['output']}: mean signed error {bias['mean_ulp']:+.3f} ULP "
                                     f"from the correctly rounded reference, threshold {bias['threshold']:.3f} "
                                     f"({bias['ratio']:.3g}x): not rounded to nearest"))
    failures += [("contract", m) for m in contracts.violations(adapter, fx, args, outputs,
                                                                      ident.profiles[ident.reference], ident.floors)]
    cell["failures"] = [{"kind": k, "message": m} for k, m in failures]
    if failures:
        cell.update(outcome="fail", message="; ".join(f"{k}: {m}" for k, m in failures))
    else:
        cell.update(outcome="pass", message=f"within tolerance ({acc['error']:.3g}x)")


def _status(v: dict, doc) -> str:
    if v["state"] != "named":
        return {"not_shown": "not-shown", "unclear": "unclear"}[v["state"]]
    if doc is None:
        return "no-doc"
    return "agrees" if v["observed"] == doc["variant"] else "disagrees"


def _measured_status(key: str, m: dict, doc, ndim: int) -> str:
    if m.get("state") == "unclear":
        return "unclear"
    if doc is None:
        return "no-doc"
    if key == "default_feature_axis":
        return "agrees" if m["name"] == axis_name(doc["variant"], ndim) else "disagrees"
    if key == "default_groups":
        return "agrees" if m["value"] == doc["variant"] else "disagrees"
    return "agrees" if measure.agrees(m, float(doc["variant"])) else "disagrees"


def accuracy(fx, outputs, ident) -> dict:
    """Error against the reference profile, per output and overall, in tolerances, ULPs and the
    finest precision whose tolerance covers it (float64 for a float64 computation)."""
    case = fx.case
    per, worst, worst_error = {}, None, -1.0
    cond = fx.meta.get("conditioning", 0.0)
    for name, expected in ident.expected.items():
        tol = fx.tolerances[name]
        err = float(scaled_errors(outputs[name], [expected], ident.floors[name], ignore_nonfinite_actual=True)[0]) / tol
        own = float(scaled_errors(outputs[name], [ident.nearest[name]], ident.floors[name],
                                  ignore_nonfinite_actual=True)[0])
        per[name] = {"error": _finite(err), "tolerance": tol, "dtype": str(np.asarray(outputs[name]).dtype),
                     "precision": precision_of(err * tol, case.reduction_size, cond),
                     # against the profile that fits best: what precision rows judge, conventions aside
                     "own_precision": precision_of(own, case.reduction_size, cond), "own_error": _finite(own / tol)}
        if not math.isfinite(err) or err > worst_error:
            worst, worst_error = name, err if math.isfinite(err) else math.inf
    m = {"max_abs": 0.0, "max_rel": 0.0, "max_ulp": 0.0}
    for name, expected in ident.expected.items():
        got = error_measures(outputs[name], expected, case.dtype)
        m = {k: max(m[k], got[k]) for k in m}
    return {"error": _finite(worst_error), "worst_output": worst, "outputs": per,
            "profile": ident.profiles[ident.reference],
            # how far the outputs are from the documented profile itself: a convention's miss, in tolerances
            "documented_error": _finite(ident.errors[ident.documented]), **{k: _finite(v) for k, v in m.items()}}


def rounding_bias_of(fx, outputs, expected_outputs, floors) -> dict | None:
    """The float16/bfloat16 outputs' mean signed error in ULPs against its threshold (golden/bias.py):
    truncation instead of rounding to nearest stays inside the tolerance but leans one way.  The
    worst output, or None for other dtypes."""
    dtype = str(fx.inputs["x"].dtype)
    if dtype not in HALF:
        return None
    worst = None
    for name, expected in expected_outputs.items():
        if str(np.asarray(outputs[name]).dtype) != dtype:
            continue
        budget = output_budget(fx.tolerances[name], dtype, expected, floors[name])
        mean, threshold = rounding_bias(outputs[name], expected, dtype, budget)
        ratio = abs(mean) / threshold
        if worst is None or ratio > worst["ratio"]:
            worst = {"output": name, "mean_ulp": mean, "threshold": _finite(threshold), "ratio": ratio}
    return worst


def precision_of(scaled: float, n: int, conditioning: float) -> str:
    """The arithmetic an error speaks for: the dtype whose tolerance for this case is nearest in bits
    (below the geometric mean of its tolerance and the next coarser one's).  A float64 computation
    with a float32 constant (eps held as float32) errs by about 1e-13: float64, though over its tolerance."""
    dtypes = list(UNIT_ROUNDOFF)  # fine to coarse
    tols = [tolerance(d, n, conditioning) for d in dtypes]
    for d, tol, coarser in zip(dtypes, tols, tols[1:] + [tols[-1] * 2.0 ** 8]):
        if scaled <= math.sqrt(tol * coarser):
            return d
    return "coarser than bfloat16"


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _deviation(cell, expectation):
    """A known deviation turns its failure into xfail; a listed cell that passes becomes xpass -- except
    a generated case's: its rule names a region (golden/generated.py), and not every draw in it shows."""
    rules = expectation.rules_for(cell["adapter"], cell["case"], "deviation")
    if not rules:
        return
    if cell["outcome"] == "pass" and cell["family"] == "generated":
        return
    if cell["outcome"] == "pass":
        cell.update(outcome="xpass", rule=rules[0].id,
                    message=f"known deviation {rules[0].id} no longer happens: {rules[0].reason}")
        return
    rule = next((r for r in rules if r.matches(cell["message"])), None)
    if rule is not None:
        scope = f" ({rule.versions.text})" if rule.versions else ""
        cell.update(outcome="xfail", rule=rule.id, message=f"{cell['message']} [known{scope}: {rule.reason}]")
