"""normconf's conformance checks, installed with the package: `normconf run` or `pytest --pyargs normconf.checks`."""
