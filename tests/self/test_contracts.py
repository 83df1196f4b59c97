"""The contracts of every call (judge/contracts.py): the caller's arrays unchanged, no state carried
from one call to the next, no dependence on the input's memory layout -- each a failure of its own,
caught inside the cell whatever ran before it in the process."""
import numpy as np

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.judge.contracts import CONTRACT_CASES, fortran_strided, other_values
from normconf.judge.expectations import load_all
from normconf.judge.mutants import MUTANTS_BY_NAME
from normconf.judge.verdict import run_cell

LAYOUT_CASE = "bn2d_nchw"


def _cell(adapter, case):
    return run_cell(adapter, "numpy", case, load_all()[0]["numpy"], None)


def _contract_failures(cell):
    return [f["message"] for f in cell["failures"] if f["kind"] == "contract"]


def test_views_keep_values_and_break_contiguity():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    view = fortran_strided(x)
    assert np.array_equal(view, x) and not view.flags.c_contiguous and not view.flags.f_contiguous
    assert np.array_equal(other_values(np.full(3, 2.0, np.float16)), np.full(3, -3.0, np.float16))


def test_a_correct_adapter_keeps_every_contract():
    assert LAYOUT_CASE in CONTRACT_CASES
    cell = _cell(NumpyAdapter(), LAYOUT_CASE)
    assert cell["outcome"] == "pass" and _contract_failures(cell) == [], cell["message"]


def test_writing_into_the_input_is_named():
    cell = _cell(MUTANTS_BY_NAME["output_written_into_input"].make(), "seed003_ln_3x4")  # any case, any family
    assert any(m.startswith("inputs: the call modified x in place") for m in _contract_failures(cell)), cell["message"]


def test_a_shape_keyed_cache_is_caught_whatever_ran_before():
    mutant = MUTANTS_BY_NAME["statistics_cached_by_shape"]
    fresh = _cell(mutant.make(), LAYOUT_CASE)
    warmed = mutant.make()
    _cell(warmed, "bn2d_nhwc")  # another case first, as a worker process might have run it
    _cell(warmed, LAYOUT_CASE)
    again = _cell(warmed, LAYOUT_CASE)
    for cell in (fresh, again):
        assert any(m.startswith("state:") for m in _contract_failures(cell)), cell["message"]


def test_reading_memory_in_storage_order_is_a_layout_failure():
    cell = _cell(MUTANTS_BY_NAME["input_read_in_storage_order"].make(), LAYOUT_CASE)
    assert cell["accuracy"]["error"] <= 1  # its first call, C-contiguous, is right
    assert [m.split(":")[0] for m in _contract_failures(cell)] == ["layout"], cell["message"]
