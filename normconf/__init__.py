"""normconf: a conformance suite for normalization layers across deep-learning frameworks.

The layers import downwards only: normconf.golden -> normconf.adapters -> normconf.judge ->
normconf.reports, with the pytest plugin (normconf.plugin), the command (normconf.cli) and the public
plug-in API (normconf.api) on top.  Nothing is imported here: `import normconf` costs nothing.
"""
__version__ = "0.1.0"
