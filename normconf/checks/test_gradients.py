"""Gradient cells (issue 23): every gradient case (golden/gradient_cases.py) through every selected adapter's
own autodiff, judged against the float64 reference gradients (judge/gradients.py)."""
import pytest

from normconf.judge.gradient_mutants import GRADIENT_MUTANTS, gradient_kill_record
from normconf.judge.gradients import run_gradient_cell


def test_gradients(gradient_case, adapter_name, request):
    session = request.config.normconf
    cell = run_gradient_cell(session.adapters[adapter_name], adapter_name, gradient_case,
                             session.expectations.get(adapter_name), session.unavailable(adapter_name))
    request.node.user_properties.append(("normconf_gradient_cell", cell))
    outcome = cell["outcome"]
    if outcome in ("not_installed", "unsupported"):
        pytest.skip(f"{outcome}: {cell['message']}")
    if outcome == "xfail":
        pytest.xfail(cell["message"])
    assert outcome == "pass", f"{adapter_name} on {gradient_case}: {outcome}: {cell['message']}"


@pytest.mark.parametrize("mutant", GRADIENT_MUTANTS, ids=lambda m: m.name)
def test_gradient_mutant_is_caught(mutant, request):
    if "numpy" not in request.config.normconf.adapters:
        pytest.skip("gradient mutants are built on the numpy adapter, which --frameworks left out")
    row = gradient_kill_record(mutant)
    assert row["killed"], f"gradient mutant {mutant.name} ({mutant.bug}) SURVIVED every gradient cell"
    assert row["named"], f"gradient mutant {mutant.name} was caught by {row['caught_by']} but no cell named {mutant.breaks!r}"
