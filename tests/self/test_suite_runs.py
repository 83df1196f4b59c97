"""The suite as users run it: subprocess runs through the numpy adapter and plug-ins defined in files
outside the repository (fast: no framework needed)."""
import textwrap

import pytest

from tests.self.suite_runner import cells_without_timings, run_suite, write_plugin

NUMPY_ONLY = ("--frameworks=numpy", "-p", "no:randomly")


@pytest.fixture(scope="module")
def serial_and_parallel(tmp_path_factory):
    serial = run_suite(tmp_path_factory.mktemp("serial"), *NUMPY_ONLY, "-n", "0")
    parallel = run_suite(tmp_path_factory.mktemp("parallel"), *NUMPY_ONLY, "-n", "2")
    return serial, parallel


def test_numpy_adapter_passes_every_case(serial_and_parallel):
    (code, data, output), _ = serial_and_parallel
    assert code == 0, output[-3000:]
    outcomes = {c["outcome"] for c in data["cells"]}
    assert outcomes == {"pass"}, output[-3000:]
    from normconf.golden.cases import CASES
    from normconf.golden.generated import DEFAULT_EXAMPLES
    assert len(data["cells"]) == len(CASES) + DEFAULT_EXAMPLES  # the catalog, and the generated draw


def test_results_identical_serial_and_xdist(serial_and_parallel):
    (_, serial, _), (code, parallel, output) = serial_and_parallel
    assert code == 0, output[-3000:]
    assert cells_without_timings(serial) == cells_without_timings(parallel)
    assert parallel["timings"]["workers"] == 2


def test_random_order_gives_identical_results(serial_and_parallel, tmp_path):
    (_, serial, _), _ = serial_and_parallel
    code, shuffled, output = run_suite(tmp_path, "--frameworks=numpy", "-n", "0", "-vv", "-p", "randomly",
                                       "--randomly-seed=12345")
    assert code == 0, output[-3000:]
    ran = [line.split("[", 1)[1].split("]", 1)[0] for line in output.splitlines()
           if "test_golden[" in line or "test_generated[" in line]
    assert len(ran) == len(serial["cells"]) and ran != sorted(ran)  # really shuffled
    assert cells_without_timings(serial) == cells_without_timings(shuffled)


def test_plugin_from_outside_the_repo_is_its_own_column(tmp_path):
    plugin = write_plugin(tmp_path, textwrap.dedent('''
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Mine(NumpyAdapter):
            name = "my_kernel"
    '''))
    code, data, output = run_suite(tmp_path, "--frameworks=numpy", f"--adapter={plugin}:Mine", "-n", "2")
    assert "my_kernel" in data["adapters"], output[-2000:]
    # it documents nothing: what it does is identified and shown, nothing judged but accuracy, and said so
    mine = [c for c in data["cells"] if c["adapter"] == "my_kernel"]
    assert {c["outcome"] for c in mine} <= {"pass", "error"} and any(c["outcome"] == "pass" for c in mine)
    errors = [c["case"] for c in mine if c["outcome"] == "error"]  # catalog and generated alike
    assert {"stress_bn_one_value_per_channel", "stress_bn_one_value_per_channel_2d"} <= set(errors)
    # and, as torch.nn.GroupNorm, it raises when no number of groups is given (numpy.toml declares that, it does not)
    assert all("one_value_per_channel" in case or case.startswith("probe_default_groups") for case in errors), errors
    rows = {r["row"]: r["cells"]["my_kernel"] for r in data["matrix"]["rows"]}
    assert (rows["running_variance"]["observed"], rows["running_variance"]["status"]) == ("unbiased", "no-doc")
    assert any("plug-in my_kernel documents nothing" in w for w in data["warnings"])
    assert "plug-in my_kernel documents nothing" in output
    assert code == 1  # its undeclared raise on one value per channel is an error


def test_killed_worker_and_hang_are_recorded_not_lost(tmp_path):
    plugin = write_plugin(tmp_path, textwrap.dedent('''
        import os, time
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Fragile(NumpyAdapter):
            name = "fragile"
            documented = {"norm_variance": "biased", "eps_placement": "inside_sqrt", "default_eps": "1e-05",
                          "running_variance": "unbiased"}
            def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
                if x.shape == (6, 12) and eps == 1e-3:
                    os._exit(3)              # ln_eps_1e-3: the worker dies
                if x.shape == (6, 12) and eps == 1e-6:
                    time.sleep(30)           # ln_eps_1e-6: hangs past the timeout
                if x.shape == (6, 12) and eps == 0.5:
                    return {"y": x[:1]}      # ln_eps_0.5: wrong shape
                if x.shape == (6, 12) and gamma is None:
                    return {"y": (x * float("nan"))}  # ln_no_affine: NaN
                return super().layer_norm(x, axes, gamma, beta, eps, affine_axes)
    '''))
    code, data, output = run_suite(tmp_path, "--frameworks=numpy", f"--adapter={plugin}:Fragile", "-n", "2",
                                   "-p", "no:randomly", env={"NORMCONF_CALL_TIMEOUT": "3"})
    cells = {c["case"]: c for c in data["cells"] if c["adapter"] == "fragile"}
    assert cells["ln_eps_1e-3"]["outcome"] == "crashed", output[-3000:]
    assert cells["ln_eps_1e-6"]["outcome"] == "timeout"
    assert cells["ln_eps_0.5"]["outcome"] == "bad_output" and "shape" in cells["ln_eps_0.5"]["message"]
    assert cells["ln_no_affine"]["outcome"] == "fail"
    assert cells["ln_last1"]["outcome"] == "pass"
    assert len(cells) == len({c["case"] for c in data["cells"] if c["adapter"] == "numpy"})  # nothing missing
    assert code == 1


def test_entry_point_plugin_is_discovered(tmp_path):
    site = tmp_path / "site"
    dist = site / "kernelpack-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: kernelpack\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[normconf.adapters]\nkernel = kernelpack_adapter:Kernel\n")
    (site / "kernelpack_adapter.py").write_text(textwrap.dedent('''
        from normconf.adapters.numpy_adapter import NumpyAdapter
        class Kernel(NumpyAdapter):
            name = "kernelpack"
    '''))
    code, data, output = run_suite(tmp_path, "--frameworks=numpy,kernelpack", "-n", "0", "-p", "no:randomly",
                                   env={"PYTHONPATH": str(site)})
    assert "kernelpack" in data["adapters"], output[-2000:]
    assert any(c["adapter"] == "kernelpack" for c in data["cells"])


def test_adapter_not_installed_is_never_a_pass(tmp_path):
    plugin = write_plugin(tmp_path, textwrap.dedent('''
        from normconf.adapters.base import ImportingAdapter
        class Missing(ImportingAdapter):
            name = "missing_framework"
            requires = ("no_such_framework_normconf",)
            def layer_norm(self, *a):
                raise AssertionError("never called")
    '''))
    code, data, output = run_suite(tmp_path, "--frameworks=numpy", f"--adapter={plugin}:Missing", "-n", "0",
                                   "-p", "no:randomly")
    cells = [c for c in data["cells"] if c["adapter"] == "missing_framework"]
    assert cells and {c["outcome"] for c in cells} == {"not_installed"}
    assert "No module named 'no_such_framework_normconf'" in cells[0]["message"]
    assert code == 0  # skipped with the import error as the reason, not failed and not passed
