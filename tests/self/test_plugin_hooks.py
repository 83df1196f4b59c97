"""The pytest plugin's hooks, in-process (pytester): inert in another project's runs, active when asked."""
import pytest

THEIRS = "def test_their_own():\n    assert True\n"


def test_installed_normconf_leaves_other_projects_alone(pytester):
    pytester.makepyfile(test_theirs=THEIRS)
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "normconf: platform" not in result.stdout.str() and "matrix" not in result.stdout.str()  # no header, no matrix
    assert not (pytester.path / "normconf-out").exists()


def test_normconf_options_without_normconf_are_one_usage_error(pytester):
    pytester.makepyfile(test_theirs=THEIRS)
    result = pytester.runpytest_inprocess("--frameworks=numpy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--frameworks given, but this is not a normconf run: add --normconf" in result.stderr.str()


def test_asked_for_it_runs_the_installed_checks(pytester):
    result = pytester.runpytest_inprocess("--normconf", "--frameworks=numpy", "-k", "ln_last1", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "normconf: platform" in result.stdout.str()  # the report header
    assert (pytester.path / "normconf-out" / "results.json").is_file()  # the documented default folder


def test_an_ini_file_makes_the_project_a_normconf_run(pytester):
    pytester.makeini("[pytest]\nnormconf = true\nnormconf_report_dir = elsewhere\n")
    pytester.makepyfile(test_theirs=THEIRS)
    result = pytester.runpytest_inprocess("--frameworks=numpy", "-p", "no:randomly")
    result.assert_outcomes(passed=1)  # its own tests, with normconf's options accepted
    assert "normconf: platform" in result.stdout.str()


def test_an_empty_frameworks_list_is_a_usage_error(pytester):
    result = pytester.runpytest_inprocess("--normconf", "--frameworks=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--frameworks is empty" in result.stderr.str()
