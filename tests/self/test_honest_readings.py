"""Verdicts that say what they cannot tell (issue 18): a convention cell names a variant only when its
cases agree, a measured default is a number only within its domain and above the probe's resolution,
and the default probes account for conventions they do not show (an unbiased normalization variance,
the cumulative average)."""
import html
import importlib.util
import textwrap

import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.judge import measure
from normconf.judge.expectations import Expectation
from normconf.judge.verdict import run_cell
from normconf.reports import html as html_report
from normconf.reports.arguments import declared_arguments
from normconf.reports.matrix import build_matrix
from normconf.reports.porting import guide, like_lines
from normconf.reports.table import text_matrix
from tests.self.suite_runner import run_suite, write_plugin

EPS_LN, EPS_BN = "default eps (LayerNorm)", "default eps (BatchNorm)"
MOMENTUM = "default momentum (BatchNorm, weight on the new batch)"
# cases that show norm_variance for each layer, beside the two eps probes and the momentum probe
CASES = ("probe_default_eps_ln", "probe_default_eps_bn", "probe_default_momentum_bn", "stress_ln_offset_1e2",
         "stress_bn_offset_1e2", "ln_last1", "bn1d_nc")


def _run(profile: dict, documented: dict, cases=CASES, name="synthetic"):
    adapter = NumpyAdapter(profile, name=name)
    expectation = Expectation(name, (name,), {k: {"variant": v, "cite": "-"} for k, v in documented.items()},
                              outcomes=[])
    cells = [run_cell(adapter, name, case, expectation, None) for case in cases]
    assert not [c["message"] for c in cells if c["outcome"] in ("error", "bad_output") and c["behaviour"] != "raises"]
    return cells


def _rows(cells, adapters=("synthetic",)):
    matrix = build_matrix(cells, list(adapters))
    return matrix, {r["row"]: r["cells"] for r in matrix["rows"]}


# -- 1. a reading states how much of the evidence it rests on ----------------------------------------

def _cell(case, state, observed="batch", outcome="fail"):
    return {"case": case, "adapter": "a", "outcome": outcome, "layer": "batch_norm", "measured": {},
            "conventions": {"training_statistics": {"state": state, "observed": observed, "expected": None}}}


def test_one_named_case_against_unclear_ones_is_unclear_with_its_counts_in_the_cell():
    cells = [_cell("c0", "named")] + [_cell(f"c{i}", "unclear", "unclear") for i in range(1, 4)]
    matrix, rows = _rows(cells, ("a",))
    cell = rows["training_statistics"]["a"]
    assert (cell["status"], cell["label"], cell["counts"]) == ("unclear", "unclear", {"batch": 1, "unclear": 3})
    assert cell["observed"] == "unclear: batch x1, unclear x3"
    assert "unclear (batch 1, unclear 3)" in " ".join(text_matrix(matrix, width=200).split())


def test_two_named_variants_are_mixed_and_a_known_deviation_is_no_evidence():
    cells = [_cell("c0", "named"), _cell("c1", "named", "running_updated"),
             _cell("c2", "unclear", "unclear", outcome="xfail")]
    _, rows = _rows(cells, ("a",))
    cell = rows["training_statistics"]["a"]
    assert (cell["status"], cell["counts"]) == ("mixed", {"batch": 1, "running_updated": 1})
    assert cell["unclear_known_deviation"] == ["c2"]
    _, rows = _rows([_cell("c0", "named"), _cell("c2", "unclear", "unclear", outcome="xfail")], ("a",))
    assert rows["training_statistics"]["a"]["observed"] == "batch"


# -- 2. every number in its domain, above the probe's resolution -------------------------------------

@pytest.mark.parametrize("key, value, uncertainty, words", [
    ("default_momentum", -98.0, 9e-4, "not an exponential average"),
    ("default_momentum", 99.0, 1e-3, "not an exponential average"),
    ("default_eps", -3e-10, 4e-8, "eps below 1e-07, the resolution of this probe"),
    ("default_eps", -1e-3, 1e-6, "a negative estimate"),
])
def test_a_number_outside_its_domain_is_words_and_unclear(key, value, uncertainty, words):
    m = measure.default_measurement(key, value, uncertainty)
    assert m["state"] == "unclear" and m["value"] is None and m["name"] is None and words in m["display"]


