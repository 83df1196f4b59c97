"""Plug-ins on a par with built-ins: measured defaults nobody listed, declarations validated like the
TOML files, outcomes and deviations declared in the same schema, selectable alone, reproducible."""
import subprocess
import sys
import textwrap

import pytest

from tests.self.suite_runner import REPO, run_suite, write_plugin

FAST = ("-n", "0", "-p", "no:randomly")

UNUSUAL_DEFAULTS = textwrap.dedent('''
    from normconf.adapters.base import DEFAULT
    from normconf.adapters.numpy_adapter import NumpyAdapter

    class UnusualDefaults(NumpyAdapter):
        """A correct BatchNorm and LayerNorm whose defaults nobody lists: eps 2e-5, momentum 1.0."""
        name = "unusual"
        layout_note = "channels-last handled by a transpose kernel"
        documented = {"running_variance": "unbiased", "default_eps": 2e-5, "default_momentum": 1.0}

        def __init__(self):
            super().__init__({"default_eps": 2e-5, "default_momentum": 1.0})

    class NeedsMomentum(NumpyAdapter):
        """momentum is a required argument: only its own probe can fail for it."""
        name = "needs_momentum"

        def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
            if momentum is DEFAULT:
                raise TypeError("batch_norm() missing 1 required positional argument: 'momentum'")
            return super().batch_norm_steps(batches, x_eval, feature_axis, gamma, beta, eps, momentum)
''')


@pytest.fixture(scope="module")
def unusual_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unusual")
    plugin = write_plugin(tmp, UNUSUAL_DEFAULTS)
    code, data, output = run_suite(tmp, "--frameworks=unusual,needs_momentum", f"--adapter={plugin}:UnusualDefaults",
                                   f"--adapter={plugin}:NeedsMomentum", *FAST)
    return tmp, plugin, code, data, output


def _row(data, title, adapter):
    return next(r for r in data["matrix"]["rows"] if r["row"] == title)["cells"][adapter]


def test_unlisted_defaults_are_measured_and_the_run_completes(unusual_run):
    tmp, _, code, data, output = unusual_run
    assert (tmp / "out" / "report.html").exists(), output[-3000:]
    assert data["adapters"] == ["unusual", "needs_momentum"]  # --frameworks named plug-ins: nothing else ran
    for title, value in (("default eps (LayerNorm)", 2e-5), ("default eps (BatchNorm)", 2e-5),
                         ("default momentum (BatchNorm, weight on the new batch)", 1.0)):
        cell = _row(data, title, "unusual")
        assert abs(cell["value"] - value) <= 0.01 * value, (title, cell)
        assert cell["status"] == "agrees"
    assert "2e-05" in _row(data, "default eps (BatchNorm)", "unusual")["observed"]


def test_a_required_argument_costs_only_its_own_probe(unusual_run):
    _, _, _, data, _ = unusual_run
    cells = {c["case"]: c for c in data["cells"] if c["adapter"] == "needs_momentum"}
    assert cells["probe_default_momentum_bn"]["outcome"] == "error"
    assert "required positional argument: 'momentum'" in cells["probe_default_momentum_bn"]["message"]
    assert _row(data, "default eps (BatchNorm)", "needs_momentum")["observed"].startswith("1e-05")


