"""Generated cases (golden/generated.py, normconf/checks/test_generated.py): the same draw on every run,
names that say their region, expected outputs from the reference, and a deeper search whose failure
ends in a one-line reproduction that the `normconf generated` command replays."""
import json
import re
import subprocess
import sys

import numpy as np

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden import reference as ref
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
        assert name == name_of(spec) and name.startswith(f"gen_{ {'layer_norm': 'ln', 'batch_norm': 'bn', 'batch_norm_eval': 'bneval'}[spec['layer']]}_{spec['dtype']}_")
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
                             f"--adapter={plugin}:adapter", "--frameworks=ignores_large_eps", "--explore=200",
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
