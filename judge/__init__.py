"""One cell's verdict: identify the conventions jointly, measure the defaults, judge them against the expectations.

Imported as normconf.judge only (pyproject.toml maps this folder there)."""
if __name__ != "normconf.judge":  # the checkout's folder on sys.path: a second copy would hold other objects
    raise ImportError(f"normconf's modules are imported as normconf.judge, not {__name__}: write "
                      f"`from normconf.api import ...` (the public plug-in API) or `from normconf.judge import ...`")
