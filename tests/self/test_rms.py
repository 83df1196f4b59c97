"""RMSNorm (issue 22): the casting styles are float64 simulations that separate decisively, the numpy
models of each style (real float16/bfloat16 arithmetic) land on them bit for bit, and the porting
guide's advice for transformers' LlamaRMSNorm -> Flax RMSNorm holds on bfloat16 inputs.

transformers is not installed here: LlamaRMSNorm is modelled by its documented code path
(transformers/models/llama/modeling_llama.py LlamaRMSNorm.forward: x.to(float32), variance =
x.pow(2).mean(-1), x * rsqrt(variance + eps), then `self.weight * x.to(input_dtype)`; eps=1e-6), which is
the numpy adapter with rms_casting = cast_before_weight.
"""
import importlib.util
import itertools

import ml_dtypes
import numpy as np
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden import candidates as cand
from normconf.golden.cases import CASES
from normconf.golden.fixtures import load_case
from normconf.golden.generate import Call, candidate_set
from normconf.golden.tolerance import DECISIVENESS_MARGIN, ulp_of
from normconf.judge.expectations import Expectation
from normconf.judge.verdict import run_cell
from normconf.reports.matrix import build_matrix
from normconf.reports.porting import groups, like_lines, pair_advice
from normconf.reports.porting_rms import casting_residual

HALF_CASES = [n for n, c in CASES.items() if c.layer == "rms_norm" and c.dtype in ("float16", "bfloat16")
              and not c.defaults]
STYLES = ("float32_cast_once", "cast_before_weight", "input_dtype")
LLAMA = {"rms_casting": "cast_before_weight", "default_eps@rms_norm": 1e-6}


def test_the_half_precision_cases_exist():
    assert {"rms_bfloat16", "rms_float16"} <= set(HALF_CASES)


@pytest.mark.parametrize("case", HALF_CASES)
def test_every_pair_of_casting_styles_differs_decisively(case):
    """As the generator proves `shows=`: each pair of styles (the rest the base profile) is more than
    DECISIVENESS_MARGIN tolerances apart, both ways."""
    fx = load_case(case)
    cset = candidate_set(fx.case, fx.inputs, Call(fx.case.eps, None, None, ()), fx.tolerances)
    index = {s: cset.profiles.index(cand.base_profile("rms_norm", {"rms_casting": s})) for s in STYLES}
    for a, b in itertools.combinations(STYLES, 2):
        assert min(cset.distance(index[a], index[b]), cset.distance(index[b], index[a])) > DECISIVENESS_MARGIN, (a, b)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", HALF_CASES)
def test_a_real_half_precision_computation_of_each_style_is_its_simulation(case, style):
    fx = load_case(case)
    y = NumpyAdapter({"rms_casting": style}).rms_norm(fx.inputs["x"], fx.case.axes, fx.inputs.get("weight"),
                                                       fx.case.eps)["y"]
    cands = cand.for_case(fx.case, fx.inputs, eps=fx.case.eps)
    expected = cands.output("y", cand.base_profile("rms_norm", {"rms_casting": style}))
    assert str(y.dtype) == fx.case.dtype
    np.testing.assert_array_equal(np.asarray(y, np.float64), expected)


class LlamaRMSNormModel(NumpyAdapter):
    """transformers' LlamaRMSNorm, by its documented code path (see the module docstring)."""

    def __init__(self):
        super().__init__(LLAMA, name="transformers_llama")


def _expectation(name, documented):
    return Expectation(f"test {name}", (name,), {k: {"variant": v, "cite": "test"} for k, v in documented.items()})


def _rms_cells(adapter, name, documented):
    expectation = _expectation(name, documented)
    return [run_cell(adapter, name, case, expectation, None) for case, c in CASES.items() if c.layer == "rms_norm"]


