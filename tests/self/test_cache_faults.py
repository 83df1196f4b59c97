"""The cache is an optimisation (adapters/cache.py): a cache directory that cannot be created, is
read-only or sits on a full filesystem is one warning line naming it; the run's verdicts, matrix and
exit code are the cells', and no temporary file stays behind."""
import errno
import os
import subprocess

import pytest

from normconf.scheduling import write_durations
from tests.self.suite_runner import run_suite

ONE_CELL = ("--frameworks=numpy", "-p", "no:randomly", "-k", "ln_last1")


@pytest.fixture
def full_dir(tmp_path):
    """A directory on a 64 kB tmpfs filled to the last byte (mounting needs root, as in CI's container)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-filesystem case is not exercised")
    try:
        with open(mount / "filler", "wb", buffering=0) as f:  # unbuffered: closing it writes nothing more
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _unusable(tmp_path, how, full_dir=None):
    if how == "under a file":
        (tmp_path / "file").write_text("a file where the cache directory would go")
        return tmp_path / "file" / "cache"
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only directory")
        (tmp_path / "ro").mkdir(mode=0o555)
        return tmp_path / "ro" / "cache"
    return full_dir / "cache"


@pytest.mark.parametrize("how", ["under a file", "read-only", "full filesystem"])
def test_unusable_cache_is_one_warning_and_the_run_passes(tmp_path, how, request):
    full = request.getfixturevalue("full_dir") if how == "full filesystem" else None
    cache = _unusable(tmp_path, how, full)
    code, data, output = run_suite(tmp_path, *ONE_CELL, "-n", "2", env={"NORMCONF_CACHE_DIR": str(cache)})
    assert code == 0, output[-3000:]
    assert "normconf conformance matrix" in output and "Traceback" not in output, output[-3000:]
    warnings = [line for line in output.splitlines() if "cache" in line and "WARNING" in line]
    assert len(warnings) == 1 and str(cache) in warnings[0], warnings
    assert [c["outcome"] for c in data["cells"]] == ["pass"]
    if full is not None:  # nothing but the filler: no probe or temporary file left on the full disk
        assert sorted(p.name for p in full.rglob("*") if p.is_file()) == ["filler"]


def test_a_cache_write_failing_mid_run_is_a_warning_and_leaves_no_temporary_file(full_dir, monkeypatch):
    (full_dir / "cache").mkdir()  # a directory entry still fits; the data does not
    monkeypatch.setenv("NORMCONF_CACHE_DIR", str(full_dir / "cache"))
    warning = write_durations({"normconf/checks/test_golden.py::test_golden[ln_last1@numpy]": 0.01})
    assert warning.startswith(f"cannot write the cache directory {full_dir / 'cache'} (No space left on device)")
    assert list((full_dir / "cache").iterdir()) == []


def test_a_cache_directory_that_cannot_be_created_is_a_warning_of_write_durations(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("NORMCONF_CACHE_DIR", str(tmp_path / "file" / "cache"))
    warning = write_durations({"normconf/checks/test_golden.py::test_golden[ln_last1@numpy]": 0.01})
    assert warning.startswith(f"cannot write the cache directory {tmp_path / 'file' / 'cache'} ")
