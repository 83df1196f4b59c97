"""Generated cases (golden/generated.py, normconf/checks/test_generated.py): the same draw on every run,
names that say their region, expected outputs from the reference, and a deeper search whose failure
ends in a one-line reproduction that the `normconf generated` command replays."""
import dataclasses
import json
import re
import subprocess
import sys

import numpy as np

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden import reference as ref
from normconf.golden.generate import make_inputs
from normconf.golden.generated import DEFAULT_EXAMPLES, draw_specs, fixture_of, name_of, to_case, to_json
from normconf.judge.expectations import load_all
from normconf.judge.generated import judge_spec
from tests.self.suite_runner import REPO, run_suite, write_plugin

NUMPY = load_all()[0]["numpy"]


def test_two_draws_are_the_same_cases(tmp_path):
    first, second = draw_specs.__wrapped__(), draw_specs.__wrapped__()
    assert first == second and len(first) == DEFAULT_EXAMPLES
    stored = draw_specs.__wrapped__(store=tmp_path)  # kept, then read back without drawing
    assert stored == first and len(list(tmp_path.glob("generated-*.json"))) == 1
    assert draw_specs.__wrapped__(store=tmp_path) == first


def test_names_say_the_region_and_eps_0_only_where_groups_vary():
    for name, spec in draw_specs.__wrapped__(60).items():
        assert name == name_of(spec) and name.startswith(f"gen_{ {'layer_norm': 'ln', 'batch_norm': 'bn', 'batch_norm_eval': 'bneval', 'rms_norm': 'rms'}[spec['layer']]}_{spec['dtype']}_")
        assert ("_offset_" in name) == (spec["loc"] != 0 and (spec["distribution"] == "constant"
                                                               or abs(spec["loc"]) >= 2 * spec["scale"]))
        if spec["eps"] == 0:
            assert spec["distribution"] == "normal" and spec["loc"] == 0 and to_case(spec).reduction_size >= 2


def test_expected_outputs_come_from_the_reference():
    spec = {"layer": "layer_norm", "shape": [3, 5], "axes": [-1], "dtype": "float32", "distribution": "normal",
            "loc": 0.0, "scale": 1.0, "affine": False, "eps": 1e-3}
    fx = fixture_of(to_json(spec))
    x = fx.inputs["x"].astype(np.float64)
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(fx.expected[0]["y"], expected, rtol=1e-12, atol=1e-12)
    assert ref.CONVENTIONS  # the reference module is the one the expected outputs came through
    assert judge_spec(NumpyAdapter(), "numpy", spec, NUMPY, None)["outcome"] == "pass"


BROKEN = '''
from normconf.adapters.numpy_adapter import NumpyAdapter

class IgnoresLargeEps(NumpyAdapter):
    """eps above 0.05 read as 1e-5 (a clamp meant for float16); the biased running variance never raises."""
    name = "ignores_large_eps"
    # documented, so that accuracy is judged against this profile: undocumented, a bfloat16 GroupNorm draw is
    # judged against the nearest profile (eps added to the std fits its rounding as well) and its rounding-bias
    # check fires on a correctly rounded output
    documented = {"norm_variance": "biased", "eps_placement": "inside_sqrt", "group_mapping": "contiguous"}

    def __init__(self):
        super().__init__({"running_variance": "biased"})

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        return NumpyAdapter.layer_norm(self, x, axes, gamma, beta, 1e-5 if eps > 0.05 else eps, affine_axes)

adapter = IgnoresLargeEps()
'''


