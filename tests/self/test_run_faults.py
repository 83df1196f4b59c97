"""Faults that used to end or corrupt a run (issue 19): a plug-in that swallows its deadline, one that
kills its process without xdist, and two runs into one report folder (normconf/journal.py)."""
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

from normconf import journal
from normconf.reports import results
from tests.self.suite_runner import REPO, run_suite, write_plugin

STUBBORN = textwrap.dedent('''
    import os, time
    from normconf.adapters.numpy_adapter import NumpyAdapter
    class Stubborn(NumpyAdapter):
        name = "stubborn"
        def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
            if x.shape == (6, 12) and eps == 1e-3:    # ln_eps_1e-3: catches every timeout, for ever
                while True:
                    try:
                        time.sleep(100)
                    except BaseException:
                        pass
            if x.shape == (6, 12) and eps == 1e-6:    # ln_eps_1e-6: catches the timeout once, returns late
                try:
                    time.sleep(100)
                except BaseException:
                    pass
            if x.shape == (6, 12) and eps == 0.5:     # ln_eps_0.5: kills its process
                os._exit(3)
            return super().layer_norm(x, axes, gamma, beta, eps, affine_axes)
''')
ARGS = ("--frameworks=numpy,stubborn", "-p", "no:randomly")


def _stubborn(tmp_path):
    return f"--adapter={write_plugin(tmp_path, STUBBORN)}:Stubborn"


def test_a_plugin_that_swallows_its_deadline_is_a_timeout_and_the_run_goes_on(tmp_path):
    start = time.monotonic()
    code, data, output = run_suite(tmp_path, *ARGS, _stubborn(tmp_path), "-n", "2", "-k", "ln_eps_1e or ln_last1",
                                   env={"NORMCONF_CALL_TIMEOUT": "2"}, timeout=120)
    cells = {c["case"]: c for c in data["cells"] if c["adapter"] == "stubborn"}
    assert cells["ln_eps_1e-3"]["outcome"] == "timeout", output[-3000:]
    assert "caught the timeout 4 times, so its process was stopped" in cells["ln_eps_1e-3"]["message"]
    assert cells["ln_eps_1e-6"]["outcome"] == "timeout"
    assert cells["ln_eps_1e-6"]["message"].endswith("the call caught the timeout")
    assert cells["ln_last1"]["outcome"] == "pass"  # the run went on
    assert data["run"]["interrupted"] is False and code == 1
    assert time.monotonic() - start < 90


def test_a_plugin_that_kills_its_process_without_xdist_leaves_a_partial_report(tmp_path):
    code, data, output = run_suite(tmp_path, *ARGS, _stubborn(tmp_path), "-n", "0", "-k", "ln_eps_0 or ln_last1")
    assert code == 3 and data == {}, output[-3000:]  # pytest died mid-run, as before: nothing at the end
    # the next run into the folder writes the dead run's report from its journal, before its own cells
    code, _, output = run_suite(tmp_path, "--frameworks=numpy", "-p", "no:randomly", "-n", "0", "-k", "ln_last1")
    assert code == 0, output[-3000:]
    dead = results.read(tmp_path / "out" / "recovered" / "results.json")
    nodeid = "normconf/checks/test_golden.py::test_golden[ln_eps_0.5@stubborn]"
    assert dead["run"]["interrupted"] and f"died while running {nodeid}" in dead["run"]["reasons"][-1]
    outcomes = {(c["case"], c["adapter"]): c["outcome"] for c in dead["cells"]}
    assert outcomes[("ln_eps_0.5", "stubborn")] == "crashed"
    assert outcomes[("ln_last1", "numpy")] == "pass"  # the cells it finished are kept
    assert f"its partial report is in {tmp_path / 'out' / 'recovered'}" in output


BLOCKS = textwrap.dedent('''
    import os, pathlib, time
    from normconf.adapters.numpy_adapter import NumpyAdapter
    class Blocks(NumpyAdapter):
        name = "blocks"
        def layer_norm(self, *args):
            pathlib.Path(os.environ["NORMCONF_TEST_MARK"]).touch()
            while not pathlib.Path(os.environ["NORMCONF_TEST_MARK"] + ".go").exists():
                time.sleep(0.05)
            return super().layer_norm(*args)
''')


def test_a_second_run_into_a_busy_report_folder_is_refused_naming_the_first(tmp_path):
    mark, out = tmp_path / "started", tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", f"--report-dir={out}", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--frameworks=blocks", f"--adapter={write_plugin(tmp_path, BLOCKS)}:Blocks", "-n", "0", "-k", "ln_last1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NORMCONF_TEST_MARK": str(mark)})
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert mark.exists(), first.communicate()[0][-3000:]
        code, data, output = run_suite(tmp_path, "--frameworks=numpy", "-p", "no:randomly", "-n", "0", "-k", "ln_1")
        refusals = [line for line in output.splitlines() if "in use by another normconf run" in line]
        assert code == 2 and len(refusals) == 1 and f"(pid {first.pid}, since " in refusals[0], output[-3000:]
        assert " passed" not in output and data == {}  # refused before any cell, nothing written
    finally:
        (tmp_path / "started.go").touch()
        first_output = first.communicate(timeout=120)[0]
    assert first.returncode == 0, first_output[-3000:]
    assert [c["adapter"] for c in results.read(out / "results.json")["cells"]] == ["blocks"]  # its cells kept
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]  # lock and journal gone


def test_a_lock_left_by_a_run_on_another_host_is_not_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / journal.LOCK).write_text('{"pid": 1, "host": "elsewhere.example", "started": 0}')
    code, data, output = run_suite(tmp_path, "--frameworks=numpy", "-p", "no:randomly", "-n", "0", "-k", "ln_last1")
    assert code == 2 and data == {}, output[-3000:]
    assert "in use by a normconf run on elsewhere.example (pid 1, since " in output
    assert f"if that run is gone, delete {out / journal.LOCK}" in output


def test_a_lock_whose_process_is_gone_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / journal.LOCK).write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname()}))
    code, data, output = run_suite(tmp_path, "--frameworks=numpy", "-p", "no:randomly", "-n", "0", "-k", "ln_last1")
    assert code == 0 and [c["outcome"] for c in data["cells"]] == ["pass"], output[-3000:]
    assert not (out / journal.LOCK).exists()  # released at the end
