"""Meta-tests: the conformance checks catch every mutant, name what it broke, and raise no false alarm."""
import pytest

from judge.expectations import load_all
from adapters.numpy_adapter import NumpyAdapter
from golden.cases import CASES
from judge.verdict import run_cell
from tests.self.mutants import MUTANTS, MUTANTS_BY_NAME, kill_record, unavailable


def test_catalog_has_at_least_25_mutants():
    assert len(MUTANTS) >= 25
    assert len(MUTANTS_BY_NAME) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_and_named(mutant, request):
    if unavailable(mutant):
        pytest.skip(unavailable(mutant))
    left_out = set(request.config.getoption("--without-family"))
    row = kill_record(mutant, [n for n, c in CASES.items() if c.family not in left_out])
    assert row["killed"], f"SURVIVED: {mutant.name} ({mutant.bug}) with families {sorted(left_out)} left out"
    assert row["named"], f"{mutant.name} caught by {row['caught_by']}, none naming {mutant.breaks!r}"
    verdicts = [c for c in row["named_by"] if row["outcomes"][c] != "error"]
    assert mutant.raises or verdicts, f"{mutant.name} was only caught by crashing: {row['outcomes']}"


def test_unmutated_numpy_adapter_raises_no_false_alarm():
    expectation = load_all()[0]["numpy"]
    outcomes = {name: run_cell(NumpyAdapter(), "numpy", name, expectation, None) for name in CASES}
    assert {n: c["message"] for n, c in outcomes.items() if c["outcome"] != "pass"} == {}


def test_removing_the_one_value_per_channel_cases_lets_mutants_survive():
    kept = [n for n, c in CASES.items() if c.family != "one_value_per_channel"]
    survivors = sorted(m.name for m in MUTANTS if not unavailable(m) and not kill_record(m, kept)["killed"])
    assert survivors == ["one_value_returns_input"], survivors