def test_explore_finds_shrinks_and_prints_a_reproduction_that_replays(tmp_path):
    plugin = write_plugin(tmp_path, BROKEN)
    code, _, out = run_suite(tmp_path, "--normconf", "normconf/checks/test_generated.py::test_explore",
                             f"--adapter={plugin}:adapter", "--frameworks=ignores_large_eps", "--explore=600",
                             "--hypothesis-seed=0", "-p", "no:randomly", "-n", "0", timeout=300)
    assert code == 1, out
    lines = re.findall(r"reproduce: (normconf generated \S+ '.*')", out)
    assert lines, out
    spec = json.loads(lines[-1].split(" ", 3)[3].strip("'"))
    assert spec["layer"] == "layer_norm" and spec["eps"] == 0.1
    assert lines[-1].startswith(f"normconf generated {plugin}:adapter ")
    for adapter, code, verdict in ((f"{plugin}:adapter", 1, ": fail: accuracy"), ("numpy", 0, ": pass:")):
        replay = subprocess.run([sys.executable, "-m", "normconf", "generated", adapter, to_json(spec)], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert replay.returncode == code and verdict in replay.stdout, replay.stdout + replay.stderr


class LerpBuffers(NumpyAdapter):
    """Running buffers updated as r + w (b - r) (TF's assign_moving_average, torch.lerp): correct, and
    rounding at the size of the replaced value r_0 = 1, not of the result."""

    def update(self, running, batch_stat, momentum, step):
        w = 1.0 / step if momentum is None else momentum
        return running + running.dtype.type(w) * (batch_stat - running)


def test_a_buffer_that_rounds_at_the_replaced_value_is_no_false_alarm():
    """The class of the false alarm found by --explore: a weight near 1 on the first batch (momentum 1,
    the cumulative average) and a batch variance far below the initial 1 (scale 1e-3)."""
    for momentum in (None, 1.0, 0.5):
        for steps in (1, 3):
            spec = {"layer": "batch_norm", "shape": [1, 2], "axes": [0], "dtype": "float32", "distribution": "normal",
                    "loc": 0.0, "scale": 1e-3, "affine": False, "eps": 1e-5, "momentum": momentum, "steps": steps}
            for adapter in (NumpyAdapter(), LerpBuffers()):
                cell = judge_spec(adapter, "numpy", spec, NUMPY, None)
                assert cell["outcome"] == "pass", (momentum, steps, type(adapter).__name__, cell["message"])


def test_the_initial_variance_term_vanishes_where_the_buffer_stays_near_1():
    from normconf.golden.tolerance import initial_variance_excess
    near_one = [np.array([[0.9, 0.95]])]
    assert initial_variance_excess(near_one, 1e-5, 1, (0.1,)) == (0.0, 0.0)
    excess, eval_excess = initial_variance_excess([np.array([[1e-6]])], 1e-5, 1, (None,))
    assert excess == (1.0 - 1e-5) / 1e-5 and eval_excess == (1.0 - 1e-5) / (1e-6 + 1e-5)


def test_gamma_of_either_sign_and_scale_and_beta_come_from_the_specification():
    plain = {"layer": "batch_norm_eval", "shape": [4, 6], "axes": [1], "dtype": "float64", "distribution": "normal",
             "loc": 0.0, "scale": 1.0, "affine": True, "eps": 1e-5}
    assert np.all(fixture_of(to_json(plain)).inputs["gamma"] >= 0.5)  # without the keys: the catalog's draw
    spec = dict(plain, gamma_scale=1e-3, gamma_sign="mixed", beta_scale=100.0)
    fx = fixture_of(to_json(spec))
    base = make_inputs(dataclasses.replace(to_case(spec), gamma_scale=1.0, gamma_sign="positive", beta_scale=1.0))
    np.testing.assert_allclose(fx.inputs["gamma"], base["gamma"] * 1e-3 * np.array([1, -1] * 3))
    np.testing.assert_allclose(fx.inputs["beta"], base["beta"] * 100.0)
    x, g, b = fx.inputs["x"], fx.inputs["gamma"], fx.inputs["beta"]
    rm, rv = fx.inputs["running_mean"], fx.inputs["running_var"]
    np.testing.assert_allclose(fx.expected[0]["y"], (x - rm) / np.sqrt(rv + 1e-5) * g + b, rtol=1e-12)
    negative = dict(plain, gamma_sign="negative")
    np.testing.assert_array_equal(fixture_of(to_json(negative)).inputs["gamma"],
                                  -make_inputs(dataclasses.replace(to_case(negative), gamma_sign="positive"))["gamma"])
    assert judge_spec(NumpyAdapter(), "numpy", spec, NUMPY, None)["outcome"] == "pass"


class ReadsMemoryOrder(NumpyAdapter):
    """Takes the buffer in memory order as if it were C order (a kernel handed a raw pointer)."""

    def layer_norm(self, x, *args):
        return NumpyAdapter.layer_norm(self, np.ravel(x, order="K").reshape(x.shape), *args)


def test_the_input_is_handed_in_the_specification_s_layout():
    spec = {"layer": "layer_norm", "shape": [3, 5], "axes": [-1], "dtype": "float32", "distribution": "normal",
            "loc": 0.0, "scale": 1.0, "affine": False, "eps": 1e-3}
    for layout in ("c", "fortran", "strided", "transposed"):
        laid = dict(spec, layout=layout)
        assert judge_spec(NumpyAdapter(), "numpy", laid, NUMPY, None)["outcome"] == "pass"
        blind = judge_spec(ReadsMemoryOrder(), "numpy", laid, NUMPY, None)["outcome"]
        assert blind == ("pass" if layout in ("c", "strided") else "fail"), layout


def test_save_makes_a_found_case_a_case_of_the_catalog(tmp_path):
    import os
    import shutil

    from normconf.golden import fixtures
    gold = tmp_path / "golden"
    shutil.copytree(fixtures.PACKAGED, gold)
    env = {**os.environ, "NORMCONF_GOLDEN_DIR": str(gold)}
    spec = {"layer": "batch_norm", "shape": [1, 2], "axes": [0], "dtype": "float32", "distribution": "normal",
            "loc": 0.0, "scale": 1e-3, "affine": True, "eps": 1e-5, "momentum": None, "steps": 1,
            "gamma_sign": "mixed", "layout": "fortran"}

    def command(*args):
        return subprocess.run([sys.executable, "-m", "normconf", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
    saved = command("generated", "numpy", to_json(spec), "--save", "regress_found")
    assert saved.returncode == 0 and "saved as case regress_found" in saved.stdout, saved.stdout + saved.stderr
    again = command("generated", "numpy", to_json(spec), "--save", "regress_found")
    assert again.returncode == 2 and "has a case of that name already" in again.stderr
    assert command("golden", "check").returncode == 0  # the catalog knows it: fixture, manifest, regressions.json
    stored = fixtures.load(gold / "regress_found.npz")
    assert stored.case.seed_name == name_of(spec) and stored.layout == "fortran"
    for key, value in fixture_of(to_json(spec)).inputs.items():  # the case found, not a new draw
        np.testing.assert_array_equal(stored.inputs[key], value)