def test_a_number_in_its_domain_stays_a_number():
    m = measure.default_measurement("default_momentum", 0.1, 5e-6)
    assert (m["state"], m["name"], m["value"]) == ("named", "0.1", 0.1)
    edge = measure.default_measurement("default_momentum", 1.000004, 6e-6)  # 1 within its uncertainty: 1, not 1.000004
    assert (edge["value"], edge["name"]) == (1.0, "1")


@pytest.mark.parametrize("profile, row", [({"default_eps": 1e-12}, EPS_LN), ({"default_momentum": -0.5}, MOMENTUM)])
def test_an_unusable_default_is_unclear_everywhere_and_gives_no_advice(profile, row):
    cells = _run(profile, {}) + _run({}, {}, name="numpy")
    matrix, rows = _rows(cells, ("synthetic", "numpy"))
    cell = rows[row]["synthetic"]
    assert cell["status"] == "unclear" and cell["value"] is None, cell
    probe = next(c for c in cells if c["adapter"] == "synthetic" and c["case"] in cell["cases"])
    assert any(f["kind"] == "unclear" for f in probe["failures"]), probe["failures"]
    advice, = guide(matrix)
    assert any(row in line for line in advice.unclear), advice.unclear
    assert f'<span class="d">{html.escape(cell["detail"])}</span>' in html_report.matrix_table(matrix)  # in the cell
    said = " ".join(advice.agree + [str(advice.like)])
    assert "1e-12" not in said and "-0.5" not in said and "1.5" not in said, said


# -- 3. probes account for what they cannot see ------------------------------------------------------

def test_an_unbiased_normalization_variance_gets_its_eps_within_the_stated_uncertainty():
    # eps 2e-5 is in no list; the plug-in claims the biased variance the eps probes cannot tell apart
    cells = _run({"norm_variance": "unbiased", "default_eps": 2e-5}, {"norm_variance": "biased"})
    _, rows = _rows(cells)
    assert rows["norm_variance"]["synthetic"]["observed"] == "unbiased"
    for row in (EPS_LN, EPS_BN):
        cell = rows[row]["synthetic"]
        assert abs(cell["value"] - 2e-5) <= cell["uncertainty"], (row, cell)
        assert cell["name"] == "2e-05"


class _RunningNormalizedTwiceUpdated(NumpyAdapter):
    """Normalizes its training output with its running statistics, which it updates twice per step: an
    update no profile follows, so no profile fits; read with the batch statistics, its output gives an
    eps of the running variance's size (0.7 for a true 1e-5, issue 18's "0.031" class)."""

    def update(self, running, batch_stat, momentum, step):
        once = super().update(running, batch_stat, momentum, step)
        return super().update(once, batch_stat, momentum, step)


@pytest.mark.parametrize("training", ["running_updated", "running_previous"])
def test_an_eps_read_with_a_normalizer_the_layer_does_not_use_is_unclear(training):
    adapter = _RunningNormalizedTwiceUpdated({"training_statistics": training}, name="synthetic")
    expectation = Expectation("synthetic", ("synthetic",), {}, outcomes=[])
    cells = [run_cell(adapter, "synthetic", case, expectation, None) for case in ("probe_default_eps_bn", "bn1d_nc")]
    m = cells[0]["measured"]["default_eps"]
    assert (m["state"], m["value"], m["name"]) == ("unclear", None, None), m
    assert "not normalized with the batch statistics" in m["display"] and "fit it at" in m["display"], m
    matrix, rows = _rows(cells)
    assert rows[EPS_BN]["synthetic"]["status"] == "unclear"
    advice, = guide(build_matrix(cells + _run({}, {}, cases=("probe_default_eps_bn", "bn1d_nc"), name="numpy"),
                                 ["synthetic", "numpy"]))
    assert "eps=0.7" not in " ".join(advice.agree + [str(advice.like)])


def test_a_listed_running_normalizer_keeps_its_eps():
    # the control: the same probe, training normalized with a listed (debiased) running update, eps 1e-4
    cells = _run({"training_statistics": "running_updated", "initial_running_stats": "zero_debiased",
                  "default_eps": 1e-4}, {}, cases=("probe_default_eps_bn",))
    assert cells[0]["measured"]["default_eps"]["name"] == "0.0001", cells[0]["measured"]["default_eps"]


