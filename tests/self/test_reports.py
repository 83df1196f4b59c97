"""Reports: the merge of CI shards, escaping, and the page as Chromium renders it (the regression check:
test_compare.py, test_regression_runs.py)."""
import copy
import json
import shutil
import subprocess
import sys

import pytest

from normconf.reports import html, merge, results
from tests.self.suite_runner import run_suite

REPO = results.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def numpy_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("numpy_run")
    code, data, output = run_suite(tmp, "--frameworks=numpy", "-n", "0", "-p", "no:randomly")
    assert code == 0, output[-2000:]
    return tmp / "out" / "results.json", data


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "normconf", *args], cwd=REPO, capture_output=True, text=True)


def test_merge_shards_reassembles_the_run(numpy_run, tmp_path):
    path, data = numpy_run
    half = len(data["cells"]) // 2
    for i, cells in enumerate((data["cells"][:half], data["cells"][half:])):
        (tmp_path / f"s{i}.json").write_text(json.dumps({**data, "cells": cells}))
    proc = _cli("merge", str(tmp_path / "s0.json"), str(tmp_path / "s1.json"), "-o", str(tmp_path / "merged"))
    assert proc.returncode == 0, proc.stderr
    merged = results.read(tmp_path / "merged" / "results.json")
    assert sorted(json.dumps(c, sort_keys=True) for c in merged["cells"]) == \
        sorted(json.dumps(c, sort_keys=True) for c in data["cells"])
    assert (tmp_path / "merged" / "report.html").exists()
    with pytest.raises(results.ResultsError, match="also in"):
        merge.merge([tmp_path / "s0.json", tmp_path / "s0.json"])


def test_markup_from_a_run_is_escaped(numpy_run):
    _, data = numpy_run
    evil = copy.deepcopy(data)
    cell = evil["cells"][0]
    cell["message"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    cell["adapter"] = "<b>plug</b>"
    evil["adapters"].append("<b>plug</b>")
    page = html.render(results.assemble(evil["cells"], adapters=evil["adapters"], versions={}, timings={},
                                        stale=[], expectation_errors=[]))
    assert "<script>" not in page and "<img" not in page and "<b>plug</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;plug&lt;/b&gt;" in page


def test_report_is_self_contained(numpy_run):
    # Nothing the browser would fetch: no scripts, stylesheets, images or frames; styles inline without url().
    page = (numpy_run[0].parent / "report.html").read_text()
    for tag in ("<script", "<link", "<img", "<iframe", " src=", "<object"):
        assert tag not in page
    style = page.split("<style>")[1].split("</style>")[0]
    assert "url(" not in style and "@import" not in style


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_matrix_renders_in_headless_chromium(numpy_run, tmp_path):
    path, _ = numpy_run
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (path.parent / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert '<table id="matrix">' in dom, proc.stderr[-2000:]
    row = dom.split('data-row="running_variance"')[1].split("</tr>")[0]
    assert 'class="agrees" data-adapter="numpy"' in row and ">unbiased<" in row
    row = dom.split('data-row="default eps (LayerNorm)"')[1].split("</tr>")[0]
    assert ">1e-05<" in row and "measured: 1e-05 ± " in row  # the measurement with its uncertainty on hover


def test_committed_baseline_shows_the_headline_conventions():
    baseline = results.read(REPO / "reports" / "baselines" / "pinned.json")
    rows = {r["row"]: r["cells"] for r in baseline["matrix"]["rows"]}
    running = {a: c["observed"] for a, c in rows["running_variance"].items()}
    assert running["torch"] == "unbiased" and running["keras[tensorflow]"] == "biased" and running["flax_linen"] == "biased"
    forms = {a: c["observed"] for a, c in rows["momentum_form"].items()}
    assert forms["torch"] == "weight_on_new" and forms["keras[jax]"] == "weight_on_old"
    eps = {a: c["name"] for a, c in rows["default eps (LayerNorm)"].items()}
    assert (eps["torch"], eps["flax_nnx"], eps["keras[torch]"]) == ("1e-05", "1e-06", "0.001")
    assert baseline["mutant_summary"]["survivors"] == []
