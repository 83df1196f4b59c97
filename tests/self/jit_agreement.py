"""Compiled vs eager: every golden case through each jitted JAX adapter and its eager variant, and through
torch's modules under torch.compile and eagerly, judged as the suite judges them, with the difference
between the two outputs in the case's tolerance units.

    python -m tests.self.jit_agreement          # the table of findings, per adapter and case

XLA (and inductor) fuse a compiled program (a reduction and the divide after it, rsqrt and the affine step, ...), so the
two runs may round differently.  The findings say by how much; tests/self/test_jit_agreement.py asserts
that no verdict changes and that on every passing cell the outputs stay within one tolerance of each other.
"""
from __future__ import annotations

import sys

import numpy as np

from normconf.adapters.registry import OPS, get
from normconf.golden.cases import CASES
from normconf.golden.generate import case_floors
from normconf.golden.ragged import steps_form
from normconf.golden.tolerance import scaled_error
from normconf.judge.expectations import load_all
from normconf.judge.verdict import load_fixture, run_cell

PAIRS = {"flax_linen": "flax_linen[eager]", "flax_nnx": "flax_nnx[eager]", "keras[jax]": "keras[jax][eager]",
         "torch[compile]": "torch", "torch[onnx]": "torch", "keras[tensorflow][xla]": "keras[tensorflow]",
         "keras[tensorflow][function]": "keras[tensorflow]"}
VERDICT = ("outcome", "behaviour", "rule")


class Recorder:
    """Forwards to an adapter and keeps what its last operation returned: one call gives the verdict
    (through run_cell) and the arrays."""

    def __init__(self, adapter):
        self._adapter, self.outputs = adapter, None

    def __getattr__(self, name):
        attr = getattr(self._adapter, name)
        if name not in OPS:
            return attr

        def op(*args, **kwargs):
            self.outputs = None
            self.outputs = attr(*args, **kwargs)
            return self.outputs
        return op


def judged(adapter_name: str, case: str, expectation) -> tuple[dict, dict | None]:
    recorder = Recorder(get(adapter_name))
    return run_cell(recorder, adapter_name, case, expectation, None), recorder.outputs


def verdict(cell: dict) -> dict:
    """What the matrix and the outcome show: the outcome, each convention's reading and each measured
    default's name; how far an output is off is a figure, not a verdict."""
    out = {k: cell[k] for k in VERDICT}
    out["conventions"] = {c: v["observed"] for c, v in cell["conventions"].items()}
    out["measured"] = {k: m["name"] for k, m in cell["measured"].items()}
    return out


def compare_pair(jit_name: str, case_names=None) -> list[dict]:
    """One row per case: both verdicts, the worst output difference in tolerances, bitwise equality."""
    expectations = load_all()[0]
    rows = []
    for case in sorted(case_names or CASES):
        jit_cell, jit_out = judged(jit_name, case, expectations[jit_name])
        eager_cell, eager_out = judged(PAIRS[jit_name], case, expectations[PAIRS[jit_name]])
        row = {"case": case, "jit": verdict(jit_cell), "eager": verdict(eager_cell),
               "tolerances": None, "output": None, "bitwise": None, "dtypes_equal": None}
        if jit_out is not None and eager_out is not None and jit_cell["tolerance"]:
            fx = load_fixture(case)
            floors = case_floors(fx.case, fx.inputs)
            jit_out, eager_out = (steps_form(o, CASES[case])[0] for o in (jit_out, eager_out))  # ragged y_train
            diffs = {k: scaled_error(jit_out[k], eager_out[k], floors[k]) / jit_cell["tolerance"] for k in eager_out}
            row["output"] = max(diffs, key=diffs.get)
            row.update(tolerances=diffs[row["output"]],
                       bitwise=all(np.array_equal(np.ascontiguousarray(jit_out[k]).view(np.uint8),
                                                  np.ascontiguousarray(eager_out[k]).view(np.uint8))
                                   for k in eager_out),
                       dtypes_equal=all(np.asarray(jit_out[k]).dtype == np.asarray(eager_out[k]).dtype
                                        for k in eager_out))
        rows.append(row)
    for name in (jit_name, PAIRS[jit_name]):
        close = getattr(get(name), "close", None)  # a Keras child process
        if close:
            close()
    return rows


def summary(jit_name: str, rows: list[dict], top: int = 8) -> str:
    measured = sorted((r for r in rows if r["tolerances"] is not None), key=lambda r: -r["tolerances"])
    passing = [r["tolerances"] for r in measured if r["jit"]["outcome"] == "pass"]
    lines = [f"{jit_name} vs {PAIRS[jit_name]}: {len(measured)} cases compared, "
             f"{sum(bool(r['bitwise']) for r in measured)} bitwise equal; worst difference "
             f"{max(passing, default=0):.3g} tolerances on passing cells, "
             f"{measured[0]['tolerances'] if measured else 0:.3g} overall"]
    for r in measured[:top]:
        lines.append(f"  {r['tolerances']:12.4g} tol  {r['case']:32s} {r['output']:13s} {r['jit']['outcome']}")
    changed = [r["case"] for r in rows if r["jit"] != r["eager"]]
    lines.append(f"  verdicts that differ: {', '.join(changed) or 'none'}")
    return "\n".join(lines)


def main() -> int:
    for jit_name in PAIRS:
        print(summary(jit_name, compare_pair(jit_name), top=len(CASES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# gradient cells (issue 23): compiled adapter -> its eager twin
GRADIENT_PAIRS = {"torch[compile]": "torch"}


def gradient_judged(adapter_name: str, case: str, expectation) -> tuple[dict, dict | None]:
    from normconf.judge.gradients import run_gradient_cell
    recorder = Recorder(get(adapter_name))
    return run_gradient_cell(recorder, adapter_name, case, expectation, None), recorder.outputs


def compare_gradient_pair(jit_name: str, case_names=None) -> list[dict]:
    """As compare_pair, on the gradient cases: the verdict is the outcome and the conventions identified; the
    difference of each output (y, dx, the parameters' gradients) is in its own tolerance."""
    from normconf.golden.gradient_cases import GRADIENT_CASES
    from normconf.judge.gradients import load
    expectations = load_all()[0]
    eager = GRADIENT_PAIRS[jit_name]
    rows = []
    for case in sorted(case_names or GRADIENT_CASES):
        cells = {name: gradient_judged(name, case, expectations.get(name)) for name in (jit_name, eager)}
        jit_out, eager_out = cells[jit_name][1], cells[eager][1]
        row = {"case": case, **{side: {"outcome": c["outcome"], "conventions": c["conventions"]}
                                for side, (c, _) in (("jit", cells[jit_name]), ("eager", cells[eager]))},
               "tolerances": None, "output": None, "bitwise": None, "dtypes_equal": None}
        if jit_out is not None and eager_out is not None:
            fx = load(case)
            diffs = {k: scaled_error(jit_out[k], eager_out[k], fx.floors[k]) / fx.tolerances[k] for k in fx.tolerances}
            row["output"] = max(diffs, key=diffs.get)
            row.update(tolerances=diffs[row["output"]],
                       bitwise=all(np.array_equal(np.asarray(jit_out[k]), np.asarray(eager_out[k])) for k in diffs),
                       dtypes_equal=all(np.asarray(jit_out[k]).dtype == np.asarray(eager_out[k]).dtype for k in diffs))
        rows.append(row)
    return rows
