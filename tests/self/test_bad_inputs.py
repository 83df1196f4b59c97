"""Faults in what the suite reads: each gives one clear error naming the file, the rest of the run
completes, and the report shows the affected cells as errors."""
import importlib.util
import json
import pathlib
import re
import shutil
import subprocess
import textwrap
import zipfile

import numpy as np
import pytest

from normconf.golden import fixtures, npzio
from tests.self.suite_runner import run_suite, write_plugin

NUMPY = ("--frameworks=numpy", "-n", "2", "-p", "no:randomly")
REPO = pathlib.Path(__file__).resolve().parents[2]


def _fixture_copy(tmp_path) -> pathlib.Path:
    target = tmp_path / "golden"
    shutil.copytree(fixtures.golden_dir(), target)
    return target


def _cells(data):
    return {c["case"]: c for c in data["cells"] if c["adapter"] == "numpy"}


def test_bad_fixtures_cost_their_own_cells_only(tmp_path):
    gold = _fixture_copy(tmp_path)
    (gold / "bn1d_nc.npz").write_bytes((gold / "bn1d_nc.npz").read_bytes()[:300])          # truncated
    data = bytearray((gold / "ln_last1.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (gold / "ln_last1.npz").write_bytes(bytes(data))                                        # corrupted
    arrays = npzio.loads((gold / "ln_last2.npz").read_bytes())
    arrays["x"] = arrays["x"] * 2                                                           # tampered, valid NPZ
    (gold / "ln_last2.npz").write_bytes(npzio.dumps(arrays))
    with zipfile.ZipFile(gold / "ln_last3.npz", "w") as zf:                                 # pickled objects
        with zf.open("x.npy", "w") as f:
            np.lib.format.write_array(f, np.array([object()], dtype=object), allow_pickle=True)
    arrays = npzio.loads((gold / "bn2d_nchw.npz").read_bytes())
    meta = npzio.from_json_array(arrays["meta"])
    arrays["meta"] = npzio.json_array({**meta, "schema_version": fixtures.SCHEMA_VERSION + 1})  # newer schema
    (gold / "bn2d_nchw.npz").write_bytes(npzio.dumps(arrays))
    manifest = json.loads((gold / "manifest.json").read_text())
    manifest["files"]["bn2d_nchw.npz"] = fixtures.sha256((gold / "bn2d_nchw.npz").read_bytes())
    manifest["sizes"]["bn2d_nchw.npz"] = (gold / "bn2d_nchw.npz").stat().st_size
    (gold / "manifest.json").write_text(json.dumps(manifest))

    code, data, output = run_suite(tmp_path, *NUMPY, env={"NORMCONF_GOLDEN_DIR": str(gold)})
    cells = _cells(data)
    expect = {"bn1d_nc": "bn1d_nc.npz: SHA-256 differs", "ln_last1": "ln_last1.npz: SHA-256 differs",
              "ln_last2": "ln_last2.npz: SHA-256 differs", "ln_last3": "ln_last3.npz: SHA-256 differs",
              "bn2d_nchw": f"bn2d_nchw.npz: schema version {fixtures.SCHEMA_VERSION + 1}, this normconf reads "
                           f"{fixtures.SCHEMA_VERSION}"}
    for case, text in expect.items():
        assert cells[case]["outcome"] == "error" and text in cells[case]["message"], (case, cells[case]["message"])
    assert {c["outcome"] for n, c in cells.items() if n not in expect} == {"pass"}
    assert code == 1 and (tmp_path / "out" / "report.html").exists()


def test_bad_fixture_without_manifest_hash_names_the_format_problem(tmp_path):
    gold = _fixture_copy(tmp_path)
    (gold / "bn1d_nc.npz").write_bytes((gold / "bn1d_nc.npz").read_bytes()[:300])
    with pytest.raises(fixtures.FixtureError, match="bn1d_nc.npz: truncated or corrupted NPZ"):
        fixtures.load(gold / "bn1d_nc.npz")  # what a file that passes the hash but is broken reports


def test_missing_manifest_is_an_error_in_every_cell_and_the_run_completes(tmp_path):
    gold = _fixture_copy(tmp_path)
    (gold / "manifest.json").unlink()
    code, data, _ = run_suite(tmp_path, *NUMPY, env={"NORMCONF_GOLDEN_DIR": str(gold)})
    cells = {case: c for case, c in _cells(data).items() if not case.startswith("gen_")}  # generated: no file
    assert cells and all(c["outcome"] == "error" and "manifest missing" in c["message"] for c in cells.values())
    assert code == 1


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace("running_variance =", "wobble ="), "unknown convention 'wobble'"),
    (lambda t: t.replace('{ variant = "unbiased"', '{ variant = "sideways"', 1), "unknown variant 'sideways'"),
])
def test_bad_expectations_file_is_named_in_its_adapters_cells(tmp_path, edit, problem):
    exp = tmp_path / "expectations"
    shutil.copytree(REPO / "adapters" / "expectations", exp)
    (exp / "numpy.toml").write_text(edit((exp / "numpy.toml").read_text()))
    code, data, output = run_suite(tmp_path, *NUMPY, env={"NORMCONF_EXPECTATIONS_DIR": str(exp)})
    cells = _cells(data)
    assert all(c["outcome"] == "error" and "numpy.toml" in c["message"] and problem in c["message"]
               for c in cells.values()), output[-2000:]
    assert any(problem in e for e in data["expectation_errors"])
    assert code == 1


