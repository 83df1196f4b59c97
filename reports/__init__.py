"""Aggregation and rendering: results JSON, matrix, HTML report, porting guide, compare, merge and history.

Imported as normconf.reports only (pyproject.toml maps this folder there)."""
if __name__ != "normconf.reports":  # the checkout's folder on sys.path: a second copy would hold other objects
    raise ImportError(f"normconf's modules are imported as normconf.reports, not {__name__}: write "
                      f"`from normconf.api import ...` (the public plug-in API) or `from normconf.reports import ...`")
