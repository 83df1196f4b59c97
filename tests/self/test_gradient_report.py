"""Gradient cells in the report (issue 23 item 4): the regression check, the HTML page, the porting guide and
the version history read results.json's `gradients` section.  Runs are built in-process from real gradient
cells of the numpy adapter and of the gradient mutants (judge/gradient_mutants.py), so every change is one
an implementation really produced; an older results file is the same run without the section."""
import copy
import json
import subprocess
import sys

import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.gradient_cases import GRADIENT_CASES
from normconf.judge.expectations import load_all
from normconf.judge.gradient_mutants import GRADIENT_MUTANTS
from normconf.judge.gradients import run_gradient_cell
from normconf.reports import compare, results
from normconf.reports.gradients import gradient_section

REPO = results.Path(__file__).resolve().parents[2]
EXPECTATION = load_all()[0]["numpy"]
MUTANT = {m.name: m for m in GRADIENT_MUTANTS}


def gradient_cells_of(adapter) -> list[dict]:
    return [run_gradient_cell(adapter, "numpy", case, EXPECTATION, None) for case in GRADIENT_CASES]


def run_of(gradient_cells) -> dict:
    """A results file holding only gradient cells (forward cells compare as before: test_compare.py)."""
    run = results.assemble([], adapters=["numpy"], versions={"numpy": {"numpy": "2.4.6"}}, timings={}, stale=[],
                           expectation_errors=[])
    return {**run, **gradient_section(gradient_cells)}


def older(run: dict) -> dict:
    """The same run as a results file from before gradient cells existed."""
    return {k: v for k, v in run.items() if k != "gradients"}


@pytest.fixture(scope="module")
def good() -> dict:
    return run_of(gradient_cells_of(NumpyAdapter()))


@pytest.fixture(scope="module")
def constant_statistics() -> dict:
    return run_of(gradient_cells_of(MUTANT["grad_statistics_constant"].make()))


def by_label(comparison, label):
    return [e for e in comparison["entries"] if e["label"] == label]


def test_the_good_run_passes_every_gradient_cell(good):
    assert {c["outcome"] for c in good["gradients"]["cells"]} == {"pass"}
    assert len(good["gradients"]["cells"]) == len(GRADIENT_CASES)


def test_identical_gradient_runs_compare_clean(good):
    comparison = compare.compare(good, copy.deepcopy(good))
    assert comparison["entries"] == [] and comparison["compared"] == len(GRADIENT_CASES)
    assert compare.exit_code(comparison) == 0


def test_a_gradient_cell_that_passed_and_fails_now_is_a_named_regression(good, constant_statistics):
    comparison = compare.compare(good, constant_statistics)
    regressed = by_label(comparison, "regressed")
    assert compare.exit_code(comparison) == 1 and regressed
    # the mutant's statistics treated as constants: the identified convention moved, named per row
    whats = {e["what"] for e in regressed}
    assert "gradient, gradient through the statistics: statistics_gradient through_statistics -> constant_statistics" \
        in whats, whats
    named = {c["case"] for e in regressed for c in e["cells"]}
    assert "grad_bn_float32" in named and "grad_ln_float32_mixed_gamma" in named
    assert all(e["kind"] == "gradient" for e in regressed)
    # the way back is improved, never regressed
    back = compare.compare(constant_statistics, good)
    assert not by_label(back, "regressed") and by_label(back, "improved")


def test_a_worse_dgamma_without_a_convention_is_named_by_its_output(good):
    after = run_of(gradient_cells_of(MUTANT["grad_dgamma_half_accumulation"].make()))
    regressed = by_label(compare.compare(good, after), "regressed")
    assert regressed
    assert any("dgamma/dbeta accumulation" in e["what"] and "dgamma" in e["what"].split(":")[-1] for e in regressed)


