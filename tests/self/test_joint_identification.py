"""Conventions are identified jointly: an implementation that differs from the base profile in any
combination of BatchNorm conventions is named right in every one of them, by the matrix built from
the whole catalog (the 1e5-element cases are left out for time: they show nothing the others do not)."""
import itertools

import numpy as np
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.cases import CASES
from normconf.golden.reference import CONVENTIONS, LAYER_CONVENTIONS
from normconf.judge.expectations import Expectation, load_all
from normconf.judge.verdict import load_fixture, run_cell
from normconf.reports.matrix import build_matrix

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
                              outcomes=[r for r in raising if profile["running_variance"] == "unbiased"
                                        or not any("one_value_per_channel" in c for c in r.cases)])
    cells = [run_cell(adapter, "combo", case, expectation, None) for case in CATALOG]
    errors = [f"{c['case']}: {c['message'][:200]}" for c in cells if c["outcome"] in ("error", "bad_output", "timeout")]
    assert not errors
    rows = {r["row"]: r["cells"]["combo"] for r in build_matrix(cells, ["combo"])["rows"]}
    named = {c: rows[c]["observed"] for c in profile}
    assert named == profile, {c: (named[c], rows[c].get("unclear")) for c in profile if named[c] != profile[c]}
    unclear = {c: rows[c]["unclear"] for c in profile if rows[c]["unclear"]}
    assert not unclear, f"matches no variant in {unclear}"


class _Float32Eps(NumpyAdapter):
    """A float64 computation whose eps attribute is a float32 (errors near 1e-13)."""

    def inv_std(self, var, eps):
        return NumpyAdapter.inv_std(self, var, float(np.float32(eps)))


class _Perturbed(NumpyAdapter):
    """Correct, then every running variance nudged by 1.5 tolerances: a precision miss."""

    def __init__(self, tol):
        super().__init__()
        self.tol = tol

    def batch_norm_steps(self, *args):
        out = NumpyAdapter.batch_norm_steps(self, *args)
        rv = out["running_var"].astype(np.float64)
        out["running_var"] = (rv + 1.5 * self.tol * np.maximum(1, np.abs(rv).max())).astype(out["running_var"].dtype)
        return out


class _NaNs(NumpyAdapter):
    """Correct, except that the first channel of every training output is NaN."""

    def batch_norm_steps(self, *args):
        out = NumpyAdapter.batch_norm_steps(self, *args)
        out["y_train"][:, :, 0] = np.nan
        return out


def _cell(adapter, case):
    return run_cell(adapter, "numpy", case, load_all()[0]["numpy"], None)


def test_precision_misses_are_accuracy_never_conventions():
    for case in ("dtype_bn_float64", "dtype_bn2d_float64"):
        cell = _cell(_Float32Eps(), case)
        assert {c: v["observed"] for c, v in cell["conventions"].items() if v["state"] == "named"} == {
            c: "unbiased" if c == "running_variance" else v["observed"] for c, v in cell["conventions"].items()
            if v["state"] == "named"}
        assert [f["kind"] for f in cell["failures"]] == ["accuracy"], cell["message"]
        assert {o: a["precision"] for o, a in cell["accuracy"]["outputs"].items()} == dict.fromkeys(
            ("y_train", "running_mean", "running_var", "y_eval"), "float64")
        rows = {r["row"]: r["cells"]["numpy"] for r in build_matrix([cell], ["numpy"])["rows"]}
        if case == "dtype_bn_float64":
            assert rows["float64 kept float64 (BatchNorm)"]["observed"] == "yes"
    tol = load_fixture("dtype_bn_bfloat16").tolerance
    cell = _cell(_Perturbed(tol), "dtype_bn_bfloat16")
    assert cell["conventions"]["running_variance"]["observed"] == "unbiased"
    assert [f["kind"] for f in cell["failures"]] == ["accuracy"] and 1.2 < cell["accuracy"]["error"] < 2


def test_nonfinite_outputs_are_counted_and_conventions_still_named():
    cell = _cell(_NaNs(), "bn1d_nc")  # (8, 4): 3 steps x 8 rows of channel 0
    assert cell["nonfinite"]["y_train"] == {"nan": 24, "inf": 0, "size": 96, "unexpected": 24}
    assert [f["kind"] for f in cell["failures"]] == ["nonfinite"]
    assert "y_train: 24 NaN of 96 where the formula gives numbers" in cell["message"]
    assert cell["conventions"]["running_variance"]["observed"] == "unbiased"
    assert cell["conventions"]["norm_variance"]["observed"] == "biased"  # the other channels show it
    # the formula's own 0/0 (the unbiased variance of one value, stored without raising) is agreement
    cell = run_cell(_ZeroOverZero(), "numpy", "stress_bn_one_value_per_channel", Expectation(
        "no raise", ("numpy",), load_all()[0]["numpy"].documented), None)
    assert cell["nonfinite"]["running_var"]["unexpected"] == 0 and cell["nonfinite"]["running_var"]["nan"] == 4
    assert cell["conventions"]["running_variance"]["observed"] == "unbiased"
    assert "nonfinite" not in [f["kind"] for f in cell["failures"]], cell["message"]


class _ZeroOverZero(NumpyAdapter):
    """Stores the unbiased variance of one value as the formula does, 0/0, instead of raising."""

    def __init__(self):
        super().__init__({"running_variance": "biased"})

    def batch_norm_steps(self, *args):
        out = NumpyAdapter.batch_norm_steps(self, *args)
        out["running_var"] = np.full_like(out["running_var"], np.nan)  # 0.9 * 1 + 0.1 * 0/0
        return out
