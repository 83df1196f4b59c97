"""One adapter per framework, running its real layers with every parameter explicit; plug-ins; the child-process runner.

Imported as normconf.adapters only (pyproject.toml maps this folder there)."""
if __name__ != "normconf.adapters":  # the checkout's folder on sys.path: a second copy would hold other objects
    raise ImportError(f"normconf's modules are imported as normconf.adapters, not {__name__}: write "
                      f"`from normconf.api import ...` (the public plug-in API) or `from normconf.adapters import ...`")