def test_a_reading_the_probe_cannot_decide_is_picked_by_the_run_s_other_cases():
    readings = [{"given": {"norm_variance": "biased"}, "value": 2.6e-5, "uncertainty": 1e-6},
                {"given": {"norm_variance": "unbiased"}, "value": 2.0e-5, "uncertainty": 1e-9}]
    covered = measure.default_measurement("default_eps", *measure.covering(readings))
    probe = {"case": "probe_default_eps_ln", "adapter": "a", "outcome": "pass", "layer": "layer_norm",
             "conventions": {}, "measured": {"default_eps": {**covered, "alternatives": readings,
                                                             "expected": None, "status": "no-doc"}}}
    assert all(abs(r["value"] - covered["value"]) <= 3 * covered["uncertainty"] for r in readings)

    def shows(variant, layer="layer_norm"):
        return {"case": f"nv_{variant}_{layer}", "adapter": "a", "outcome": "pass", "layer": layer, "measured": {},
                "conventions": {"norm_variance": {"state": "named", "observed": variant, "expected": None}}}

    _, rows = _rows([probe, shows("unbiased"), shows("biased", "batch_norm")], ("a",))
    cell = rows[EPS_LN]["a"]
    assert (cell["value"], cell["uncertainty"]) == (2.0e-5, 1e-9), cell
    assert "norm_variance unbiased from the run's other cases" in cell["observed"]
    _, rows = _rows([probe, shows("unbiased"), shows("biased")], ("a",))  # the run does not tell: as measured
    assert rows[EPS_LN]["a"]["value"] == covered["value"]


def test_a_cumulative_average_default_is_read_as_momentum_none():
    cells = _run({"default_momentum": None}, {"momentum_form": "weight_on_new"}, cases=("probe_default_momentum_bn",))
    m = cells[0]["measured"]["default_momentum"]
    assert m["name"] == "cumulative average" and m["value"] is None, m
    assert "initial_running_stats" not in cells[0]["message"], cells[0]["message"]


def test_a_cumulative_average_default_gives_momentum_none_advice_never_a_weight_of_1():
    cases = CASES + ("bn_cumulative",)
    cells = _run({"default_momentum": None}, {}, cases=cases) + _run({}, {}, cases=cases, name="numpy")
    matrix, rows = _rows(cells, ("synthetic", "numpy"))
    assert rows[MOMENTUM]["synthetic"]["label"] == "cumulative average", rows[MOMENTUM]["synthetic"]
    advice, = guide(matrix)
    line = next(line for line in advice.agree if line.startswith("momentum"))
    assert "synthetic averages cumulatively (momentum=None)" in line and "numpy momentum=None" in line, line
    said = " ".join(advice.agree + like_lines(advice))
    assert "momentum=1" not in said and "momentum=1.0" not in said, said
    assert "numpy with synthetic's defaults: batch_norm_steps(batches, x_eval, ..., momentum=None)" in like_lines(advice)
    assert "synthetic with numpy's defaults: batch_norm_steps(batches, x_eval, ..., momentum=0.1)" in like_lines(advice)
    # the other side without a cumulative average: no argument reproduces the default, and no line claims one
    next(r for r in matrix["rows"] if r["row"] == "cumulative average (momentum=None)")["cells"]["numpy"].update(
        label="not available", observed="not available")
    advice, = guide(matrix)
    line = next(line for line in advice.agree if line.startswith("momentum"))
    assert "numpy has no cumulative average: no argument reproduces synthetic's default" in line, line
    assert not any(line.startswith("numpy with") and "momentum" in line for line in like_lines(advice))


# -- 4. precision rows judge precision -----------------------------------------------------------------

class _FirstBatchStart(NumpyAdapter):
    """float64 throughout, but the running statistics start at the first batch's: a convention nobody lists."""

    def update(self, running, batch_stat, momentum, step):
        return batch_stat.copy() if step == 1 else super().update(running, batch_stat, momentum, step)


