"""The regression check (reports/compare.py): facts not text, labels, one entry per cause, noise that
cannot cross a threshold, and bad files as one-line errors.  Runs are built in-process from real cell
records of the numpy adapter and of mutants of it (judge/mutants.py), so each change is one that
an implementation really produced."""
import copy
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.cases import CASES
from normconf.judge.expectations import Expectation, load_all
from normconf.judge.mutants import MUTANTS_BY_NAME
from normconf.judge.verdict import new_cell, run_cell
from normconf.reports import changes, compare, results

REPO = results.Path(__file__).resolve().parents[2]
EXPECTATION = load_all()[0]["numpy"]
VERSIONS = {"numpy": {"numpy": "2.4.6", "python": "3.11.7"}}


def cells_of(adapter, cases=CASES, expectation=EXPECTATION, name="numpy") -> list[dict]:
    return [{**run_cell(adapter, name, case, expectation, None), "versions": VERSIONS["numpy"]} for case in cases]


def run_of(cells, adapters=("numpy",)) -> dict:
    return results.assemble(cells, adapters=list(adapters), versions={a: VERSIONS["numpy"] for a in adapters},
                            timings={}, stale=[], expectation_errors=[])


@pytest.fixture(scope="module")
def baseline() -> dict:
    return run_of(cells_of(NumpyAdapter()))


def with_cells(run: dict, replacement: list[dict]) -> dict:
    """`run` with some of its cells replaced (same case and adapter) by other records."""
    new = {(c["case"], c["adapter"]): c for c in replacement}
    return run_of([new.get((c["case"], c["adapter"]), c) for c in run["cells"]], run["adapters"])


def mutant_cells(name: str, cases=CASES) -> list[dict]:
    return cells_of(MUTANTS_BY_NAME[name].make(), cases)


def entries(comparison, label=None):
    return [e for e in comparison["entries"] if label is None or e["label"] == label]


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "normconf", *args], cwd=cwd, capture_output=True, text=True)


