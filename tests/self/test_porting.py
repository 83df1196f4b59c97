"""The porting guide, followed end to end: torch and Keras (torch backend) given the guide's arguments
agree within tolerance, except for what the guide says no argument reconciles (the stored running
variance), and there its checkpoint conversion holds."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from normconf.golden.tolerance import tolerance
from normconf.reports import porting
from tests.self.porting_check import H, N, W
from tests.self.suite_runner import REPO, run_suite

pytestmark = pytest.mark.skipif(not (importlib.util.find_spec("torch") and importlib.util.find_spec("keras")),
                                reason="needs torch and keras (pip install -e '.[torch,keras]')")


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("porting")
    code, data, output = run_suite(tmp, "normconf/checks/test_golden.py", "--frameworks=torch,keras[torch]",
                                   "-n", "0", "-p", "no:randomly", "-k", "probe_ or bn2d_n or bn1d_nc or ln_last1")
    assert code == 0, output[-3000:]
    advice = next(a for a in porting.guide(data["matrix"], data["adapter_info"])
                  if a.a.args.label == "torch" and a.b.args.label == "Keras")
    rows = {r["row"]: r["cells"] for r in data["matrix"]["rows"]}
    weight = {k: float(rows[porting.MOMENTUM_ROW][a]["label"]) for k, a in (("torch", "torch"), ("keras", "keras[torch]"))}
    spec = {"keras": advice.like[(advice.a.name, advice.b.name)], "torch": advice.like[(advice.b.name, advice.a.name)],
            "weight_on_new": weight}
    (tmp / "advice.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "tests.self.porting_check", str(tmp / "advice.json")], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = json.loads(proc.stdout.strip().splitlines()[-1])
    # the suite's own tolerance for such a case: float32 over N*H*W values per channel, its conditioning
    return advice, spec, err, tolerance("float32", N * H * W, err["offset"])


def test_the_guide_speaks_each_frameworks_names(followed):
    advice, spec, _, _ = followed
    assert spec["keras"]["batch_norm"] == {"momentum": 0.9, "epsilon": 1e-05, "axis": 1}
    assert spec["torch"]["batch_norm"] == {"momentum": 0.01, "eps": 0.001}
    assert spec["keras"]["layer_norm"] == {"epsilon": 1e-05} and spec["torch"]["layer_norm"] == {"eps": 0.001}
    assert advice.a.members == ["torch", "torch_functional"] and advice.b.members == ["keras[torch]"]
    assert [line for line in advice.cannot if line.startswith("running_variance")]
    assert not [line for line in advice.cannot if "default" in line.split(":")[0]]


def test_following_the_guide_makes_torch_and_keras_agree(followed):
    _, _, err, tol = followed
    for direction in ("keras_like_torch", "torch_like_keras"):
        for output in ("y_train", "running_mean", "running_var_rescaled", "y_eval_checkpoint_copied"):
            assert err[direction][output] <= tol, (direction, output, err[direction][output] / tol)
    assert err["layer_norm_keras_like_torch"] <= tol and err["layer_norm_torch_like_keras"] <= tol, err


def test_without_the_guide_they_disagree(followed):
    _, _, err, tol = followed
    assert err["keras_bare"]["y_train"] > 10 * tol and err["keras_bare"]["running_mean"] > 10 * tol, err
    assert err["layer_norm_bare"] > 10 * tol
    # what the guide says no argument reconciles: the stored variance, hence evaluation before conversion
    assert err["keras_like_torch"]["running_var_as_stored"] > 10 * tol
    assert err["keras_like_torch"]["y_eval_as_stored"] > 10 * tol
