"""Implementations the suite was not built around (issue 18): synthetic numpy adapters with unusual mixes
of conventions and defaults, some following a rule no profile lists, run through the whole catalog (the
1e5-element cases left out for time).  Every convention and default row of the matrix is either right or
honestly unclear, mixed or not shown; no number outside its parameter's domain appears in a cell, in the
measured records or in the porting guide."""
import math
import re

import pytest

from normconf.adapters.numpy_adapter import PYTORCH_PROFILE, NumpyAdapter
from normconf.golden.cases import CASES
from normconf.judge import measure
from normconf.judge.expectations import Expectation, load_all
from normconf.judge.verdict import run_cell
from normconf.reports.matrix import CONVENTION_ROWS, FACTOR_ROW, build_matrix
from normconf.reports.porting import guide, like_lines
from tests.self.test_honest_readings import _FirstBatchStart
from tests.self.test_honest_readings import _RunningNormalizedTwiceUpdated as _TwiceUpdated

CATALOG = sorted(name for name, case in CASES.items() if case.family != "long")
HONEST = ("unclear", "mixed", "not-shown", "not-run")
EPS_ROWS = {"default eps (LayerNorm)", "default eps (BatchNorm)"}
MOMENTUM = "default momentum (BatchNorm, weight on the new batch)"
NOT_LISTED = None  # the truth of a convention an implementation follows no listed variant of


# name -> (adapter class, profile overrides, truths that differ from the profile's own variants)
UNSEEN = {
    "unbiased_eps_on_std": (NumpyAdapter, {"norm_variance": "unbiased", "eps_placement": "added_to_std",
                                           "default_eps": 3e-4}, {}),
    "debiased_old_weight": (NumpyAdapter, {"momentum_form": "weight_on_old", "default_momentum": 0.99,
                                           "initial_running_stats": "zero_debiased", "running_variance": "biased",
                                           "default_eps": 1e-3}, {}),
    "cumulative_default": (NumpyAdapter, {"default_momentum": None, "running_variance": "biased"}, {}),
    "running_normalized": (NumpyAdapter, {"training_statistics": "running_updated",
                                          "initial_running_stats": "zero_debiased", "default_eps": 2e-5}, {}),
    "eval_on_batch": (NumpyAdapter, {"eval_statistics": "batch", "norm_variance": "unbiased",
                                     "running_variance": "biased", "default_momentum": 0.03}, {}),
    # two updates of weight 0.1 are one exponential average of weight 1 - 0.9^2 = 0.19: that is its default
    "twice_updated": (_TwiceUpdated, {"training_statistics": "running_updated"},
                      {"momentum_form": NOT_LISTED, "initial_running_stats": NOT_LISTED, "weight": 0.19}),
    "first_batch_start": (_FirstBatchStart, {"norm_variance": "unbiased", "default_eps": 1e-4},
                          {"initial_running_stats": NOT_LISTED, "momentum_form": NOT_LISTED}),
}


def _cells(name):
    cls, overrides, _ = UNSEEN[name]
    adapter = cls(overrides, name=name)
    raising = load_all()[0]["numpy"].outcomes  # one value per channel raises with the unbiased running variance
    unbiased = adapter.profile["running_variance"] == "unbiased"
    expectation = Expectation(name, (name,), {}, outcomes=list(raising) if unbiased else [])
    return [run_cell(adapter, name, case, expectation, None) for case in CATALOG]


@pytest.fixture(scope="module")
def matrix():
    cells = [c for name in UNSEEN for c in _cells(name)]
    crashed = [f"{c['adapter']} {c['case']}: {c['message'][:200]}" for c in cells
               if c["outcome"] in ("error", "bad_output", "timeout", "crashed") and c.get("behaviour") != "raises"]
    assert not crashed
    return cells, build_matrix(cells, list(UNSEEN))


def _truth(name) -> dict:
    _, overrides, truths = UNSEEN[name]
    profile = {**PYTORCH_PROFILE, **overrides}
    weight = profile["default_momentum"]
    if weight is not None and profile["momentum_form"] == "weight_on_old":
        weight = 1 - weight
    return {**{c: profile[c] for c in CONVENTION_ROWS}, "eps": profile["default_eps"], "weight": weight, **truths,
            FACTOR_ROW: "1 (biased)" if profile["running_variance"] == "biased" else "N/(N-1) (unbiased)"}


@pytest.mark.parametrize("name", list(UNSEEN))
def test_every_convention_row_is_right_or_honestly_unclear(matrix, name):
    rows = {r["row"]: r["cells"][name] for r in matrix[1]["rows"]}
    truth = _truth(name)
    wrong = {c: rows[c]["observed"] for c in CONVENTION_ROWS
             if rows[c]["status"] not in HONEST and rows[c]["observed"] != truth[c]}
    assert not wrong, (wrong, {c: truth[c] for c in wrong})
    for c in CONVENTION_ROWS:  # an honest reading carries its counts in the cell
        if rows[c]["status"] in ("unclear", "mixed"):
            assert rows[c]["observed"].startswith(rows[c]["status"]) and rows[c].get("counts"), rows[c]
    factor = rows[FACTOR_ROW]
    assert factor["status"] in HONEST or factor["label"] == truth[FACTOR_ROW], factor


@pytest.mark.parametrize("name", list(UNSEEN))
def test_every_default_row_is_right_or_honestly_unclear(matrix, name):
    rows = {r["row"]: r["cells"][name] for r in matrix[1]["rows"]}
    truth = _truth(name)
    for row in (*EPS_ROWS, MOMENTUM):
        cell = rows[row]
        if cell["status"] in HONEST:
            assert cell["value"] is None or row in EPS_ROWS and "covering" in (cell["observed"] or ""), (row, cell)
            continue
        if row == MOMENTUM and truth["weight"] is None:
            assert cell["label"] == "cumulative average", (row, cell)
            continue
        expected = truth["eps"] if row in EPS_ROWS else truth["weight"]
        assert measure.agrees(cell, expected), (row, cell, expected)


def _numbers_in_domain(record, where):
    """Every measured eps above 0 and momentum in [0, 1], in any nested record."""
    if isinstance(record, dict):
        for key, value in record.items():
            if key in ("default_eps", "default_momentum") and isinstance(value, dict) and value.get("value") is not None:
                v = value["value"]
                ok = v > 0 if key == "default_eps" else 0 <= v <= 1
                assert ok and math.isfinite(v), (where, key, value)
            _numbers_in_domain(value, where)
    elif isinstance(record, list):
        for item in record:
            _numbers_in_domain(item, where)


def test_no_number_outside_its_domain_in_cells_matrix_or_guide(matrix):
    cells, m = matrix
    for c in cells:
        _numbers_in_domain(c.get("measured", {}), f"{c['adapter']} {c['case']}")
    for row in m["rows"]:
        if row["row"] in EPS_ROWS | {MOMENTUM}:
            for name, cell in row["cells"].items():
                if cell.get("value") is not None:
                    ok = cell["value"] > 0 if row["row"] in EPS_ROWS else 0 <= cell["value"] <= 1
                    assert ok, (row["row"], name, cell)
    text = " ".join(line for adv in guide(m) for line in adv.agree + like_lines(adv) + adv.cannot)
    for value in re.findall(r"\b(?:eps|epsilon)=(-?[0-9.e+-]+)", text):
        assert float(value) > 0, value
    for value in re.findall(r"\bmomentum=(-?[0-9.e+-]+|None)", text):
        assert value == "None" or 0 <= float(value) <= 1, value
