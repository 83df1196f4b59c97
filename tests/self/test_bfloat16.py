"""The fixtures' own bfloat16 rounding (golden/bfloat16.py): round-to-nearest-even through float32,
whatever ml_dtypes release is installed."""
import numpy as np
import pytest

from normconf.golden import generate
from normconf.golden.bfloat16 import bfloat16_bits, to_bfloat16
from normconf.golden.cases import CASES

ONE = 1.0
HALF_ULP = 2.0 ** -8  # bfloat16 keeps 8 significant bits: its spacing at 1 is 2^-7


def _direct_rne(values: np.ndarray) -> np.ndarray:
    """float64 rounded to 8 significant bits in one step (normal range only), as float64."""
    mantissa, exponent = np.frexp(values)
    return np.ldexp(np.round(mantissa * 256.0), exponent - 8)  # np.round: halves to even


@pytest.mark.parametrize("value, bits", [
    (ONE, 0x3F80),
    (ONE + HALF_ULP, 0x3F80),          # a tie goes to the even neighbour, 1.0
    (ONE + 3 * HALF_ULP, 0x3F82),      # a tie goes to the even neighbour, 1 + 2^-6
    (-(ONE + 3 * HALF_ULP), 0xBF82),
    (ONE + HALF_ULP + 2.0 ** -20, 0x3F81),  # above the tie: up
    (2.0 ** -133, 0x0001),             # the smallest subnormal
    (2.0 ** -134, 0x0000),             # half of it: a tie, to even (zero)
    (3.4e38, 0x7F80),                  # past bfloat16's largest finite value: inf
    (np.inf, 0x7F80), (-np.inf, 0xFF80), (-0.0, 0x8000),
])
def test_round_to_nearest_even_bits(value, bits):
    assert int(bfloat16_bits(np.array([value]))[0]) == bits


def test_nan_stays_a_quiet_nan_with_its_sign():
    bits = bfloat16_bits(np.array([np.nan, -np.nan]))
    assert [int(b) for b in bits] == [0x7FC0, 0xFFC0]
    assert np.isnan(to_bfloat16(np.array([np.nan])).astype(np.float64)).all()


def test_float32_step_decides_a_double_rounding():
    # 1 + 2^-8 + 2^-30 lies above the bfloat16 midpoint, but float32 rounds it onto the midpoint: the
    # fixtures' rounding then goes to even (1.0) where a direct rounding (ml_dtypes 0.7) goes up.
    value = np.array([ONE + HALF_ULP + 2.0 ** -30])
    assert _direct_rne(value)[0] == ONE + 2 * HALF_ULP
    assert int(bfloat16_bits(value)[0]) == 0x3F80


def test_long_bfloat16_fixture_input_is_the_float32_path_rounding():
    # the case where the two roundings part (1 of 16,384 values): the generator must give the
    # committed float32-path value there, not whatever the installed ml_dtypes' cast gives
    case = CASES["dtype_ln_bfloat16_long"]
    draw = generate._draw(case, case.rng(), case.shape)
    x = generate.make_inputs(case)["x"].astype(np.float64)
    parts = np.flatnonzero(_direct_rne(draw) != x)
    assert parts.size >= 1
    via_float32 = _direct_rne(draw.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(x, via_float32)