def test_a_known_deviation_appearing_regresses_and_going_improves(good):
    xfail = copy.deepcopy(good)
    cell = next(c for c in xfail["gradients"]["cells"] if c["case"] == "grad_ln_bfloat16")
    cell.update(outcome="xfail", rule="numpy.toml#deviation[0]", ratios={**cell["ratios"], "dbeta": 1.5})
    xfail = run_of(xfail["gradients"]["cells"])
    assert by_label(compare.compare(good, xfail), "regressed")  # pass -> xfail: the deviation appeared
    passed_again = compare.compare(xfail, good)
    assert by_label(passed_again, "improved") and not by_label(passed_again, "regressed")


def test_an_older_baseline_without_gradients_says_not_recorded_never_regressed(good, constant_statistics):
    comparison = compare.compare(older(good), constant_statistics)
    assert not by_label(comparison, "regressed")
    assert [e["what"] for e in comparison["entries"]] == ["gradient cells not recorded in the baseline"]
    assert comparison["gradients"]["recorded"] == {"before": False, "after": True}
    gone = compare.compare(good, older(good))  # a run without them: not run, compared with nothing
    assert gone["entries"] == [] and gone["not_run"]["cells"] == len(GRADIENT_CASES)


def test_normconf_compare_names_the_regressed_gradient_cell(good, constant_statistics, tmp_path):
    for name, run in (("base.json", good), ("now.json", constant_statistics)):
        (tmp_path / name).write_text(json.dumps(run))
    done = subprocess.run([sys.executable, "-m", "normconf", "compare", str(tmp_path / "base.json"),
                           str(tmp_path / "now.json")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "REGRESSED numpy: gradient, gradient through the statistics: statistics_gradient" in done.stdout
    assert "grad_bn_float32" in done.stdout


# -- the HTML report and the porting guide --------------------------------------------------------------

def two_adapters(good, other_cells, name="numpy_mutant") -> dict:
    """One run with the good numpy cells and another adapter's (renamed) cells beside them."""
    renamed = [{**c, "adapter": name} for c in other_cells]
    run = results.assemble([], adapters=["numpy", name], versions={"numpy": {}, name: {}}, timings={}, stale=[],
                           expectation_errors=[])
    return {**run, **gradient_section(good["gradients"]["cells"] + renamed)}


def test_the_page_has_a_gradient_block_with_every_row_and_cell(good, constant_statistics):
    from normconf.reports.html import render
    page = render(two_adapters(good, constant_statistics["gradients"]["cells"]))
    block = page[page.index('<h2 id="gradients">'):page.index('<h3>Every gradient cell')]
    for title in ("gradient through the statistics", "dtype", "dgamma/dbeta accumulation",
                  "accuracy at large offsets", "eval-mode gradient"):
        assert f"<th>{title}</th>" in block
    assert 'data-adapter="numpy" data-outcome="pass"' in block
    assert "statistics_gradient: constant_statistics (undocumented)" in block
    assert "statistics_gradient: through_statistics" in block
    for case in GRADIENT_CASES:
        assert f'data-case="{case}"' in page
    assert "<script" not in page and "http" not in block  # self-contained


def test_a_run_without_gradients_says_so_in_one_line(good):
    from normconf.reports.html import render
    page = render(older(good))
    assert "No gradient cells in this run" in page and 'id="gradient-rows"' not in page


def test_the_porting_guide_says_where_two_frameworks_gradients_differ(good):
    half = gradient_cells_of(MUTANT["grad_dgamma_half_accumulation"].make())
    from normconf.reports.gradient_rows import porting_lines
    run = two_adapters(good, half)
    lines = porting_lines(run["gradients"], run["adapters"])
    assert lines and all(" numpy within tolerance" in line for line in lines), lines
    assert any(line.startswith("dgamma/dbeta accumulation: ") and "numpy_mutant misses: dgamma" in line
               for line in lines), lines
    same = two_adapters(good, good["gradients"]["cells"])  # alike: one group, no advice
    assert porting_lines(same["gradients"], same["adapters"]) == []
    from normconf.reports.porting import porting_guide
    assert "numpy_mutant misses: dgamma" in porting_guide(run["matrix"], None, run["gradients"])


# -- the version history -------------------------------------------------------------------------------

def versioned(run: dict, version: str) -> dict:
    return {**copy.deepcopy(run), "sweep": {"version": version}}


def test_the_timeline_reads_gradient_cells_and_says_not_recorded_for_older_files(good, constant_statistics):
    from normconf.reports import history
    runs = [versioned(older(good), "1.0"), versioned(good, "2.0"), versioned(constant_statistics, "3.0")]
    tl = history.timeline(runs)
    first, second = tl["steps"]
    assert first["entries"] == [] and not [r for r in first["rows"] if r["row"].startswith("gradient")]
    assert history.gradient_note(first) == "gradient cells: not recorded in 1.0"
    assert any(e["label"] == "regressed" and e["kind"] == "gradient" for e in second["entries"])
    lines = history.render(tl)
    assert "  gradient cells: not recorded in 1.0" in lines
    assert not any("REGRESSED" in line for line in lines[:lines.index("2.0 -> 3.0 (same packages):")])
    assert any(line.startswith("  REGRESSED numpy: gradient, gradient through the statistics") for line in lines)


def test_a_gradient_row_that_moved_is_a_matrix_row_change(good):
    from normconf.reports import history
    after = run_of(gradient_cells_of(MUTANT["grad_eval_as_training"].make()))
    rows = history.timeline([versioned(good, "1.0"), versioned(after, "2.0")])["steps"][0]["rows"]
    assert {"row": "gradient: eval-mode gradient", "adapter": "numpy", "before": "pass", "after": "fail"} in rows


def test_a_history_without_gradients_anywhere_says_so_once(good):
    from normconf.reports import history
    tl = history.timeline([versioned(older(good), "1.0"), versioned(older(good), "2.0")])
    lines = history.render(tl)
    assert lines.count("gradient cells: not recorded in any of these versions") == 1
    assert "  gradient cells: not recorded" in history.readings(older(good))
    assert any(line.startswith("  gradient: eval-mode gradient: numpy pass") for line in history.readings(good))


def test_normconf_table_prints_the_gradient_rows_and_nothing_for_older_files(good, tmp_path):
    half = gradient_cells_of(MUTANT["grad_dgamma_half_accumulation"].make())
    from normconf.reports.table import text_gradients
    text = text_gradients(two_adapters(good, half))
    line = next(x for x in text.splitlines() if x.startswith("dgamma/dbeta accumulation"))
    assert line.split()[2] == "ok" and line.split()[3] == "dgamma", line  # numpy ok, the mutant's dgamma off
    assert text_gradients(older(good)) == ""
    (tmp_path / "r.json").write_text(json.dumps(two_adapters(good, half)))
    done = subprocess.run([sys.executable, "-m", "normconf", "table", str(tmp_path / "r.json")], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "gradients (backward pass):" in done.stdout, done.stderr


def test_one_adapter_has_no_gradient_porting_advice(good):
    from normconf.reports.gradient_html import porting_html
    assert porting_html(good["gradients"], good["adapters"]) == "" and porting_html(None, ["numpy"]) == ""
    same = two_adapters(good, good["gradients"]["cells"])
    assert "every pair's gradients agree" in porting_html(same["gradients"], same["adapters"])


def test_a_row_missed_by_an_error_has_no_figure_rather_than_a_crash():
    """An adapter whose gradient cells raise (torch[onnx] before its gradients were declared unsupported,
    found by CI's compiled job) misses with an output named but no error figure: the report says so."""
    from normconf.reports.gradient_rows import Reading
    reading = Reading(outcome="error", cases=["grad_ln_float32"], worst_output="dx", worst_error=None,
                      worst_case="grad_ln_float32")
    assert reading.text() == "misses: dx no figure at grad_ln_float32"