def test_unreadable_baseline_is_exit_2_before_the_run(tmp_path):
    junk = tmp_path / "baseline.json"
    junk.write_text("{ not json")
    code, data, output = run_suite(tmp_path, *NUMPY, f"--baseline={junk}")
    assert code == 2 and "baseline.json: not JSON" in output and data == {}
    assert " passed" not in output  # validated when the run starts, not after it


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_a_cell_that_leaks_framework_state_is_an_error(tmp_path):
    plugin = write_plugin(tmp_path, textwrap.dedent('''
        import torch
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Leaky(NumpyAdapter):
            name = "leaky"
            documented = {"norm_variance": "biased", "eps_placement": "inside_sqrt", "default_eps": "1e-05"}
            def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
                if x.shape == (6, 12) and gamma is None:
                    torch.set_default_dtype(torch.float64)   # ln_no_affine leaks
                return super().layer_norm(x, axes, gamma, beta, eps, affine_axes)
    '''))
    code, data, output = run_suite(tmp_path, "--frameworks=torch", f"--adapter={plugin}:Leaky", "-n", "0",
                                   "-p", "no:randomly")
    cell = next(c for c in data["cells"] if c["adapter"] == "leaky" and c["case"] == "ln_no_affine")
    assert cell["outcome"] == "error" and "leaked global state" in cell["message"], output[-2000:]


def test_nothing_unpickles_or_evaluates_data():
    # fixtures, expectations, baselines and wire frames are data: numpy without pickle, JSON, TOML
    sources = [p for p in REPO.glob("[a-z]*/**/*.py") if ".venv" not in p.parts and "tests" not in p.relative_to(REPO).parts]
    pattern = re.compile(r"allow_pickle\s*=\s*True|pickle\.loads?\(|(?<![\w.])(eval|exec)\(")
    for path in sources:
        match = pattern.search(path.read_text())
        assert match is None, f"{path} uses {match.group(0)}"


def test_fixture_larger_than_its_manifest_entry_is_refused_unread(tmp_path, monkeypatch):
    gold = _fixture_copy(tmp_path)
    size = fixtures.read_sizes(gold)["ln_last1.npz"]
    with open(gold / "ln_last1.npz", "ab") as f:
        f.write(b"\0" * 10_000_000)  # ten megabytes nobody should read or hash

    def refuse(path):
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse)
    with pytest.raises(fixtures.FixtureError, match=rf"ln_last1.npz: 10{size:06d} bytes, the manifest lists {size}: "
                                                    r"refused unread"):
        fixtures.load_case("ln_last1", gold)
    assert size == (fixtures.golden_dir() / "ln_last1.npz").stat().st_size  # the manifest records sizes


ONE_CELL = ("--frameworks=numpy", "-n", "0", "-p", "no:randomly", "-k", "ln_last1")