class _Float32RunningMean(NumpyAdapter):
    """Follows the listed profile, but rounds its float64 running mean to float32: lost precision."""

    def update(self, running, batch_stat, momentum, step):
        return super().update(running, batch_stat, momentum, step).astype("float32").astype(running.dtype)


@pytest.mark.parametrize("adapter, label", [(_FirstBatchStart(name="synthetic"), "not determined"),
                                            (_Float32RunningMean(name="synthetic"), "no"),
                                            (NumpyAdapter(name="synthetic"), "yes")])
def test_float64_kept_is_judged_against_the_implementation_s_own_profile(adapter, label):
    expectation = Expectation("synthetic", ("synthetic",), {}, outcomes=[])
    cell = run_cell(adapter, "synthetic", "dtype_bn_float64", expectation, None)
    _, rows = _rows([cell])
    assert rows["float64 kept float64 (BatchNorm)"]["synthetic"]["label"] == label, cell["message"]
    if label == "not determined":
        assert rows["float64 kept float64 (BatchNorm)"]["synthetic"]["status"] == "unclear"


def _half_cell(adapter, case, documented=None):
    expectation = Expectation("synthetic", ("synthetic",),
                              {k: {"variant": v, "cite": "-"} for k, v in (documented or {}).items()}, outcomes=[])
    cell = run_cell(adapter, "synthetic", case, expectation, None)
    title = ("float16 " if "float16" in case and "bfloat16" not in case else "bfloat16 ") + (
        "LayerNorm" if "_ln_" in case else "BatchNorm")
    return _rows([cell])[1][title]["synthetic"]


@pytest.mark.parametrize("case", ["dtype_ln_float16", "dtype_ln_bfloat16"])
def test_a_half_precision_miss_that_a_convention_explains_says_so(case):
    # normalizes with N-1 where N is documented: in float16 the case cannot name it, yet it is no precision loss
    cell = _half_cell(NumpyAdapter({"norm_variance": "unbiased"}, name="synthetic"), case, {"norm_variance": "biased"})
    assert cell["detail"].endswith("tolerance; a convention, not precision: within tolerance of its own profile "
                                   "(norm_variance unbiased)"), cell


def test_a_half_precision_miss_is_precision_or_not_determined():
    from normconf.judge.mutants import MUTANTS
    make = {m.name: m.make for m in MUTANTS}
    lost = _half_cell(make["rsqrt_8_bit_estimate"](), "dtype_ln_float16")  # an 8-bit rsqrt: precision, no note
    assert lost["detail"].endswith("x tolerance") and lost["status"] != "unclear", lost
    unfit = _half_cell(make["gamma_beta_swapped"](), "dtype_ln_float16")
    assert "precision not determined: no profile fits y" in unfit["detail"] and unfit["status"] == "unclear", unfit


# -- 5. an adapter that could not be imported says why; a run where nothing could run fails ----------

BROKEN = textwrap.dedent('''
    from normconf.adapters.numpy_adapter import NumpyAdapter

    class Broken(NumpyAdapter):
        """Its framework is missing: availability() says why."""
        name = "broken"

        def availability(self):
            return "No module named 'myframework'"
''')


def test_an_adapter_that_cannot_be_imported_says_why_once_and_an_empty_run_fails(tmp_path):
    plugin = write_plugin(tmp_path, BROKEN)
    code, data, output = run_suite(tmp_path, "--frameworks=broken", f"--adapter={plugin}:Broken", "-n", "0",
                                   "-p", "no:randomly", "-k", "ln_last1 or bn1d_nc")
    assert output.count("NOT INSTALLED broken: No module named 'myframework'") == 1, output[-2000:]
    assert code == 2, output[-2000:]
    assert "nothing could run: broken could not be imported (No module named 'myframework')" in output
    assert "Traceback" not in output


def test_a_run_with_one_importable_adapter_still_passes(tmp_path):
    plugin = write_plugin(tmp_path, BROKEN)
    code, data, output = run_suite(tmp_path, "--frameworks=broken,numpy", f"--adapter={plugin}:Broken", "-n", "0",
                                   "-p", "no:randomly", "-k", "test_golden and (ln_last1 or bn1d_nc)")
    assert code == 0 and "NOT INSTALLED broken" in output and "nothing could run" not in output, output[-2000:]


