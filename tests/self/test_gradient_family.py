"""Gradient profiles (issue 23, continued): each convention a gradient case shows is identified from the
gradients alone, whichever variant the outputs follow; a backward that follows another variant than its
forward is named; RMSNorm's numpy backward identifies under each weight form and eps placement it runs."""
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden import gradient_fixtures as gf
from normconf.golden.gradient_cases import GRADIENT_CASES, GRADIENT_CONVENTIONS
from normconf.judge.gradients import identify, run_gradient_cell

SHOWN = [(name, c) for name, case in sorted(GRADIENT_CASES.items()) for c in case.shows]


class _Returns:
    """An adapter whose every gradient operation returns the given outputs."""
    name = "returns"

    def __init__(self, outputs):
        self.outputs = outputs

    def __getattr__(self, attr):
        if attr.endswith("_grad"):
            return lambda *a, **k: self.outputs
        raise AttributeError(attr)


@pytest.mark.parametrize("case_name,convention", SHOWN, ids=lambda v: str(v))
def test_each_variant_is_identified_and_a_competing_one_fails_naming_it(case_name, convention):
    fx = gf.load_case(case_name)
    for variant in GRADIENT_CONVENTIONS[convention]:
        outputs = gf.backward(fx.case, fx.inputs, {convention: variant}).outputs
        assert identify(outputs, fx)[convention] == variant
        cell = run_gradient_cell(_Returns(outputs), "returns", case_name, None, None, fx)
        if variant == GRADIENT_CONVENTIONS[convention][0]:
            assert cell["outcome"] == "pass", cell["message"]
        else:
            assert cell["outcome"] == "fail" and f"{convention} is {variant}" in cell["message"], cell["message"]


def test_a_backward_apart_from_its_forward_is_named():
    fx = gf.load_case("grad_rms_eps_0.5")
    forward = gf.backward(fx.case, fx.inputs, {"rms_weight_form": "one_plus_w"}).outputs
    backward = gf.backward(fx.case, fx.inputs).outputs
    cell = run_gradient_cell(_Returns({**backward, "y": forward["y"]}), "returns", fx.case.name, None, None, fx)
    assert "the backward follows rms_weight_form w, its forward one_plus_w" in cell["message"]


@pytest.mark.parametrize("profile,convention,variant", [
    ({"rms_weight_form": "one_plus_w"}, "rms_weight_form", "one_plus_w"),
    ({"eps_placement": "added_to_std"}, "eps_placement", "added_to_std"),
])
def test_numpy_rms_backward_under_another_profile_is_identified_as_it(profile, convention, variant):
    cell = run_gradient_cell(NumpyAdapter(profile), "numpy", "grad_rms_eps_0.5", None, None)
    assert cell["conventions"][convention] == variant and "the backward follows" not in cell["message"]