def test_layout_note_and_repro_snippet_of_a_plugin(unusual_run):
    tmp, plugin, _, data, _ = unusual_run
    cell = next(c for c in data["cells"] if c["adapter"] == "unusual" and c["case"] == "bn2d_nhwc")
    assert cell["layout"] == "channels-last handled by a transpose kernel"
    from normconf.adapters.harness import snippet_for
    snippet = snippet_for("unusual", "bn1d_nc", data["adapter_info"]["unusual"]["plugin"])
    proc = subprocess.run([sys.executable, "-c", snippet + "\nprint(sorted(out))"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "running_var" in proc.stdout


DECLARING = textwrap.dedent('''
    import numpy as np
    from normconf.adapters.numpy_adapter import NumpyAdapter

    class Declaring(NumpyAdapter):
        """Returns NaN for constant input (a known deviation) and raises on one value per channel."""
        name = "declaring"
        documented = {"norm_variance": "biased", "running_variance": "unbiased", "eps_placement": "inside_sqrt",
                      "default_eps": {"variant": 1e-5, "cite": "my_kernel.cu"}}
        outcomes = [{"cases": ["*one_value_per_channel*"], "outcome": "raises",
                     "match": "Expected more than 1 value", "cite": "my_kernel.cu: checks the batch"}]
        deviations = [{"cases": ["stress_ln_constant"], "match": "nonfinite", "reason": "0/0 in the fast path",
                       "link": "https://example.org/issue/1"}]

        def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
            if np.ptp(x) == 0:
                return {"y": np.full_like(x, np.nan)}
            return super().layer_norm(x, axes, gamma, beta, eps, affine_axes)
''')


def test_declared_outcomes_and_deviations(tmp_path):
    plugin = write_plugin(tmp_path, DECLARING)
    code, data, output = run_suite(tmp_path, "--frameworks=declaring", f"--adapter={plugin}:Declaring", *FAST,
                                   "-k", "one_value or ln_constant or ln_last1")
    cells = {c["case"]: c for c in data["cells"]}
    assert cells["stress_bn_one_value_per_channel"]["outcome"] == "pass"  # the declared raise
    assert cells["stress_ln_constant"]["outcome"] == "xfail", cells["stress_ln_constant"]["message"]
    assert "y: 64 NaN of 64" in cells["stress_ln_constant"]["message"]
    assert cells["ln_last1"]["outcome"] == "pass"
    assert code == 0, output[-2000:]


@pytest.mark.parametrize("declaration, problem", [
    ('documented = {"running_varience": "biased"}', "unknown convention 'running_varience'"),
    ('documented = {"running_variance": "sideways"}', "unknown variant 'sideways'"),
    ('documented = {"default_eps": "tiny"}', "'tiny' is not a float"),
    ('deviations = [{"cases": ["x*"], "match": "y"}]', "a known deviation needs a `reason`"),
    ('outcomes = [{"cases": ["x*"], "match": "y", "outcome": "explodes"}]', "outcome 'explodes' not in"),
    ('arguments = {"layer_norm": "f()", "batch_norm": "g({})"}', "`arguments`['layer_norm'] needs a {}"),
])
def test_invalid_declarations_are_usage_errors_naming_the_plugin(tmp_path, declaration, problem):
    plugin = write_plugin(tmp_path, textwrap.dedent(f'''
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Bad(NumpyAdapter):
            name = "bad_plugin"
            {declaration}
    '''))
    code, data, output = run_suite(tmp_path, f"--adapter={plugin}:Bad", "--frameworks=bad_plugin", *FAST)
    assert code == 4 and "plug-in 'bad_plugin'" in output and problem in output, output[-2000:]
    assert "Traceback" not in output


def test_a_plugin_named_like_a_builtin_is_a_usage_error(tmp_path):
    plugin = write_plugin(tmp_path, "from normconf.adapters.numpy_adapter import NumpyAdapter\nclass Torch(NumpyAdapter):\n"
                                    "    name = 'torch'\n")
    code, _, output = run_suite(tmp_path, f"--adapter={plugin}:Torch", *FAST)
    assert code == 4 and "named like a built-in adapter" in output, output[-2000:]


def test_declared_momentum_form_contradicted_by_the_probe_is_said_once(tmp_path):
    plugin = write_plugin(tmp_path, textwrap.dedent('''
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Misdeclared(NumpyAdapter):
            """Declares the weight on the new batch (the default) but reads momentum as the weight on the old."""
            name = "misdeclared"
            def update(self, running, batch_stat, momentum, step):
                return momentum * running + (1 - momentum) * batch_stat
    '''))
    code, data, output = run_suite(tmp_path, "--frameworks=misdeclared", f"--adapter={plugin}:Misdeclared", *FAST,
                                   "-k", "probe_momentum_form or bn1d_nc")
    warning = ("misdeclared declares momentum_form=weight_on_new, but the probes measure weight_on_old: every "
               "momentum normconf translated for it was wrong")
    assert warning in data["warnings"]
    assert output.count("declares momentum_form=weight_on_new") == 1


def test_the_readme_plugin_example_runs_as_documented(tmp_path):
    readme = (REPO / "README.md").read_text()
    start = readme.index("```python\nimport numpy as np\nfrom normconf.api import DEFAULT\n\nclass MyLayerNorm:")
    source = readme[start + len("```python\n"):readme.index("```", start + 10)]
    plugin = write_plugin(tmp_path, source, "my_ln.py")
    code, data, output = run_suite(tmp_path, "--frameworks=my_layernorm", f"--adapter={plugin}:MyLayerNorm", *FAST)
    cells = {c["case"]: c for c in data["cells"]}
    assert code == 0, output[-3000:]
    assert cells["ln_noncontiguous_1_3"]["outcome"] == "pass" and cells["ln_noncontiguous_1_3"]["behaviour"] == "raises"
    assert sorted(n for n, c in cells.items() if c["outcome"] == "xfail") == [
        "seed004_ln_offset100", "stress_ln_offset_1e2", "stress_ln_offset_1e3", "stress_ln_offset_1e4"]
    assert not data["stale_expectations"] and not data["warnings"]


def test_a_deviation_may_match_any_of_several_texts_and_nothing_else():
    from normconf.judge.expectations import ExpectationError, from_data
    exp = from_data({"deviation": [{"cases": ["dtype_*"], "match": ["accuracy: ", "rounding: rounding bias"],
                                    "reason": "one cause, two symptoms"}]}, "my.toml", adapters=("mine",))
    rule, = exp.rules_for("mine", "dtype_ln_float16", "deviation")
    assert rule.matches("rounding: rounding bias in y: ...") and rule.matches("accuracy: y misses by 2x")
    assert not rule.matches("convention: running_variance biased")
    for bad in ([], ["y", 3], ["", "y"], 7):
        with pytest.raises(ExpectationError, match=r"my.toml: \[\[deviation\]\] #1: .*`match`"):
            from_data({"deviation": [{"cases": ["x*"], "match": bad, "reason": "r"}]}, "my.toml", adapters=("mine",))
