"""The `normconf` command: every subcommand answers --help, and a plug-in written against the folders'
old top-level names gets one line saying what to import instead (never a second copy of a module)."""
import subprocess
import sys

import pytest

from tests.self.suite_runner import REPO, run_suite, write_plugin

COMMANDS = ("run", "golden", "compare", "merge", "render", "table", "sweep", "timeline", "generated")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "normconf", command, "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0 and "usage: normconf" in proc.stdout, proc.stdout + proc.stderr


def test_no_command_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "normconf"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "usage: normconf" in proc.stderr


def test_a_plugin_on_the_old_import_path_gets_one_line(tmp_path):
    plugin = write_plugin(tmp_path, "from adapters.base import DEFAULT\nclass Mine:\n    name = 'mine'\n"
                                    "    def layer_norm(self, *a):\n        return {}\n")
    code, _, output = run_suite(tmp_path, f"--adapter={plugin}:Mine", "--frameworks=mine", "-n", "0")
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert code == 4 and len(errors) == 1, output[-2000:]
    assert "imported as normconf.adapters, not adapters" in errors[0] and "normconf.api" in errors[0]
