"""Conventions are identified jointly: an implementation that differs from the base profile in any
combination of BatchNorm conventions is named right in every one of them, by the matrix built from
the whole catalog (the 1e5-element cases are left out for time: they show nothing the others do not)."""
import itertools

import pytest

from adapters.numpy_adapter import NumpyAdapter
from golden.cases import CASES
from golden.reference import CONVENTIONS, LAYER_CONVENTIONS
from judge.expectations import Expectation, load_all
from judge.verdict import run_cell
from reports.matrix import build_matrix

# Every variant the numpy adapter can express; momentum_form's third variant, the cumulative
# average, is what any adapter does with momentum=None (bn_cumulative), not a profile setting.
EXPRESSIBLE = {c: CONVENTIONS[c] for c in LAYER_CONVENTIONS["batch_norm"]}
EXPRESSIBLE["momentum_form"] = ("weight_on_new", "weight_on_old")
COMBINATIONS = [dict(zip(EXPRESSIBLE, values)) for values in itertools.product(*EXPRESSIBLE.values())]
CATALOG = sorted(name for name, case in CASES.items() if case.family != "long")


def test_every_combination_is_counted(capsys):
    assert len(COMBINATIONS) == 2 * 2 * 2 * 2 * 2 * 2 * 3 == 192
    with capsys.disabled():
        print(f"\njoint identification: {len(COMBINATIONS)} combinations of {len(EXPRESSIBLE)} BatchNorm conventions "
              f"x {len(CATALOG)} cases")


@pytest.mark.parametrize("profile", COMBINATIONS, ids=lambda p: "-".join(v[:6] for v in p.values()))
def test_matrix_names_every_convention_of_the_combination(profile):
    adapter = NumpyAdapter(profile, name="combo")
    raising = load_all()[0]["numpy"].outcomes  # one value per channel raises with an unbiased running variance
    expectation = Expectation("combination", ("combo",), {c: {"variant": v, "cite": "-"} for c, v in profile.items()},
                              outcomes=[r for r in raising if profile["running_variance"] == "unbiased"])
    cells = [run_cell(adapter, "combo", case, expectation, None) for case in CATALOG]
    errors = [f"{c['case']}: {c['message'][:200]}" for c in cells if c["outcome"] in ("error", "bad_output", "timeout")]
    assert not errors
    rows = {r["row"]: r["cells"]["combo"] for r in build_matrix(cells, ["combo"])["rows"]}
    named = {c: rows[c]["observed"] for c in profile}
    assert named == profile, {c: (named[c], rows[c].get("unclear")) for c in profile if named[c] != profile[c]}
    unclear = {c: rows[c]["unclear"] for c in profile if rows[c]["unclear"]}
    assert not unclear, f"matches no variant in {unclear}"
