"""The version sweep and its timeline, offline: environment building is faked, the one real run uses this
interpreter (numpy family), and the version floors are checked on made-up versions."""
import json
import subprocess
import sys

import numpy as np
import pytest

from normconf import bisect, sweep
from normconf.adapters import compat
from normconf.reports import history, results

REPO = sweep.REPO


def test_companions_follow_the_family_and_the_pins():
    assert sweep.requirements("torch", "2.1.0", []) == ["torch==2.1.0", "numpy<2"]
    assert sweep.requirements("torch", "2.3.0", []) == ["torch==2.3.0"]
    assert sweep.requirements("torch", "2.1.0", ["numpy==1.26.4"]) == ["torch==2.1.0", "numpy==1.26.4"]
    assert sweep.requirements("keras", "3.3.3", ["torch==2.13.0"]) == [
        "keras==3.3.3", "tensorflow-cpu", "jax[cpu]", "torch", "torch==2.13.0"]
    assert sweep.env_key("keras", "3.3.3", []) == sweep.env_key("keras", "3.3.3", [])
    assert sweep.env_key("keras", "3.3.3", []) != sweep.env_key("keras", "3.3.3", ["torch==2.13.0"])


class FakeInstaller:
    """Stands in for uv / venv / pip: records the commands, makes the folders, answers the queries."""

    def __init__(self, fail_install=False):
        self.commands, self.fail_install = [], fail_install

    def __call__(self, cmd, **kw):
        cmd = [str(c) for c in cmd]
        self.commands.append(cmd)
        out, code = "", 0
        if "venv" in cmd:
            (sweep.Path(cmd[-1]) / "bin").mkdir(parents=True)
        elif "install" in cmd:
            code = 1 if self.fail_install else 0
            out = "error: Failed to fetch: https://pypi.org/simple/keras/" if self.fail_install else ""
        elif "m.requires" in cmd[-1]:
            out = json.dumps(["jax>=0.4.27", "numpy>=1.23.2; python_version >= '3.11'"])
        elif "m.distributions" in cmd[-1]:
            out = json.dumps({"jax": "0.10.2", "flax": "0.10.0"})
        return subprocess.CompletedProcess(cmd, code, out, "")


@pytest.mark.parametrize("uv", [None, "/opt/bin/uv"])
def test_build_installs_flax_with_the_jax_it_declares(tmp_path, monkeypatch, uv):
    fake = FakeInstaller()
    monkeypatch.setattr(sweep, "_run", fake)
    monkeypatch.setattr(sweep.shutil, "which", lambda name: uv)
    meta = sweep.build(tmp_path / "flax-0.10.0-x", "flax", "0.10.0", [])
    installs = [c for c in fake.commands if "install" in c]
    assert "flax==0.10.0" in installs[0] and "jax[cpu]" in installs[0] and "pytest-xdist>=3.5" in installs[0]
    assert installs[1][-1] == "jax[cpu]==0.4.27"
    if uv:
        assert installs[0][:5] == ["/opt/bin/uv", "pip", "install", "--prerelease", "explicit"]
    else:
        assert installs[0][1:4] == ["-m", "pip", "install"]
    assert meta["installer"] == ("uv" if uv else "pip")
    assert json.loads((tmp_path / "flax-0.10.0-x" / sweep.MARKER).read_text())["version"] == "0.10.0"


def test_a_failed_install_is_a_skip_that_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NORMCONF_ENV_CACHE", str(tmp_path))
    monkeypatch.setattr(sweep, "_run", FakeInstaller(fail_install=True))
    assert sweep.resolve("keras", "0.0.1", [], offline=False) is None
    out = capsys.readouterr().out
    assert "SKIPPED: could not build an environment (no network?)" in out and "Failed to fetch" in out
    assert not any(tmp_path.iterdir())  # nothing half-built left in the cache


def test_offline_uses_a_cached_environment_or_says_it_has_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NORMCONF_ENV_CACHE", str(tmp_path))
    assert sweep.resolve("numpy", "0.0.1", [], offline=True) is None
    assert "SKIPPED: no cached environment" in capsys.readouterr().out
    env = tmp_path / sweep.env_key("numpy", "0.0.1", [])
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    (env / sweep.MARKER).write_text("{}")
    assert sweep.resolve("numpy", "0.0.1", [], offline=True) == str(env / "bin" / "python")
    assert f"cached environment {env}" in capsys.readouterr().out


