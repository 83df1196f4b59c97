"""Can the checks fail?  Every mutant (judge/mutants.py) through every golden case; the kill table
goes into results.json and the report."""
import pytest

from normconf.golden.cases import CASES
from normconf.judge.mutants import MUTANTS, kill_record, unavailable


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_caught(mutant, request):
    if "numpy" not in request.config.normconf.adapters:
        pytest.skip("mutants are built on the numpy adapter, which --frameworks left out")
    reason = unavailable(mutant)
    if reason:
        pytest.skip(f"mutant {mutant.name} wraps a framework that is not installed: {reason}")
    left_out = set(request.config.getoption("--without-family"))
    row = kill_record(mutant, [name for name, case in CASES.items() if case.family not in left_out])
    request.node.user_properties.append(("normconf_mutant", row))
    assert row["killed"], f"mutant {mutant.name} ({mutant.bug}) SURVIVED every check"
    assert row["named"], (f"mutant {mutant.name} was caught by {row['caught_by']} but no check named "
                          f"{mutant.breaks!r}")
