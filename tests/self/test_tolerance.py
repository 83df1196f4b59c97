"""The per-output tolerance, the rounding-bias check, and the correct implementations they must hold."""
import math

import ml_dtypes
import numpy as np
import pytest

from normconf.adapters.correct import implementations
from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden import fixtures
from normconf.golden.bias import rounding_bias
from normconf.golden.cases import CASES
from normconf.golden.tolerance import (
    C_BUF,
    C_OUT,
    UNIT_ROUNDOFF,
    base_tolerance,
    buffer_roundings,
    output_floors,
    scaled_error,
    tolerances,
    ulp_of,
)
from normconf.judge.expectations import load_all
from normconf.judge.verdict import run_cell

U16, U32 = UNIT_ROUNDOFF["float16"], UNIT_ROUNDOFF["float32"]


def test_buffer_roundings_sum_the_decayed_steps():
    assert buffer_roundings(3, 0.1) == pytest.approx(1 + 0.9 + 0.81)
    assert buffer_roundings(1, 1.0) == 1.0
    assert buffer_roundings(8, None) == pytest.approx(4.5)  # cumulative average: sum of j/t over 8 steps


def test_each_output_is_charged_for_what_it_goes_through():
    ln = tolerances("float16", 64, 100.0)
    assert ln == {"y": base_tolerance("float16", 64, 100.0)}  # LayerNorm: conditioning at float32 only
    bn = tolerances("float16", 64, 100.0, layer="batch_norm", steps=3, weights=(0.1,), eval_offset=2.0)
    base = base_tolerance("float16", 64, 100.0)
    assert bn["y_train"] == pytest.approx(base + C_OUT * U16 * 100.0)
    assert bn["running_var"] == pytest.approx(base + C_BUF * U16 * 2.71)
    assert bn["y_eval"] == pytest.approx(base + C_BUF * U16 * 2.71 * 3.0)
    single = tolerances("float16", 64, 0.0, layer="batch_norm", steps=1, weights=(1.0,))
    assert single["running_mean"] == pytest.approx(base_tolerance("float16", 64) + U16)  # one rounding
    f32 = tolerances("float32", 64, 100.0, layer="batch_norm", steps=3, weights=(0.1,))
    assert f32["y_train"] == base_tolerance("float32", 64, 100.0)  # no output-precision term for float32


def test_fixture_tolerance_is_the_largest_of_its_outputs():
    for name in CASES:
        meta = fixtures.load_case(name).meta
        assert set(meta["tolerances"]) == set(meta["outputs"]), name
        assert meta["tolerance"] == max(meta["tolerances"].values()), name


def test_golden_stays_under_5_mb():
    size = sum(p.stat().st_size for p in fixtures.golden_dir().iterdir())
    assert size < 5_000_000, f"golden/data is {size / 1e6:.2f} MB"


# ---- the error at each output's own scale ---------------------------------------------------------

def test_scale_floors_are_the_outputs_own_units():
    x = np.array([[1.0, 3.0], [1.0, 3.0]])  # std 1
    gamma = np.array([1e-4, -2e-4])
    assert output_floors("layer_norm", {"x": x, "gamma": gamma}, 1e-5) == {"y": 2e-4}
    assert output_floors("layer_norm", {"x": x}, 1e-5) == {"y": 1.0}  # no affine: unit-variance z
    assert output_floors("batch_norm", {"x": x[None], "gamma": gamma}, 1e-3) == {
        "y_train": 2e-4, "y_eval": 2e-4, "running_mean": 1.0, "running_var": 1e-3}


def test_an_error_in_small_outputs_is_measured_at_their_scale():
    expected = 1e-4 * np.random.default_rng(0).standard_normal(64)
    off = expected + 0.6 * np.sqrt(np.mean(expected ** 2))  # 60 % of their RMS
    assert scaled_error(off, expected, 0.0) > 0.2          # the old floor of 1 scored it 6e-5
    assert scaled_error(off, expected, 1.0) < 1e-4
    assert scaled_error(np.zeros(3), np.zeros(3), 0.0) == 0  # exact zeros at a zero scale
    assert scaled_error(np.full(3, 1e-30), np.zeros(3), 0.0) == math.inf


class _RunningMeanOff(NumpyAdapter):
    """A running mean 1 % of its RMS off: 0.04 tolerances at a floor of 1 on inputs of size 1e-4."""

    def batch_norm_steps(self, *args):
        out = super().batch_norm_steps(*args)
        rm = out["running_mean"]
        return {**out, "running_mean": (rm + 0.01 * np.sqrt(np.mean(rm.astype(np.float64) ** 2))).astype(rm.dtype)}


def test_the_judge_catches_an_error_in_tiny_running_statistics():
    cell = run_cell(_RunningMeanOff(), "numpy", "stress_bn_tiny_scale", load_all()[0]["numpy"], None)
    assert cell["outcome"] == "fail" and "in running_mean" in cell["message"], cell["message"]


# ---- rounding bias -------------------------------------------------------------------------------

def _directed(values, dtype, toward_zero):
    """values rounded toward zero or toward -inf on the dtype's grid (exact in float64, then stored)."""
    step = ulp_of(values, dtype)
    mag = np.floor(np.abs(values) / step) * step
    out = np.sign(values) * mag if toward_zero else np.floor(values / step) * step
    return out.astype(np.float16 if dtype == "float16" else ml_dtypes.bfloat16)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_bias_separates_round_to_nearest_from_truncation(dtype):
    np_dtype = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    exact = np.random.default_rng(0).standard_normal(4000)
    mean, threshold = rounding_bias(exact.astype(np_dtype), exact, dtype, budget=1e-7)
    assert mean == 0.0 and threshold == pytest.approx(3 / math.sqrt(4000), rel=0.05)
    for toward_zero in (True, False):
        mean, threshold = rounding_bias(_directed(exact, dtype, toward_zero), exact, dtype, budget=1e-7)
        assert mean == pytest.approx(-0.5, abs=0.03) and abs(mean) > 5 * threshold


def test_bias_is_measured_from_the_correctly_rounded_reference():
    # Inputs on the output's own grid through a map close to the identity: the exact values sit at the same
    # place inside their ULPs, so a correct rounding leans one way against them, never against RN(exact).
    x = np.random.default_rng(1).standard_normal(4000).astype(ml_dtypes.bfloat16).astype(np.float64)
    exact = x * 1.0001 + 0.001
    rn = exact.astype(ml_dtypes.bfloat16)
    plain = np.mean((rn.astype(np.float64) - exact) / ulp_of(exact, "bfloat16"))
    mean, threshold = rounding_bias(rn, exact, "bfloat16", budget=1e-7)
    assert abs(plain) > threshold and mean == 0.0


def test_bias_leaves_out_elements_the_computation_may_move_by_half_an_ulp():
    exact = np.array([1e-6, 1.0, -1.0])
    assert rounding_bias(exact.astype(np.float16), exact, "float16", budget=1.0) == (0.0, math.inf)


# ---- correct implementations pass everything ----------------------------------------------------

@pytest.mark.parametrize("name", sorted(implementations()))
def test_correct_implementation_passes_every_case(name):
    adapter = implementations()[name]
    expectation = load_all()[0]["numpy"]
    failed = {}
    for case in CASES:
        cell = run_cell(adapter, "numpy", case, expectation, None)
        if cell["outcome"] != "pass":
            failed[case] = cell["message"][:200]
    assert failed == {}