def dump(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


# ------------------------------------------------------------------------------------------ the must-shows

def test_identical_runs_compare_clean(baseline):
    comparison = compare.compare(baseline, copy.deepcopy(baseline))
    assert comparison["entries"] == [] and comparison["compared"] == len(CASES)
    assert compare.exit_code(comparison) == 0


def test_planted_biased_running_variance_is_one_regression_naming_the_cell(baseline, tmp_path):
    current = with_cells(baseline, mutant_cells("running_var_biased", ["bn1d_nc"]))
    proc = cli("compare", dump(tmp_path, "base.json", baseline), dump(tmp_path, "cur.json", current))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    comparison = compare.compare(baseline, current)
    assert [(e["label"], e["adapter"], e["kind"], e["what"], [c["case"] for c in e["cells"]])
            for e in comparison["entries"]] == \
        [("regressed", "numpy", "convention", "running_variance unbiased -> biased", ["bn1d_nc"])]
    assert comparison["entries"][0]["cells"][0]["detail"].startswith("pass -> fail")
    assert "REGRESSED numpy: running_variance unbiased -> biased (1 case: bn1d_nc" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == f"1 regression against {tmp_path / 'base.json'}"


def _scaled(value, factor):
    """Every floating-point figure times `factor`, also those written inside text ("1e-05 ± 2e-10")."""
    if isinstance(value, float):
        return value * factor
    if isinstance(value, str):
        return re.sub(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?",
                      lambda m: f"{float(m.group(0)) * factor:g}", value)
    if isinstance(value, list):
        return [_scaled(v, factor) for v in value]
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def inaccurate_run(baseline) -> dict:
    """Known-inaccurate cells beside accurate ones: E[x^2] - E[x]^2 in float32 misses the large-mean
    cases by up to 1e5 tolerances, and the measured running-variance factor there is off by as much."""
    return with_cells(baseline, mutant_cells("naive_variance_float32", [c for c in CASES if "offset" in c]))


@pytest.mark.parametrize("factor", [0.7, 1.3])
def test_every_float_scaled_and_another_platform_is_not_a_regression(inaccurate_run, tmp_path, factor):
    noisy = _scaled(inaccurate_run, factor)
    noisy["platform"] = {"system": "Darwin-23.4.0-arm64-arm-64bit", "python": "3.11.9", "machine": "arm64"}
    assert any(c["accuracy"] and (c["accuracy"]["error"] or 0) > 100 for c in inaccurate_run["cells"])
    proc = cli("compare", dump(tmp_path, "base.json", noisy), dump(tmp_path, "cur.json", inaccurate_run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    comparison = compare.compare(noisy, inaccurate_run)
    # accuracy, outcomes and conventions are untouched; only the measured figures moved (neutral)
    assert {(e["label"], e["kind"]) for e in comparison["entries"]} <= {("changed", "default")}
    assert "platform Darwin-23.4.0-arm64-arm-64bit -> " in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith(f"0 regressions against {tmp_path / 'base.json'}")


def test_noise_inside_a_known_inaccuracy_is_no_change(inaccurate_run):
    noisy = copy.deepcopy(inaccurate_run)
    for cell in noisy["cells"]:  # a 5% and a 90% larger error where it is already far over the tolerance
        if cell["accuracy"] and (cell["accuracy"]["error"] or 0) > 1:
            cell["accuracy"]["error"] *= 1.9 if cell["case"].endswith("1e4") else 1.05
    assert compare.compare(inaccurate_run, noisy)["entries"] == []


# ---------------------------------------------------------------------------------------------- labels

def _edited(run, case, **fields):
    out = copy.deepcopy(run)
    cell = next(c for c in out["cells"] if c["case"] == case)
    cell.update(fields)
    return out


def test_known_deviation_gone_is_improved_and_back_is_regressed(baseline):
    rule = "numpy.toml#deviation[0]"
    xfail = _edited(baseline, "ln_last1", outcome="xfail", rule=rule, message="accuracy: ... [known: one-pass]")
    xpass = _edited(baseline, "ln_last1", outcome="xpass", rule=rule, message=f"known deviation {rule} no longer happens")
    gone, back = compare.compare(xfail, xpass), compare.compare(xpass, xfail)
    assert [(e["label"], e["what"]) for e in gone["entries"]] == [("improved", f"known deviation {rule} no longer happens")]
    assert [(e["label"], e["what"]) for e in back["entries"]] == [("regressed", f"known deviation {rule} is back")]
    assert (compare.exit_code(gone), compare.exit_code(back)) == (0, 1)


def test_error_that_now_passes_is_improved_and_the_reverse_regressed(baseline):
    broken = copy.deepcopy(baseline)
    cell = next(c for c in broken["cells"] if c["case"] == "ln_last2")
    cell.clear()
    cell.update(new_cell("ln_last2", "numpy"), outcome="error", message="TypeError: layer_norm() got an unexpected keyword")
    fixed = compare.compare(broken, baseline)
    assert [(e["label"], e["what"]) for e in fixed["entries"]] == [("improved", "now passes (was error)")]
    worse = compare.compare(baseline, broken)
    assert [(e["label"], e["what"]) for e in worse["entries"]] == [("regressed", "now raises TypeError")]


def test_a_change_nothing_documents_is_neutral(baseline):
    undocumented = Expectation("plug-in 'numpy'", ("numpy",), {})
    before = run_of(cells_of(NumpyAdapter(), ["bn1d_nc", "ln_last1"], undocumented))
    after = with_cells(before, cells_of(MUTANTS_BY_NAME["running_var_biased"].make(), ["bn1d_nc"], undocumented))
    comparison = compare.compare(before, after)
    assert [(e["label"], e["what"]) for e in comparison["entries"]] == [("changed", "running_variance unbiased -> biased")]
    assert compare.exit_code(comparison) == 0


def test_new_cells_and_cells_not_run(baseline):
    mine = [{**c, "adapter": "my_kernel"} for c in baseline["cells"]]
    wider = run_of(baseline["cells"] + mine, ["numpy", "my_kernel"])
    grown = compare.compare(baseline, wider)
    assert [(e["label"], e["adapter"], e["what"], len(e["cells"])) for e in grown["entries"]] == \
        [("new", "my_kernel", "not in the baseline (new adapter)", len(CASES))]
    shrunk = compare.compare(wider, run_of([c for c in baseline["cells"] if "offset" in c["case"]]))
    assert shrunk["entries"] == [] and compare.exit_code(shrunk) == 0
    offsets = sum("offset" in c for c in CASES)
    assert shrunk["not_run"] == {"cells": 2 * len(CASES) - offsets, "adapters": {"my_kernel": len(CASES),
                                 "numpy": len(CASES) - offsets}, "whole": ["my_kernel"]}
    assert changes.not_run_line(shrunk) == (f"not run: {2 * len(CASES) - offsets} baseline cells (adapters not run: "
                                            f"my_kernel; cells left out: numpy {len(CASES) - offsets})")


def test_not_installed_is_not_run_never_a_regression(baseline):
    gone = run_of([{**new_cell(c, "numpy"), "outcome": "not_installed"} for c in CASES])
    comparison = compare.compare(baseline, gone)
    assert comparison["entries"] == [] and comparison["not_run"]["whole"] == ["numpy"]
    assert compare.exit_code(comparison) == 2  # nothing in common: not comparable
    assert changes.verdict({**comparison, "baseline": {"path": "b.json"}}).startswith("nothing compared against b.json")


# --------------------------------------------------------------------------------------------- grouping

def test_one_cause_in_many_cells_is_one_entry(baseline):
    current = with_cells(baseline, mutant_cells("running_var_biased"))
    comparison = compare.compare(baseline, current)
    shown = sorted(c["case"] for c in current["cells"]
                   if c["conventions"].get("running_variance", {}).get("state") == "named")
    one_value = sorted(c for c in CASES if CASES[c].family == "one_value_per_channel")
    # the convention and the measured running-variance factor are one fact; the documented raise on
    # one value per channel that no longer happens is a second observable, in words of its own
    assert [(e["label"], e["what"], [c["case"] for c in e["cells"]]) for e in comparison["entries"]] == [
        ("regressed", "running_variance unbiased -> biased", shown),
        ("regressed", "no longer raises with one value per channel", one_value)]
    assert len(shown) > 20


class Float32Inside(NumpyAdapter):
    """float64 inputs computed in float32 (as Keras on jax and torch do)."""

    def compute_dtype(self, x):
        return np.dtype(np.float32)


def test_float64_computed_in_float32_is_worded_once(baseline):
    float64 = [c for c in CASES if CASES[c].dtype == "float64"]
    comparison = compare.compare(baseline, with_cells(baseline, cells_of(Float32Inside(), float64)))
    assert [(e["label"], e["what"], sorted(c["case"] for c in e["cells"])) for e in comparison["entries"]] == \
        [("regressed", "float64 now computed in float32", sorted(float64))]
    assert changes.entry_line(comparison["entries"][0]).startswith(
        f"REGRESSED numpy: float64 now computed in float32 ({len(float64)} cases: ")


def test_default_eps_and_nan_in_plain_words(baseline):
    eps = compare.compare(baseline, with_cells(baseline, mutant_cells("default_eps_1e-3", ["probe_default_eps_ln",
                                                                                          "probe_default_eps_bn"])))
    assert [(e["label"], e["what"], len(e["cells"])) for e in eps["entries"]] == \
        [("regressed", "default eps 1e-05 -> 0.001", 2)]
    constant = [c for c in CASES if CASES[c].distribution == "constant"]
    nan = compare.compare(baseline, with_cells(baseline, mutant_cells("nan_on_zero_variance", constant)))
    assert ("regressed", "nonfinite", "now returns NaN on constant input") in \
        {(e["label"], e["kind"], e["what"]) for e in nan["entries"]}


def test_entries_group_by_adapter(baseline):
    twin = [{**c, "adapter": "twin"} for c in baseline["cells"]]
    both = run_of(baseline["cells"] + twin, ["numpy", "twin"])
    planted = mutant_cells("running_var_biased", ["bn1d_nc", "bn2d_nchw"])
    after = with_cells(both, planted + [{**c, "adapter": "twin"} for c in planted])
    comparison = compare.compare(both, after)
    assert [(e["adapter"], len(e["cells"])) for e in comparison["entries"]] == [("numpy", 2), ("twin", 2)]
    assert changes.verdict({**comparison, "baseline": {"path": "b.json"}}) == "2 regressions against b.json"


def test_versions_are_reported_never_judged(baseline):
    upgraded = copy.deepcopy(baseline)
    upgraded["versions"]["numpy"]["numpy"] = "2.5.0"
    comparison = compare.compare(baseline, upgraded)
    assert comparison["versions"] == [{"package": "numpy", "before": "2.4.6", "after": "2.5.0", "adapters": ["numpy"]}]
    assert comparison["entries"] == [] and compare.exit_code(comparison) == 0


def test_comparison_is_in_the_page(baseline):
    from normconf.reports.html import render
    current = with_cells(baseline, mutant_cells("running_var_biased", ["bn1d_nc"]))
    current["comparison"] = compare.compare(baseline, current)
    current["comparison"]["baseline"]["path"] = "reports/baselines/<pinned>.json"
    page = render(current)
    top = page.split('<section id="changes">')[1].split("</section>")[0]
    assert page.index('id="changes"') < page.index('id="matrix"')
    assert "1 regression against reports/baselines/&lt;pinned&gt;.json" in top
    assert 'data-label="regressed"' in top and "running_variance unbiased -&gt; biased" in top and "bn1d_nc" in top


# ------------------------------------------------------------------------------------------- bad files

def _missing_key(d):
    del d["cells"][3]["conventions"]


def _wrong_type(d):
    d["cells"][5]["accuracy"]["error"] = "0.3x"


BAD = {  # kind: (content or an edit of a good file, the problem named, as a regular expression)
    "empty": ("", r"empty file"),
    "truncated": (None, r"not JSON \(Unterminated|not JSON \(Expecting"),
    "not JSON": ("{not json", r"not JSON"),
    "a list": ("[1, 2]", r"a list at the top, expected an object"),
    "other schema": ({"schema_version": 1, "cells": []}, r"schema version 1, this normconf reads 2"),
    "no schema": ({"hello": 1}, r"not a normconf results file"),
    "missing key": (_missing_key, r"cells\[3\] \(\w+@numpy\): missing key 'conventions'"),
    "wrong type": (_wrong_type, r"cells\[5\] \(\w+@numpy\)\.accuracy\.error: a string, expected a number or null"),
    "unknown outcome": (lambda d: d["cells"][0].update(outcome="great"), r"'great' is not one of pass, fail"),
    "NaN": (None, r"NaN is not a number a results file holds"),
    "cells not a list": (lambda d: d.update(cells={}), r"cells: an object, expected a list"),
    "adapter not listed": (lambda d: d["cells"][0].update(adapter="ghost"), r"adapter 'ghost' is not in `adapters`"),
}


def bad_file(tmp_path, baseline, kind) -> tuple[str, str]:
    content, problem = BAD[kind]
    text = json.dumps(baseline)
    if kind == "truncated":
        content = text[: len(text) // 2]
    elif kind == "NaN":
        content = text.replace('"tolerance": ', '"tolerance": NaN, "x": ', 1)
    elif callable(content):
        data = copy.deepcopy(baseline)
        content(data)
        content = json.dumps(data)
    return dump(tmp_path, "bad.json", content if isinstance(content, str) else json.dumps(content)), problem


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_file_is_one_line_exit_2_for_every_command(baseline, tmp_path, kind):
    bad, pattern = bad_file(tmp_path, baseline, kind)
    good = dump(tmp_path, "good.json", baseline)
    for args in (("compare", bad, good), ("compare", good, bad), ("merge", good, bad, "-o", str(tmp_path / "m")),
                 ("render", bad, "-o", str(tmp_path / "r"))):
        proc = cli(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (args, proc.stdout, proc.stderr)
        assert lines[0].startswith(f"normconf {args[0]}: {bad}: ") and re.search(pattern, lines[0]), lines[0]
        assert "Traceback" not in proc.stderr
    with pytest.raises(results.ResultsError, match=pattern):
        results.read(bad)


def test_missing_file_and_directory(tmp_path, baseline):
    good = dump(tmp_path, "good.json", baseline)
    proc = cli("compare", str(tmp_path / "nope.json"), good)
    assert proc.returncode == 2 and proc.stderr.strip() == f"normconf compare: {tmp_path / 'nope.json'}: no such file"
    proc = cli("render", str(tmp_path), "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_render_and_merge_refuse_an_unusable_output(tmp_path, baseline):
    good = dump(tmp_path, "good.json", baseline)
    existing = tmp_path / "report.html"
    existing.write_text("mine")
    for command in (("render", good), ("merge", good)):
        proc = cli(*command, "-o", str(existing))
        assert proc.returncode == 2 and f"{existing}: exists and is not a directory" in proc.stderr, proc.stderr
        assert existing.read_text() == "mine"
        under_a_file = existing / "out"
        proc = cli(*command, "-o", str(under_a_file))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr, proc.stderr
    proc = cli("render", good, "-o", str(tmp_path / "fresh"))
    assert proc.returncode == 0 and (tmp_path / "fresh" / "report.html").exists()


def test_merged_shards_say_what_they_leave_out(baseline, tmp_path):
    from normconf.reports.merge import merge
    half = len(baseline["cells"]) // 2
    shards = [dump(tmp_path, "s0.json", {**baseline, "cells": baseline["cells"][:half]}),
              dump(tmp_path, "s1.json", {**baseline, "cells": baseline["cells"][half:],
                                         "run": results.run_status(interrupted="KeyboardInterrupt")})]
    run = merge(shards)["run"]
    assert run["interrupted"] and run["partial"] and not run["complete"]
    assert run["reasons"][0].startswith("no shard ran torch, torch_functional, flax_linen")
    assert "no shard ran the mutant checks" in run["reasons"] and "interrupted: KeyboardInterrupt" in run["reasons"]
