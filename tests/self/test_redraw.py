"""scripts/redraw.py: re-draws are reproducible and other than the committed draw, correct code raises no
alarm on them, and a bug does."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

from normconf.adapters.correct import implementations
from normconf.golden import fixtures
from normconf.golden.cases import CASES
from normconf.judge.expectations import load_all
from normconf.judge.mutants import MUTANTS_BY_NAME

_spec = importlib.util.spec_from_file_location("redraw", Path(__file__).resolve().parents[2] / "scripts" / "redraw.py")
redraw = sys.modules.setdefault("redraw", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(redraw)

SOME = ["seed003_bn_3x4", "dtype_ln_bfloat16_offset100", "dtype_bn_float16", "bn_steps_10", "probe_momentum_form",
        "stress_bn_one_value_per_channel", "probe_default_eps_bn"]


def test_draws_are_reproducible_and_new():
    a, b = redraw.draw(CASES["bn1d_nc"], 1), redraw.draw(CASES["bn1d_nc"], 1)
    committed = fixtures.load_case("bn1d_nc").inputs["x"]
    assert np.array_equal(a.inputs["x"], b.inputs["x"]) and not np.array_equal(a.inputs["x"], committed)


def test_correct_implementations_raise_no_alarm():
    numpy_expectation = load_all()[0]["numpy"]
    chosen = {name: (impl, numpy_expectation) for name, impl in implementations().items()}
    cells = redraw.redraw([CASES[n] for n in SOME], 2, chosen)
    assert [c for c in cells if c.status == "alarm"] == []
    assert any(c.status == "documented" for c in cells)  # one value per channel raises, as numpy.toml says
    assert any(k.endswith(" bias") for c in cells for k in c.ratios)  # float16/bfloat16 outputs: bias judged


def test_a_bug_is_an_alarm():
    numpy_expectation = load_all()[0]["numpy"]
    for mutant, case in (("mean_in_input_dtype", "dtype_ln_bfloat16_offset100"),
                         ("output_truncated_toward_zero", "dtype_ln_bfloat16_long")):
        cell = redraw.run_cell(MUTANTS_BY_NAME[mutant].make(), "numpy", numpy_expectation,
                               redraw.draw(CASES[case], 1), 1)
        assert cell.status == "alarm", (mutant, cell)


def test_the_tolerance_studys_truncation_line_judges_the_committed_fixtures():
    spec = importlib.util.spec_from_file_location("tolerance_study", Path(redraw.__file__).with_name("tolerance_study.py"))
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)  # imports `redraw`, registered above
    figures = dict(item.rsplit(" ", 1) for item in study.truncation_bias().split(", "))
    assert float(figures["dtype_ln_bfloat16_long"]) > 3, figures  # the README's 5.3 thresholds