def test_sweep_on_this_interpreter_keeps_results_and_prints_the_timeline(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "normconf", "sweep", "numpy", np.__version__, "--offline",
                           "--out", str(tmp_path), "-n", "0"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "this interpreter has numpy" in proc.stdout and "timeline of numpy:" in proc.stdout
    assert f"readings at {np.__version__}:" in proc.stdout  # one version: its own readings, not an empty timeline
    assert "  running_variance: numpy unbiased" in proc.stdout
    kept = json.loads((tmp_path / "numpy" / f"{np.__version__}.json").read_text())
    assert kept["sweep"]["version"] == np.__version__ and kept["sweep"]["installed"]["numpy"] == np.__version__
    assert kept["summary"]["pass"] == len(kept["cells"])
    again = subprocess.run([sys.executable, "-m", "normconf", "timeline", "numpy", "--out", str(tmp_path)],
                           cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and f"versions: {np.__version__}" in again.stdout
    rerun = subprocess.run([sys.executable, "-m", "normconf", "sweep", "numpy", "--rerun", "--offline", "--out",
                            str(tmp_path), "-n", "0"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and f"numpy {np.__version__}: this interpreter" in rerun.stdout


def test_timeline_says_each_change_once_per_cause_in_the_regression_checks_words(tmp_path):
    from normconf.adapters.numpy_adapter import NumpyAdapter
    from normconf.judge.mutants import MUTANTS_BY_NAME
    from tests.self.test_compare import cells_of, run_of
    cases = ["bn1d_nc", "bn2d_nchw", "ln_last1"]
    correct = cells_of(NumpyAdapter(), cases)
    biased = cells_of(MUTANTS_BY_NAME["running_var_biased"].make(), cases)
    runs = [{**run_of(cells), "sweep": {"version": v}} for v, cells in (("1.0", correct), ("1.1", correct),
                                                                         ("2.0", biased))]
    runs[2]["versions"]["numpy"] = {**runs[2]["versions"]["numpy"], "numpy": "2.5.0"}
    tl = history.timeline(runs)
    assert tl["versions"] == ["1.0", "1.1", "2.0"]
    first, second = tl["steps"]
    assert first["rows"] == first["entries"] == [] and first["packages"] == []
    assert [(e["label"], e["what"], [c["case"] for c in e["cells"]]) for e in second["entries"]] == [
        ("regressed", "running_variance unbiased -> biased", ["bn1d_nc", "bn2d_nchw"])]
    assert {"row": "running_variance", "adapter": "numpy", "before": "unbiased", "after": "biased"} in second["rows"]
    lines = history.render(tl)
    assert lines[:3] == ["versions: 1.0 -> 1.1 -> 2.0", "1.0 -> 1.1 (same packages):",
                         "  nothing normconf observes changed"]
    assert "1.1 -> 2.0 (numpy 2.4.6 -> 2.5.0):" in lines
    assert any(line.startswith("  REGRESSED numpy: running_variance unbiased -> biased (2 cases") for line in lines)
    for run in runs:  # the report's section reads the same folder
        results.write(run, tmp_path / "fw" / f"{run['sweep']['version']}.json")
    page = history.history_html(tmp_path)
    assert "fw: 1.0 → 1.1 → 2.0" in page and "running_variance unbiased -&gt; biased" in page


def test_the_cached_timeline_is_the_timeline_and_follows_the_files(tmp_path, monkeypatch):
    from normconf.adapters.numpy_adapter import NumpyAdapter
    from normconf.judge.mutants import MUTANTS_BY_NAME
    from tests.self.test_compare import cells_of, run_of
    monkeypatch.setenv("NORMCONF_CACHE_DIR", str(tmp_path / "cache"))
    correct, biased = (cells_of(a, ["bn1d_nc"]) for a in (NumpyAdapter(), MUTANTS_BY_NAME["running_var_biased"].make()))
    folder = tmp_path / "history" / "fw"
    for version, cells in (("1.0", correct), ("2.0", biased)):
        results.write({**run_of(cells), "sweep": {"version": version}}, folder / f"{version}.json")
    computed = history.timeline(history.load(folder))
    assert computed["steps"][0]["entries"]
    assert history.cached_timeline(folder) == computed == history.cached_timeline(folder)  # computed, then read
    assert len(list((tmp_path / "cache" / "history").glob("fw-*.json"))) == 1
    # the history changes: the cache must not answer for the old files
    results.write({**run_of(correct), "sweep": {"version": "2.0"}}, folder / "2.0.json")
    assert history.cached_timeline(folder)["steps"][0]["entries"] == []


def test_below_a_floor_an_adapter_says_what_it_needs(monkeypatch):
    versions = {"flax": "0.8.0", "jax": "0.4.30", "torch": "2.1.0", "numpy": "2.4.6"}
    assert compat.unmet("flax_nnx", versions.get) == (
        "flax_nnx needs flax >= 0.8.4, found 0.8.0 (flax.nnx exists from 0.8.4 on)")
    assert compat.unmet("flax_linen", versions.get) is None
    assert "torch 2.1.0 needs numpy < 2" in compat.unmet("torch", versions.get)
    assert compat.unmet("torch", {**versions, "numpy": "1.26.4"}.get) is None
    assert compat.unmet("numpy", versions.get) is None
    monkeypatch.setenv("NORMCONF_IGNORE_FLOORS", "1")
    assert compat.unmet("flax_nnx", versions.get) is None
    assert compat.version_tuple("2.13.0+cpu") == (2, 13, 0) and compat.version_tuple("0.4.26") > (0, 4, 3)


def _two_package_step():
    """1.0 -> 2.0 where the framework and a companion both moved, and running_variance changed."""
    from normconf.adapters.numpy_adapter import NumpyAdapter
    from normconf.judge.mutants import MUTANTS_BY_NAME
    from tests.self.test_compare import cells_of, run_of
    cases = ["bn1d_nc", "bn2d_nchw"]
    correct, biased = (cells_of(a, cases) for a in (NumpyAdapter(), MUTANTS_BY_NAME["running_var_biased"].make()))

    def run(version, cells, fw, companion):
        data = {**run_of(cells), "sweep": {"version": version}}
        data["versions"]["numpy"] = {**data["versions"]["numpy"], "fw": fw, "jax": companion}
        return data
    before, after = run("1.0", correct, "1.0", "0.4"), run("2.0", biased, "2.0", "0.6")
    only_jax, only_fw = run("1.0+jax", biased, "1.0", "0.6"), run("2.0-jax", correct, "2.0", "0.4")
    return before, after, only_jax, only_fw


def test_a_step_where_several_packages_moved_names_them_all():
    before, after, _, _ = _two_package_step()
    entry = history.timeline([before, after])["steps"][0]["entries"][0]
    assert entry["moved"] == ["fw 1.0 -> 2.0", "jax 0.4 -> 0.6"] and "blame" not in entry
    lines = history.render(history.timeline([before, after]))
    assert "      moved together, not bisected: fw 1.0 -> 2.0, jax 0.4 -> 0.6" in lines


def test_a_bisected_step_blames_the_package_whose_move_alone_shows_the_change(tmp_path):
    before, after, only_jax, only_fw = _two_package_step()
    tl = history.timeline([before, after], {"2.0": {"jax": only_jax, "fw": only_fw}})
    assert tl["steps"][0]["bisected"] == ["fw", "jax"]
    assert tl["steps"][0]["entries"][0]["blame"] == ["jax"]
    assert "      bisected: jax 0.4 -> 0.6 (with fw held)" in history.render(tl)
    for run in (before, after):
        results.write(run, tmp_path / "fw" / f"{run['sweep']['version']}.json")
    results.write(only_jax, tmp_path / "fw" / "bisect" / "2.0" / "jax.json")
    results.write(only_fw, tmp_path / "fw" / "bisect" / "2.0" / "fw.json")
    assert "bisected: jax 0.4 -&gt; 0.6 (with fw held)" in history.history_html(tmp_path)


def _kept(version, installed):
    return {"sweep": {"version": version, "installed": installed}}


def test_bisection_moves_one_package_and_holds_the_others_at_the_steps_start():
    before = _kept("0.10.0", {"flax": "0.10.0", "jax": "0.4.27", "jaxlib": "0.4.27", "numpy": "2.4.6"})
    after = _kept("0.10.7", {"flax": "0.10.7", "jax": "0.6.0", "jaxlib": "0.6.0", "numpy": "2.4.6"})
    assert bisect.bisection_plan("flax", before, after) == [
        ("flax", "0.10.7", ["jax[cpu]==0.4.27"]), ("jax", "0.10.0", ["jax[cpu]==0.6.0"])]
    keras_before = _kept("3.3.3", {"keras": "3.3.3", "tensorflow-cpu": "2.17.1", "jax": "0.5.3", "torch": "2.13.0"})
    keras_after = _kept("3.8.0", {"keras": "3.8.0", "tensorflow-cpu": "2.17.1", "jax": "0.10.2", "torch": "2.13.0"})
    assert bisect.bisection_plan("keras", keras_before, keras_after) == [
        ("keras", "3.8.0", ["jax[cpu]==0.5.3", "tensorflow-cpu==2.17.1", "torch==2.13.0"]),
        ("jax", "3.3.3", ["jax[cpu]==0.10.2", "tensorflow-cpu==2.17.1", "torch==2.13.0"])]


def test_bisect_runs_each_moved_package_alone_and_the_timeline_blames_it(tmp_path, monkeypatch, capsys):
    before, after, only_jax, only_fw = _two_package_step()
    for run, installed in ((before, {"numpy": "1.0", "jax": "0.4"}), (after, {"numpy": "2.0", "jax": "0.6"})):
        run["sweep"]["installed"] = installed
        results.write(run, tmp_path / "numpy" / f"{run['sweep']['version']}.json")
    monkeypatch.setitem(sweep.FAMILIES, "numpy", sweep.Family("numpy", ("jax[cpu]",)))
    asked = []

    def fake_run(family, version, pins, **kw):  # the environments: jax's move alone shows the change
        asked.append((version, pins))
        data = json.loads(json.dumps(only_jax if pins == ["jax[cpu]==0.6"] else only_fw))
        data["sweep"] = {"version": version, "with": pins}
        return data
    monkeypatch.setattr(sweep, "run_version", fake_run)
    assert bisect.bisect("numpy", "2.0", out=tmp_path) == 0
    assert asked == [("2.0", ["jax[cpu]==0.4"]), ("1.0", ["jax[cpu]==0.6"])]
    kept = json.loads((tmp_path / "numpy" / "bisect" / "2.0" / "jax.json").read_text())
    assert kept["sweep"]["bisect"] == {"from": "1.0", "to": "2.0", "moved": "jax"}
    assert "      bisected: jax 0.4 -> 0.6 (with fw held)" in capsys.readouterr().out
    assert bisect.bisect("numpy", "1.0", out=tmp_path) == 2  # the first version has no step to bisect


def test_the_environment_label_says_built_or_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMCONF_ENV_CACHE", str(tmp_path))
    python = str(tmp_path / "env" / "bin" / "python")
    monkeypatch.setattr(sweep, "resolve", lambda *a, **k: python)
    monkeypatch.setattr(sweep, "run_suite", lambda *a, **k: {"summary": {}})
    monkeypatch.setattr(sweep, "installed", lambda p: {})
    monkeypatch.setattr(sweep, "imported_version", lambda p, m: "1.0")
    assert sweep.run_version("numpy", "1.0", [], offline=True, workers=0)["sweep"]["environment"] == (
        "environment built for this run")
    marker = tmp_path / sweep.env_key("numpy", "1.0", []) / sweep.MARKER
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    assert sweep.run_version("numpy", "1.0", [], offline=True, workers=0)["sweep"]["environment"] == (
        "cached environment (reused)")


@pytest.mark.parametrize("extra, said", [
    ({}, "moved together, not bisected: flax 0.10.0 -> 0.10.7, jax 0.4.27 -> 0.6.0, jaxlib 0.4.27 -> 0.6.0"),
    ({"blame": ["jax"], "bisected": ["flax", "jax"]},
     "bisected: jax 0.4.27 -> 0.6.0, jaxlib 0.4.27 -> 0.6.0 (with flax held)"),
    ({"blame": [], "bisected": ["jax"]}, "bisected: not jax's move alone; flax's alone could not be run"),
    ({"blame": [], "bisected": ["flax", "jax"]}, "bisected: no single package's move shows it alone"),
])
def test_attribution_moves_jaxlib_with_jax_and_says_what_was_not_run(extra, said):
    moved = ["flax 0.10.0 -> 0.10.7", "jax 0.4.27 -> 0.6.0", "jaxlib 0.4.27 -> 0.6.0"]
    assert history.attribution({"moved": moved, **extra}).startswith(said)
    assert history.attribution({"moved": moved[1:], **extra}) is None  # jax and jaxlib: one unit, nothing to split


class _Adapter:
    """A stand-in adapter: available or not, and what its layers do when called."""

    def __init__(self, name, raises=None, unavailable=None):
        self.name, self.raises, self.unavailable, self.momentum_form = name, raises, unavailable, "weight_on_new"

    def availability(self):
        return self.unavailable

    def versions(self):
        return {"python": "3.11", "numpy": "2", "flax": "0.10.4", "jax": "0.4.27"}

    def _call(self, *a):
        if self.raises:
            raise self.raises
        return {}
    layer_norm = batch_norm_steps = _call


def test_an_adapter_missing_an_api_is_not_installable_with_its_packages():
    adapters = {"flax_linen": _Adapter("flax_linen"),
                "flax_nnx": _Adapter("flax_nnx", ImportError("cannot import name 'AbstractMesh' from 'jax.sharding'")),
                "flax_other": _Adapter("flax_other", ValueError("a framework's own error")),  # the suite judges it
                "flax_gone": _Adapter("flax_gone", ImportError("x"), unavailable="flax not importable"),
                "torch": _Adapter("torch", ImportError("not this family"))}
    assert sweep.adapter_problems("flax", adapters) == {
        "flax_nnx": "not installable with flax 0.10.4, jax 0.4.27: ImportError: cannot import name 'AbstractMesh' "
                    "from 'jax.sharding'"}
    assert sweep.adapter_problems("numpy") == {}  # the real numpy adapter makes its layers


def test_the_suite_records_a_not_installable_adapter_instead_of_judging_it(tmp_path):
    from tests.self.suite_runner import run_suite
    why = "not installable with numpy 0: ImportError: made up"
    code, data, _ = run_suite(tmp_path, "--frameworks=numpy", "-n", "0", "-p", "no:randomly", "-k", "ln_last1",
                              env={sweep.NOT_INSTALLABLE: json.dumps({"numpy": why})})
    # nothing could run: exit 2 (issue 18), with the reason in every cell of the results the sweep keeps
    assert code == 2 and data["cells"] and all(
        c["outcome"] == "not_installed" and c["message"] == why for c in data["cells"])
    code, _, output = run_suite(tmp_path / "bad", "--frameworks=numpy", "-n", "0", "-k", "ln_last1",
                                env={sweep.NOT_INSTALLABLE: "[1"})
    assert code != 0 and "NORMCONF_NOT_INSTALLABLE: expected a JSON object adapter -> reason" in output
    assert "Traceback" not in output


def test_whether_normconf_is_installed_and_the_adapters_are_checked_where_pytest_runs(tmp_path, monkeypatch, capsys):
    # from a checkout, `python -c` in its folder sees normconf.egg-info's entry point, which pytest in the
    # run's folder does not: the plugin was then left out and the suite stopped at "unrecognized arguments"
    asked = []

    def fake(cmd, **kw):
        asked.append((cmd, kw))
        return subprocess.CompletedProcess(cmd, 1, "{}", "")
    monkeypatch.setattr(sweep, "_run", fake)
    sweep.run_suite(sys.executable, "numpy", tmp_path, 0)
    check = next(kw for cmd, kw in asked if "pytest11" in cmd[-1])
    smoke = next(kw for cmd, kw in asked if cmd[2:3] == [sweep.SMOKE])
    suite = next((cmd, kw) for cmd, kw in asked if "pytest" in cmd[2:3])
    assert check["cwd"] == smoke["cwd"] == suite[1]["cwd"] == tmp_path
    assert check["env"]["PYTHONPATH"] == smoke["env"]["PYTHONPATH"] == suite[1]["env"]["PYTHONPATH"]
    assert ["-p", "normconf.plugin"] == suite[0][5:7]
    assert "WARNING: the adapters could not be checked before the suite (exit 1)" in capsys.readouterr().out


class FakeJaxEnvironment(FakeInstaller):
    """FakeInstaller whose environment has one jax at a time: the newest that installs first (0.10.2),
    then whatever an install names."""

    def __init__(self):
        super().__init__()
        self.jax = "0.10.2"

    def __call__(self, cmd, **kw):
        cmd = [str(c) for c in cmd]
        pinned = [c.split("==")[1] for c in cmd if c.startswith("jax[cpu]==")]
        if "install" in cmd and pinned:
            self.jax = pinned[0]
        if "m.distributions" in cmd[-1]:  # this interpreter has another flax: the sweep must build
            self.commands.append(cmd)
            have = {"jax": "0.10.2", "flax": "0.12.8"} if cmd[0] == sys.executable else {"jax": self.jax, "flax": "0.10.4"}
            return subprocess.CompletedProcess(cmd, 0, json.dumps(have), "")
        return super().__call__(cmd, **kw)


NNX_AT_0427 = "not installable with flax 0.10.4, jax 0.4.27: ImportError: cannot import name 'AbstractMesh' from 'jax.sharding'"


@pytest.mark.parametrize("newest_works", [True, False])
def test_a_declared_minimum_companion_that_breaks_an_adapter_is_replaced_and_said(tmp_path, monkeypatch, capsys,
                                                                                 newest_works):
    monkeypatch.setenv("NORMCONF_ENV_CACHE", str(tmp_path))
    fake = FakeJaxEnvironment()
    monkeypatch.setattr(sweep, "_run", fake)
    monkeypatch.setattr(sweep.shutil, "which", lambda name: None)
    checked = []

    def smoke(python, family, env, cwd):  # flax.nnx cannot import at jax 0.4.27 (issue 20), or at any jax
        checked.append(fake.jax)
        return {"flax_nnx": NNX_AT_0427} if fake.jax == "0.4.27" or not newest_works else {}
    monkeypatch.setattr(sweep, "smoke_check", smoke)
    python = sweep.resolve("flax", "0.10.4", [], offline=False)
    out = capsys.readouterr().out
    jax_installs = [c[-1] for c in fake.commands if "install" in c and c[-1].startswith("jax[cpu]==")]
    meta = json.loads((sweep.Path(python).parent.parent / sweep.MARKER).read_text())
    if newest_works:
        assert checked == ["0.4.27", "0.10.2"] and jax_installs == ["jax[cpu]==0.4.27", "jax[cpu]==0.10.2"]
        assert meta["companion"] == {"package": "jax", "version": "0.10.2", "minimum": "0.4.27", "why": (
            f"jax 0.10.2, the newest that installs beside flax: at jax 0.4.27, flax's declared minimum, "
            f"flax_nnx: {NNX_AT_0427}")}
        assert "flax 0.10.4: with jax 0.10.2, the newest that installs beside flax: at jax 0.4.27" in out
    else:  # no better elsewhere: the declared minimum stays, and the suite records the adapter as not installable
        assert jax_installs == ["jax[cpu]==0.4.27", "jax[cpu]==0.10.2", "jax[cpu]==0.4.27"] and fake.jax == "0.4.27"
        assert meta["companion"]["version"] == "0.4.27" and "works no better" in meta["companion"]["why"]
    # the kept run carries the choice
    monkeypatch.setattr(sweep, "resolve", lambda *a, **k: python)
    monkeypatch.setattr(sweep, "run_suite", lambda *a, **k: {"summary": {}})
    monkeypatch.setattr(sweep, "imported_version", lambda p, m: "0.10.4")
    assert sweep.run_version("flax", "0.10.4", [], offline=True, workers=0)["sweep"]["companion"] == meta["companion"]


def test_a_working_declared_minimum_or_a_pinned_companion_is_kept(tmp_path, monkeypatch):
    fake = FakeJaxEnvironment()
    monkeypatch.setattr(sweep, "_run", fake)
    monkeypatch.setattr(sweep.shutil, "which", lambda name: None)
    monkeypatch.setattr(sweep, "smoke_check", lambda *a: {})
    meta = sweep.build(tmp_path / "a", "flax", "0.10.4", [])
    assert meta["companion"] == {"package": "jax", "version": "0.4.27", "why": "jax 0.4.27, flax's declared minimum"}
    assert "companion" not in sweep.build(tmp_path / "b", "flax", "0.10.4", ["jax==0.5.0"])
