"""The regression check as CI runs it (`pytest --baseline`), and what a run writes: partial and
interrupted runs are marked and never replace a complete report, --collect-only writes nothing, a bad
baseline ends the run before it starts, an unwritable report directory is one line, and the verdict is
the last line of the run."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.cases import CASES
from normconf.golden.generated import DEFAULT_EXAMPLES
from normconf.judge.expectations import load_all
from normconf.judge.mutants import MUTANTS
from normconf.judge.verdict import run_cell
from normconf.reports import output, results
from tests.self.suite_runner import REPO, run_suite, write_plugin

NUMPY = ("--frameworks=numpy", "-p", "no:randomly")
OFFSETS = sum("stress_ln_offset" in c for c in CASES)


@pytest.fixture(scope="module")
def complete(tmp_path_factory) -> dict:
    """A complete run's results (every cell the numpy adapter gives; no other framework needed)."""
    adapter, expectation = NumpyAdapter(), load_all()[0]["numpy"]
    cells = [{**run_cell(adapter, "numpy", case, expectation, None), "versions": adapter.versions()} for case in CASES]
    return results.assemble(cells, adapters=["numpy"], versions={"numpy": adapter.versions()}, timings={},
                            stale=[], expectation_errors=[])


def _report_dir_with(tmp_path, data) -> tuple:
    out = tmp_path / "out"
    output.write_report(data, out)
    return out, {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def test_selection_compares_only_what_ran_and_keeps_the_complete_report(tmp_path, complete):
    baseline = tmp_path / "baseline.json"
    results.write(complete, baseline)
    out, before = _report_dir_with(tmp_path, complete)
    code, _, output = run_suite(tmp_path, *NUMPY, "-n", "2", "-k", "stress_ln_offset", f"--baseline={baseline}")
    assert code == 0, output[-3000:]
    lines = output.strip().splitlines()
    assert lines[-1] == f"0 regressions against {baseline} ({len(CASES) - OFFSETS} cells not run)", lines[-3:]
    assert " passed" in lines[-2]  # the verdict comes after pytest's summary line
    assert sum(line.startswith("not run:") for line in lines) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # untouched
    partial = results.read(out / "partial" / "results.json")
    assert partial["run"]["partial"] and not partial["run"]["complete"]
    assert len(partial["cells"]) == OFFSETS and partial["comparison"]["compared"] == OFFSETS
    assert "<title>normconf conformance report (partial run)</title>" in (out / "partial" / "report.html").read_text()
    assert f"the last complete report stays in {out}" in output


@pytest.mark.parametrize("workers", ["0", "2"])
def test_collect_only_writes_nothing(tmp_path, complete, workers):
    out, before = _report_dir_with(tmp_path, complete)
    code, _, output = run_suite(tmp_path, *NUMPY, "-n", workers, "--collect-only", f"--baseline={out / 'results.json'}")
    assert code == 0, output[-2000:]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and "regression" not in output
    code, _, output = run_suite(tmp_path / "empty", *NUMPY, "-n", workers, "--collect-only")
    assert code == 0 and not (tmp_path / "empty" / "out").exists(), output[-2000:]


def test_bad_baseline_ends_the_run_before_it_starts(tmp_path):
    bad = tmp_path / "baseline.json"
    bad.write_text(json.dumps({"schema_version": 2, "cells": []}))
    start = time.monotonic()
    code, data, output = run_suite(tmp_path, *NUMPY, "-n", "2", f"--baseline={bad}")
    assert code == 2 and data == {} and not (tmp_path / "out").exists()
    assert output.strip().splitlines() == [f"Exit: --baseline {bad}: missing key 'platform'"], output
    assert time.monotonic() - start < 60  # no cell ran


PLANTABLE = textwrap.dedent('''
    import os
    from normconf.adapters.numpy_adapter import NumpyAdapter, PYTORCH_PROFILE

    class Plantable(NumpyAdapter):
        """The numpy adapter under a plug-in's name; NORMCONF_TEST_PLANT=1 stores the biased running
        variance where the unbiased one is documented (as if torch had changed)."""
        name = "plantable"
        documented = {k: v for k, v in PYTORCH_PROFILE.items() if v is not None}  # eps=None: no number

        def __init__(self):
            super().__init__({"running_variance": "biased"} if os.environ.get("NORMCONF_TEST_PLANT") else None)
''')


def test_planted_change_fails_the_run_with_one_entry(tmp_path):
    plugin = write_plugin(tmp_path, PLANTABLE)
    args = ("--frameworks=plantable", f"--adapter={plugin}:Plantable", "-p", "no:randomly", "-n", "0",
            "-k", "bn1d_nc or ln_last1 or bn2d_nchw")
    code, base, output = run_suite(tmp_path / "base", *args)
    assert code == 0 and len(base["cells"]) == 4, output[-3000:]  # bn1d_nc, bn1d_ncl, bn2d_nchw, ln_last1
    baseline = tmp_path / "base" / "out" / "results.json"
    code, data, output = run_suite(tmp_path / "cur", *args, f"--baseline={baseline}", env={"NORMCONF_TEST_PLANT": "1"})
    assert code == 1, output[-3000:]
    entries = data["comparison"]["entries"]
    assert [(e["label"], e["adapter"], e["what"], [c["case"] for c in e["cells"]]) for e in entries] == \
        [("regressed", "plantable", "running_variance unbiased -> biased", ["bn1d_nc", "bn1d_ncl", "bn2d_nchw"])]
    assert output.strip().splitlines()[-1] == f"1 regression against {baseline}"
    page = (tmp_path / "cur" / "out" / "report.html").read_text()
    assert "Changes since the baseline" in page and "running_variance unbiased -&gt; biased" in page


FAILS_FIRST = textwrap.dedent('''
    import os, time
    from normconf.adapters.numpy_adapter import NumpyAdapter, PYTORCH_PROFILE

    class FailsFirst(NumpyAdapter):
        """Wrong in every BatchNorm training run (the first cases of the catalog), slow in LayerNorm;
        NORMCONF_TEST_MARK names a file it creates on its first slow call."""
        name = "fails_first"
        documented = {k: v for k, v in PYTORCH_PROFILE.items() if v is not None}  # eps=None: no number

        def batch_norm_steps(self, *args):
            out = super().batch_norm_steps(*args)
            return {**out, "running_var": out["running_var"] * 3}

        def layer_norm(self, *args):
            if os.environ.get("NORMCONF_TEST_MARK"):
                open(os.environ["NORMCONF_TEST_MARK"], "a").close()
            time.sleep(0.3)
            return super().layer_norm(*args)
''')


def _plugin_args(tmp_path):
    plugin = write_plugin(tmp_path, FAILS_FIRST)
    return ("--frameworks=fails_first", f"--adapter={plugin}:FailsFirst", "-p", "no:randomly")


def test_stopped_by_x_is_marked_interrupted_and_keeps_the_complete_report(tmp_path, complete):
    out, before = _report_dir_with(tmp_path, complete)
    code, _, output = run_suite(tmp_path, *_plugin_args(tmp_path), "-n", "2", "-x")
    assert code in (1, 2), output[-3000:]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    run = results.read(out / "partial" / "results.json")
    assert run["run"]["interrupted"] and any(r.startswith("interrupted: stopping after ") and
                                             r.endswith("selected cells did not run") for r in run["run"]["reasons"])
    assert "missing" not in {c["outcome"] for c in run["cells"]}
    assert "(interrupted run)" in (out / "partial" / "report.html").read_text()


def test_ctrl_c_is_marked_interrupted(tmp_path):
    mark = tmp_path / "started"
    cmd = [sys.executable, "-m", "pytest", "-q", f"--report-dir={tmp_path / 'out'}", "-p", "no:cacheprovider",
           *_plugin_args(tmp_path), "-n", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NORMCONF_TEST_MARK": str(mark)})
    deadline = time.monotonic() + 300
    while not mark.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=300)[0]
    data = results.read(tmp_path / "out" / "results.json")
    assert data["run"]["interrupted"] and 0 < len(data["cells"]) < len(CASES), output[-3000:]
    assert data["run"]["reasons"][-1].startswith("interrupted: Ctrl-C; ")
    assert proc.returncode == 2 and "INTERNALERROR" not in output


@pytest.mark.parametrize("how", ["read-only directory", "under a file"])
def test_unwritable_report_directory_is_one_line_and_the_matrix_still_shows(tmp_path, how):
    if how == "read-only directory":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only directory")
        out = tmp_path / "out"
        out.mkdir()
        out.chmod(0o555)
    else:  # any user, root included: the report directory cannot be created where a file is
        (tmp_path / "file").write_text("a file where the report directory would go")
        out = tmp_path / "file" / "out"
    code, _, output = run_suite(tmp_path, *NUMPY, "-n", "0", "-k", "ln_last1", f"--report-dir={out}")
    lines = output.strip().splitlines()
    assert code == 2 and lines[-1].startswith(f"normconf: cannot write the report to {out}: "), lines[-3:]
    assert "normconf conformance matrix" in output and "Traceback" not in output and "INTERNALERROR" not in output


KILLS_EVERY_CELL = textwrap.dedent('''
    import os

    def pytest_runtest_call(item):
        os._exit(3)  # every worker dies at its first cell: xdist gives up after --max-worker-restart
''')


def test_crash_storm_is_interrupted_and_keeps_the_complete_report(tmp_path, complete):
    (tmp_path / "kills_every_cell.py").write_text(KILLS_EVERY_CELL)
    out, before = _report_dir_with(tmp_path, complete)
    # every adapter selected (nothing left out by choice): only the crashes can make this run incomplete
    code, _, output = run_suite(tmp_path, "-p", "no:randomly", "-p", "kills_every_cell", "-n", "2",
                                "--max-worker-restart=2", env={"PYTHONPATH": str(tmp_path)})
    assert code == 1, output[-3000:]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, output[-3000:]
    run = results.read(out / "partial" / "results.json")
    crashed = [c for c in run["cells"] if c["outcome"] == "crashed"]
    assert run["run"]["interrupted"] and not run["run"]["complete"] and crashed
    reason = run["run"]["reasons"][-1]
    not_run = (len(CASES) + DEFAULT_EXAMPLES) * len(run["adapters"]) - len(crashed)  # catalog and generated cells
    assert reason == (f"interrupted: maximum crashed workers reached: 2; {not_run} selected cells did not run "
                      f"and {len(MUTANTS)} selected mutant checks did not run"), reason
    assert f"the last complete report stays in {out}" in output


KILLS_A_MUTANT = textwrap.dedent('''
    import os

    def pytest_runtest_call(item):
        if item.nodeid.endswith("test_mutant_is_caught[eps_10x]"):
            os._exit(3)  # the worker dies in the middle of this mutant's checks
''')


def test_a_mutant_whose_worker_crashed_is_in_the_kill_table(tmp_path):
    (tmp_path / "kills_a_mutant.py").write_text(KILLS_A_MUTANT)
    code, data, output = run_suite(tmp_path, *NUMPY, "-n", "1", "-k", "eps_10x or eps_100x", "-p", "kills_a_mutant",
                                   env={"PYTHONPATH": str(tmp_path)})
    rows = {r["mutant"]: r for r in data["mutant_kill_table"]}
    assert rows["eps_10x"]["crashed"] and not rows["eps_10x"]["killed"], output[-3000:]
    assert rows["eps_100x"]["killed"]
    assert data["mutant_summary"]["crashed"] == ["eps_10x"] and "eps_10x" not in data["mutant_summary"]["survivors"]
    assert "crashed: eps_10x" in output
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<td>eps_10x</td>" in page and ">crashed</td>" in page


def test_bad_call_timeout_names_the_variable(tmp_path):
    for value in ("soon", "-1", "0", "nan", "1e300"):
        code, _, output = run_suite(tmp_path, *NUMPY, "-n", "0", env={"NORMCONF_CALL_TIMEOUT": value})
        assert code == 4 and f"NORMCONF_CALL_TIMEOUT={value!r}" in output and "Traceback" not in output, output[-2000:]


def test_self_tests_run_from_another_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           str(REPO / "tests" / "self" / "test_fixtures.py"),
                           str(REPO / "tests" / "self" / "test_bad_inputs.py") + "::test_nothing_unpickles_or_evaluates_data"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