@pytest.fixture(scope="module")
def llama_to_flax():
    if importlib.util.find_spec("flax") is None:
        pytest.skip("flax not installed")
    from normconf.adapters.flax_adapter import FlaxLinenAdapter
    flax = FlaxLinenAdapter()
    cells = (_rms_cells(LlamaRMSNormModel(), "transformers_llama", {**LLAMA, "rms_weight_form": "w"})
             + _rms_cells(flax, "flax_linen", {"rms_casting": "float32_cast_once", "default_eps@rms_norm": 1e-6}))
    matrix = build_matrix(cells, ["transformers_llama", "flax_linen"])
    llama, flax_group = groups(matrix)
    return flax, matrix, pair_advice(matrix, llama, flax_group)


def test_the_guide_names_the_casting_style_no_argument_reproduces(llama_to_flax):
    _, _, advice = llama_to_flax
    worst, share = casting_residual("cast_before_weight", "float32_cast_once")
    line = next(c for c in advice.cannot if c.startswith("RMSNorm float16/bfloat16 casting"))
    assert "transformers cast_before_weight, Flax float32_cast_once" in line
    assert f"{share:.0%} of the outputs differ, by at most {worst:.3g} unit" in line
    assert not [a for a in advice.agree if a.startswith("RMSNorm eps")]  # both default to 1e-6
    assert like_lines(advice) == []  # no argument to pass: Flax RMSNorm() as it is


def test_following_the_guide_leaves_exactly_the_stated_residual_on_bfloat16(llama_to_flax):
    """Fresh bfloat16 inputs (not the catalog's, not kept off rounding midpoints): Flax's RMSNorm with the
    guide's arguments (none) against LlamaRMSNorm differs in some outputs, by no more than the stated
    units of bfloat16, and is otherwise the same computation (float32 statistics, eps 1e-6)."""
    flax, _, _ = llama_to_flax
    worst, _ = casting_residual("cast_before_weight", "float32_cast_once")
    rng = np.random.default_rng(22)
    x = (3.0 * rng.standard_normal((16, 256))).astype(ml_dtypes.bfloat16)
    w = rng.uniform(0.5, 2.0, 256).astype(ml_dtypes.bfloat16)
    llama = np.asarray(LlamaRMSNormModel().rms_norm(x, (-1,), w, 1e-6)["y"], np.float64)
    ported = flax.rms_norm(x, (-1,), w, flax_default())["y"]
    assert str(ported.dtype) == "bfloat16"
    ported = np.asarray(ported, np.float64)
    units = np.abs(ported - llama) / ulp_of(np.maximum(np.abs(ported), np.abs(llama)), "bfloat16")
    assert 0 < units.max() <= worst
    # the same call with Gemma's style (float32_cast_once) reproduces Flax bit for bit: the residual is
    # the casting style, nothing else the guide left out
    gemma = np.asarray(NumpyAdapter({"default_eps@rms_norm": 1e-6}).rms_norm(x, (-1,), w, 1e-6)["y"], np.float64)
    np.testing.assert_array_equal(ported, gemma)


def flax_default():
    from normconf.adapters.base import DEFAULT
    return DEFAULT


@pytest.mark.parametrize("model, profile", [("llama", LLAMA), ("gemma", {"rms_weight_form": "one_plus_w"})])
def test_the_numpy_models_are_transformers_own_modules_bit_for_bit(model, profile):
    """Where transformers is installed: its LlamaRMSNorm / GemmaRMSNorm (adapters/transformers_adapter.py)
    give the numpy model's bfloat16 outputs exactly, so the model the guide's test uses is the module."""
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers not installed")
    from normconf.adapters.transformers_adapter import TransformersRMSNormAdapter
    rng = np.random.default_rng(23)
    x = (2.0 * rng.standard_normal((8, 128))).astype(ml_dtypes.bfloat16)
    w = rng.uniform(-0.5, 1.5, 128).astype(ml_dtypes.bfloat16)
    real = TransformersRMSNormAdapter(model).rms_norm(x, (-1,), w, 1e-6)["y"]
    modelled = NumpyAdapter(profile).rms_norm(x, (-1,), w, 1e-6)["y"]
    assert real.dtype == modelled.dtype
    np.testing.assert_array_equal(np.asarray(real, np.float64), np.asarray(modelled, np.float64))