def test_an_adapter_that_documents_nothing_gets_no_differs_mark():
    # one value per channel raises here, an outcome nobody declared: a finding, not a difference from documentation
    cells = _run({}, {}, cases=("stress_bn_one_value_per_channel", "bn1d_nc"))
    assert cells[0]["outcome"] == "error" and cells[0]["behaviour"] == "raises"
    matrix, rows = _rows(cells)
    assert rows["one value per channel (training)"]["synthetic"]["status"] == "no-doc"
    assert "raises!" not in text_matrix(matrix)
    documented = _run({}, {"running_variance": "unbiased"}, cases=("stress_bn_one_value_per_channel", "bn1d_nc"))
    assert _rows(documented)[1]["one value per channel (training)"]["synthetic"]["status"] == "disagrees"


def _two_eps_matrix():
    cells = _run({"default_eps": 2e-5}, {}, cases=("probe_default_eps_ln", "ln_last1")) + _run(
        {}, {}, cases=("probe_default_eps_ln", "ln_last1"), name="numpy")
    return build_matrix(cells, ["synthetic", "numpy"])


def test_a_plugin_without_argument_names_gets_none_printed():
    info = {"synthetic": {"plugin": "mine.py:Synthetic"}, "numpy": {}}
    advice, = guide(_two_eps_matrix(), info)
    line = next(line for line in like_lines(advice) if line.startswith("synthetic with numpy"))
    assert line == "synthetic with numpy's defaults: synthetic declares no argument names (the values: eps=1e-05)"


def test_a_plugin_s_declared_argument_names_are_used():
    names = {"layer_norm": "mylib.LayerNorm(dim, {})", "batch_norm": "mylib.BatchNorm(dim, {})", "eps": "epsilon"}
    info = {"synthetic": {"plugin": "mine.py:Synthetic", "arguments": declared_arguments("plug-in", names)},
            "numpy": {}}
    advice, = guide(_two_eps_matrix(), info)
    assert "synthetic with numpy's defaults: mylib.LayerNorm(dim, epsilon=1e-05)" in like_lines(advice)


@pytest.mark.parametrize("names, problem", [({"layer_norm": "f({})"}, "lacks batch_norm"),
                                            ({"layer_norm": "f()", "batch_norm": "g({})"}, "needs a {}"),
                                            ({"layer_norm": "f({})", "batch_norm": "g({})", "epsilon": "e"},
                                             "unknown field 'epsilon'")])
def test_declared_argument_names_are_checked(names, problem):
    with pytest.raises(ValueError, match=r"plug-in 'x': `arguments`") as info:
        declared_arguments("plug-in 'x'", names)
    assert problem in str(info.value)


# -- 6. porting lines complete and priced --------------------------------------------------------------

def test_the_cost_of_a_running_variance_port_follows_the_formula():
    """PyTorch's documented update, by hand: r = (1 - m) r + m v per step from r = 1, v the batch variance
    (biased, or times N/(N-1)); eval y = gamma (x - mean_r) / sqrt(r + eps) + beta."""
    import numpy as np

    from normconf.golden import fixtures
    from normconf.reports.cost import drift
    fx = fixtures.load_case("bn2d_nchw")
    x, xe = fx.inputs["x"].astype(np.float64), fx.inputs["x_eval"].astype(np.float64)
    g, b, m, eps = fx.inputs["gamma"].astype(np.float64), fx.inputs["beta"].astype(np.float64), 0.1, 1e-5
    n = x.shape[1] * x.shape[3] * x.shape[4]
    mean_r, var_r = np.zeros(3), {"biased": np.ones(3), "unbiased": np.ones(3)}
    for batch in x:
        v = batch.var(axis=(0, 2, 3))
        mean_r = (1 - m) * mean_r + m * batch.mean(axis=(0, 2, 3))
        var_r = {k: (1 - m) * r + m * v * (n / (n - 1) if k == "unbiased" else 1) for k, r in var_r.items()}
    shape = (1, 3, 1, 1)
    y = {k: g.reshape(shape) * (xe - mean_r.reshape(shape)) / np.sqrt(r.reshape(shape) + eps) + b.reshape(shape)
         for k, r in var_r.items()}
    found = drift("bn2d_nchw", "running_variance", "unbiased", "biased")
    assert found["running_mean"] == 0
    assert found["running_var"] == pytest.approx(np.max(np.abs(var_r["unbiased"] - var_r["biased"])), rel=1e-9)
    assert found["y_eval"] == pytest.approx(np.max(np.abs(y["unbiased"] - y["biased"])), rel=1e-9)


