"""Gradient cells (issue 23): one adapter call returns y, dx, dgamma, dbeta for a gradient fixture's
cotangent (golden/gradient_fixtures.py); each is judged at its own derived tolerance, and each gradient
convention the case shows is identified (the variant whose outputs lie within tolerance, if any).

A framework that raises is a failure whose message carries the error (a known deviation may name it);
an adapter without the operation, or one that raises Unsupported, is unsupported.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time

import numpy as np

from normconf.adapters.base import Unsupported, call_timeout_s
from normconf.golden import gradient_fixtures as gf
from normconf.golden.gradient_cases import GRADIENT_CONVENTIONS
from normconf.golden.tolerance import scaled_errors
from normconf.judge.verdict import CellTimeout, _deviation, deadline

# the matrix rows a gradient case answers (gradient_cases.GradCase.row), as the report names them
ROWS = {"basic": "gradient through the statistics", "dtype": "dtype", "accumulation": "dgamma/dbeta accumulation",
        "offset": "accuracy at large offsets", "eval": "eval-mode gradient"}


OPERATION = {"layer_norm": "layer_norm_grad", "rms_norm": "rms_norm_grad"}  # else batch_norm_grad


@functools.lru_cache(maxsize=None)
def load(case_name: str) -> gf.GradFixture:
    return gf.load_case(case_name)


def call(adapter, fx: gf.GradFixture) -> dict:
    """The adapter's gradient operation on the fixture's inputs (its own copies: an adapter may not modify them)."""
    i = {k: np.array(v) for k, v in fx.inputs.items()}
    case = fx.case
    if case.layer == "rms_norm":
        op = getattr(adapter, "rms_norm_grad", None)
        args = (i["x"], case.axes, i["weight"], case.eps, i["dy"])
        kwargs = {}
    elif case.layer == "layer_norm":
        op = getattr(adapter, "layer_norm_grad", None)
        args = (i["x"], case.axes, i["gamma"], i["beta"], case.eps, i["dy"])
        kwargs = {}
    else:
        op = getattr(adapter, "batch_norm_grad", None)
        args = (i["x"], case.axes[0], i["gamma"], i["beta"], case.eps, i["dy"])
        kwargs = {"running_mean": i.get("running_mean"), "running_var": i.get("running_var")}
    if op is None:
        raise Unsupported(f"{adapter.name} has no {OPERATION.get(case.layer, 'batch_norm_grad')}")
    return op(*args, **kwargs)


def ratios(outputs: dict, expected: dict, fx: gf.GradFixture) -> dict[str, float]:
    """Output name -> scaled error / tolerance (inf for a missing, misshapen or non-finite output)."""
    out = {}
    for k in gf.outputs_of(fx.case.layer):
        if k not in outputs:
            out[k] = math.inf
            continue
        err = scaled_errors(np.asarray(outputs[k]).reshape(np.shape(outputs[k])), [expected[k]], fx.floors[k])[0]
        out[k] = float(err) / fx.tolerances[k]
    return out


def identify(outputs: dict, fx: gf.GradFixture) -> dict[str, str]:
    """Shown convention -> the variant within tolerance on every gradient (y is the forward's), else "neither"."""
    return {c: variant for c, (variant, _) in _identified(outputs, fx).items()}


def _identified(outputs: dict, fx: gf.GradFixture) -> dict[str, tuple[str, str | None]]:
    """Shown convention -> (the gradients' variant or "neither", the forward's: the one variant whose y alone is
    within tolerance, None where y does not tell the variants apart)."""
    found = {}
    for convention in fx.case.shows:
        backward, forward = "neither", []
        for variant in GRADIENT_CONVENTIONS[convention]:
            r = ratios(outputs, gf.backward(fx.case, fx.inputs, {convention: variant}).outputs, fx)
            if backward == "neither" and max(v for k, v in r.items() if k != "y") <= 1.0:
                backward = variant
            if r["y"] <= 1.0:
                forward.append(variant)
        found[convention] = (backward, forward[0] if len(forward) == 1 else None)
    return found


def _mismatched(found: dict) -> list[str]:
    """The forward follows one variant and the backward another (a backward written apart from its forward)."""
    return [f"the backward follows {c} {b}, its forward {f}" for c, (b, f) in found.items()
            if f is not None and b != f]


def new_cell(case_name: str, adapter_name: str) -> dict:
    return {"case": case_name, "adapter": adapter_name, "family": "gradient", "outcome": "error", "message": "",
            "ratios": {}, "conventions": {}, "output_dtypes": {}, "rule": None, "seconds": None}


def run_gradient_cell(adapter, adapter_name: str, case_name: str, expectation, unavailable: str | None,
                      fixture: gf.GradFixture | None = None) -> dict:
    cell = new_cell(case_name, adapter_name)
    start = time.perf_counter()
    try:
        guard = (contextlib.nullcontext() if getattr(adapter, "kills_on_timeout", False)
                 else deadline(call_timeout_s()))
        with guard:
            _judge(cell, adapter, fixture or load(case_name), unavailable)
    except CellTimeout as exc:
        cell.update(outcome="timeout", message=str(exc))
    if expectation is not None and cell["outcome"] in ("pass", "fail"):
        _deviation(cell, expectation)
    cell["seconds"] = round(time.perf_counter() - start, 4)
    return cell


def _judge(cell, adapter, fx, unavailable):
    if unavailable:
        cell.update(outcome="not_installed", message=unavailable)
        return
    try:
        outputs = call(adapter, fx)
    except Unsupported as exc:
        cell.update(outcome="unsupported", message=str(exc))
        return
    except CellTimeout:
        raise
    except Exception as exc:  # the framework's own error is its answer to the case
        cell.update(outcome="fail", message=f"raised {type(exc).__name__}: {str(exc)[:400]}")
        return
    cell["output_dtypes"] = {k: str(np.asarray(v).dtype) for k, v in outputs.items()}
    r = ratios(outputs, fx.expected, fx)
    cell["ratios"] = {k: (v if math.isfinite(v) else None) for k, v in r.items()}
    bad = [k for k in gf.outputs_of(fx.case.layer) if not r[k] <= 1.0]
    precision = _precision(outputs, fx) if bad else None
    found = _identified(outputs, precision or fx)  # at the precision it computed in
    cell["conventions"] = {c: variant for c, (variant, _) in found.items()}
    shown = "; ".join(f"{c}: {v}" for c, v in cell["conventions"].items())
    if not bad:
        cell.update(outcome="pass", message=f"within tolerance (worst {max(r.values()):.2g} of it); {shown}")
        return
    parts = [f"{k} {_times(r[k])} the tolerance {fx.tolerances[k]:.2g}" for k in bad]
    wrong = [f"{c} is {v}, documented {GRADIENT_CONVENTIONS[c][0]}" for c, v in cell["conventions"].items()
             if v != GRADIENT_CONVENTIONS[c][0]]
    cell.update(outcome="fail", message="; ".join(["off in " + ", ".join(parts), *wrong, *_mismatched(found),
                                                   *(["computed in float32 precision"] if precision else [])]))


def _precision(outputs, fx) -> gf.GradFixture | None:
    """The fixture at float32's tolerances, when a float64 case's outputs are all within them (else None)."""
    if fx.case.dtype != "float64":
        return None
    as32 = gf.GradFixture(fx.case, fx.inputs, fx.expected, gf.case_tolerances(fx.case, "float32", fx.conditioning),
                          fx.floors, fx.conditioning, fx.margins)
    return as32 if max(ratios(outputs, fx.expected, as32).values()) <= 1.0 else None


def _times(ratio: float) -> str:
    return "non-finite or missing, vs" if not math.isfinite(ratio) else f"{ratio:.3g} x"