def _one_error_line(code, output) -> str:
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert code == 4 and len(errors) == 1, output[-3000:]  # pytest's usage error, before any cell
    assert "Traceback" not in output and "INTERNALERROR" not in output and " passed" not in output
    return errors[0]


def test_plugin_file_with_a_syntax_error_is_one_line(tmp_path):
    plugin = write_plugin(tmp_path, "from normconf.adapters.numpy_adapter import NumpyAdapter\nclass Mine(NumpyAdapter:\n")
    code, _, output = run_suite(tmp_path, *ONE_CELL, f"--adapter={plugin}:Mine")
    line = _one_error_line(code, output)
    assert f"--adapter '{plugin}:Mine': SyntaxError: " in line and "line 2" in line


def test_plugin_with_an_unknown_momentum_form_is_a_usage_error_naming_it(tmp_path):
    plugin = write_plugin(tmp_path, textwrap.dedent('''
        class Mine:
            name = "mine"
            momentum_form = "sideways"
            def batch_norm_steps(self, *args):
                return {}
    '''))
    code, _, output = run_suite(tmp_path, *ONE_CELL, f"--adapter={plugin}:Mine")
    line = _one_error_line(code, output)
    assert f"plug-in 'mine' ({plugin}:Mine): momentum_form 'sideways' is not one of weight_on_new, weight_on_old" in line


@pytest.mark.parametrize("variable", ["NORMCONF_GOLDEN_DIR", "NORMCONF_EXPECTATIONS_DIR"])
def test_a_directory_variable_pointing_nowhere_is_a_usage_error_naming_it(tmp_path, variable):
    code, data, output = run_suite(tmp_path, *ONE_CELL, env={variable: str(tmp_path / "nowhere")})
    line = _one_error_line(code, output)
    assert line.startswith(f"ERROR: {variable}={tmp_path / 'nowhere'}: not a directory") and data == {}


def test_expectations_file_with_a_toml_syntax_error_is_named_in_its_cells(tmp_path):
    exp = tmp_path / "expectations"
    shutil.copytree(REPO / "adapters" / "expectations", exp)
    (exp / "numpy.toml").write_text((exp / "numpy.toml").read_text() + "\n[[[ not toml\n")
    code, data, output = run_suite(tmp_path, *ONE_CELL, env={"NORMCONF_EXPECTATIONS_DIR": str(exp)})
    (cell,) = _cells(data).values()
    assert cell["outcome"] == "error" and cell["message"].startswith("expectations unusable: "), output[-2000:]
    assert "numpy.toml" in cell["message"] and "no expectations file names" not in cell["message"]


@pytest.mark.parametrize("returned, kind", [("x", "ndarray"), ("[x]", "list")])
def test_a_plugin_returning_no_dict_names_what_it_returned(tmp_path, returned, kind):
    plugin = write_plugin(tmp_path, textwrap.dedent(f'''
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Mine(NumpyAdapter):
            name = "mine"
            def layer_norm(self, x, *args):
                return {returned}
    '''))
    code, data, output = run_suite(tmp_path, *ONE_CELL, f"--adapter={plugin}:Mine")
    (cell,) = [c for c in data["cells"] if c["adapter"] == "mine"]
    assert cell["outcome"] == "bad_output", output[-2000:]
    assert cell["message"] == f"mine.layer_norm returned {kind}, not a dict of named outputs (see normconf.api)"


def test_suite_script_takes_a_baseline_outside_the_checkout_from_anywhere(tmp_path):
    code, _, output = run_suite(tmp_path, *ONE_CELL)
    assert code == 0, output[-2000:]
    baseline = tmp_path / "elsewhere" / "baseline.json"
    baseline.parent.mkdir()
    shutil.copy(tmp_path / "out" / "results.json", baseline)
    # `--option VALUE` (not --option=VALUE) with VALUE outside the checkout, run from outside it
    proc = subprocess.run(["bash", str(REPO / "ci" / "suite.sh"), *ONE_CELL, "--baseline", str(baseline),
                           "--report-dir", str(tmp_path / "second")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 0 and lines[-1].startswith(f"0 regressions against {baseline}"), lines[-5:]