def test_the_guide_prices_what_it_cannot_reconcile_and_its_flax_line_is_complete():
    import json

    from normconf.reports.table import matrix_of
    from tests.self.suite_runner import REPO
    baseline = REPO / "reports" / "baselines" / "pinned.json"
    info = json.loads(baseline.read_text())["adapter_info"]
    advice = next(a for a in guide(matrix_of(baseline), info) if {a.a.label, a.b.label} == {"torch", "Flax"})
    variance = next(line for line in advice.cannot if line.startswith("running_variance"))
    assert "Measured cost (unbiased vs biased" in variance and "bn2d_nchw (3 steps): running_var" in variance
    assert "multiply by (N-1)/N" in variance  # what to do: convert the stored statistics at load time
    flax = next(line for line in like_lines(advice) if line.startswith("Flax with torch's defaults"))
    assert "LayerNorm(epsilon=1e-05, use_fast_variance=False)" in flax
    assert "BatchNorm(momentum=0.9, axis=1, use_fast_variance=False)" in flax


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("torch", "flax", "keras", "tensorflow")),
                    reason="needs torch, flax and keras with tensorflow")
@pytest.mark.parametrize("other, backend", [("flax", None), ("keras", "tensorflow")])
def test_following_the_guide_by_hand_at_mean_offset_1000(tmp_path, other, backend):
    """torch.nn.BatchNorm2d's defaults, and the other framework called as the guide's copy-paste line says,
    trained on the float32 NCHW batches of stress_bn_offset_1e3_nchw (mean offset 1000): training outputs
    and running means agree within the case's tolerance; the eval outputs differ by the running-variance
    cost the guide states, within 10 %."""
    import json
    import os
    import subprocess
    import sys

    import numpy as np

    from normconf.golden import fixtures
    from normconf.golden.generate import case_floors
    from normconf.golden.tolerance import scaled_error
    from normconf.reports.cost import drift
    from normconf.reports.table import matrix_of
    from tests.self.suite_runner import REPO
    baseline = REPO / "reports" / "baselines" / "pinned.json"
    # the pair of torch and the group holding the adapter followed (a family splits where its backends differ)
    target = "flax_linen" if other == "flax" else f"keras[{backend}]"
    advice = next(a for a in guide(matrix_of(baseline), json.loads(baseline.read_text())["adapter_info"])
                  if "torch" in (a.a.label, a.b.label) and target in a.a.members + a.b.members)
    torch_side, other_side = (advice.a, advice.b) if advice.a.label == "torch" else (advice.b, advice.a)
    kwargs = advice.like[(torch_side.name, other_side.name)]["batch_norm"]
    case = "stress_bn_offset_1e3_nchw"
    runs = {}
    for framework, args in (("torch", {}), (other, kwargs)):
        out = tmp_path / f"{framework}.npz"
        env = {**os.environ, **({"KERAS_BACKEND": backend} if backend else {})}
        proc = subprocess.run([sys.executable, "-m", "tests.self.porting_by_hand", framework, json.dumps(args), case,
                               str(out)], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[framework] = np.load(out)
    fx = fixtures.load_case(case)
    tolerances, floors = fx.tolerances, case_floors(fx.case, fx.inputs)
    for output in ("y_train", "running_mean"):
        error = scaled_error(runs[other][output], runs["torch"][output], floors[output])
        assert error <= tolerances[output], (output, error, tolerances[output])
    stated = drift(case, "running_variance", "unbiased", "biased")["y_eval"]
    variance = next(line for line in advice.cannot if line.startswith("running_variance"))
    assert f"{case} (3 steps): running_var" in variance and f"y_eval {stated:.2g}" in variance
    measured = float(np.max(np.abs(runs[other]["y_eval"].astype(np.float64) - runs["torch"]["y_eval"])))
    assert abs(measured - stated) <= 0.1 * stated, (measured, stated)
