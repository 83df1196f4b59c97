"""The checkout's pytest set-up.  normconf itself is a pytest plugin, loaded by its entry point
(`pytest11` in pyproject.toml) and made active here by `normconf = true` in pyproject.toml's
[tool.pytest.ini_options]; this file only adds pytest's own `pytester`, which the self-tests of the
plugin's hooks use (tests/self/test_plugin_hooks.py).  Not `pytest_plugins = [...]`: pytest refuses that
in a conftest above a run's rootdir, which this one is when an editable install's checks run elsewhere."""


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
