"""Reference formulas and candidate profiles in float64, the case catalog, derived tolerances and the golden fixtures.

Imported as normconf.golden only (pyproject.toml maps this folder there)."""
if __name__ != "normconf.golden":  # the checkout's folder on sys.path: a second copy would hold other objects
    raise ImportError(f"normconf's modules are imported as normconf.golden, not {__name__}: write "
                      f"`from normconf.api import ...` (the public plug-in API) or `from normconf.golden import ...`")
