"""Which adapters exist: the built-ins, entry-point plug-ins (group `normconf.adapters`) and
`--adapter module:attribute` plug-ins.  An adapter object or a zero-argument factory is accepted."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from normconf.adapters.base import MOMENTUM_FORMS, OPS, Adapter, Unsupported  # noqa: F401 - Adapter: the interface plug-ins follow
from normconf.adapters.remote import RemoteAdapter

ENTRY_POINT_GROUP = "normconf.adapters"


def _builtins() -> dict:
    from normconf.adapters.flax_adapter import FlaxLinenAdapter, FlaxNnxAdapter
    from normconf.adapters.keras_adapter import KERAS_BACKENDS, remote_keras
    from normconf.adapters.numpy_adapter import NumpyAdapter
    from normconf.adapters.onnxruntime_adapter import OnnxRuntimeAdapter
    from normconf.adapters.torch_adapter import TorchAdapter, TorchFunctionalAdapter
    out = {a.name: a for a in (TorchAdapter(), TorchFunctionalAdapter(), FlaxLinenAdapter(), FlaxNnxAdapter())}
    out.update({f"keras[{b}]": remote_keras(b) for b in KERAS_BACKENDS})
    out["onnxruntime"] = OnnxRuntimeAdapter()
    out["numpy"] = NumpyAdapter()
    return out


def _on_request() -> dict:
    """Adapters run only when named in --frameworks, or with their group's name: the eager variants of the
    jitted JAX adapters (group `eager`; tests/self/test_jit_agreement.py compares them with the jitted
    ones) and the compiled paths, too slow for the default run (group `compiled`)."""
    from normconf.adapters.flax_adapter import FlaxLinenAdapter, FlaxNnxAdapter
    from normconf.adapters.keras_adapter import KERAS_BACKENDS, TF_FUNCTION_MODES, remote_keras
    from normconf.adapters.torch_compile_adapter import TorchCompileAdapter
    from normconf.adapters.torch_onnx_adapter import TorchOnnxAdapter
    eager = (FlaxLinenAdapter("eager"), FlaxNnxAdapter("eager"), remote_keras("jax", "eager"))
    compiled = [TorchCompileAdapter(), TorchOnnxAdapter()]
    for mode in TF_FUNCTION_MODES:  # keras[tensorflow][xla], keras[tensorflow][function]
        compiled.append(remote_keras("tensorflow", mode))
        compiled[-1].group = "compiled"
    out = {a.name: a for a in (*eager, *compiled)}
    from normconf.adapters.transformers_adapter import MODULES, TransformersRMSNormAdapter
    out.update({a.name: a for a in (TransformersRMSNormAdapter(m) for m in MODULES)})  # group transformers
    # Keras's other RMS paths (group keras_rms): the op, and LayerNormalization(rms_scaling=True)
    for backend in KERAS_BACKENDS:
        for variant in ("op", "rms_scaling"):
            adapter = remote_keras(backend, rms_variant=variant)
            adapter.group = "keras_rms"
            out[adapter.name] = adapter
    return out


def group_of(adapter) -> str:
    """The group an on-request adapter is selected by (--frameworks=GROUP)."""
    return getattr(adapter, "group", "eager")


_TABLES = {"BUILTINS": _builtins, "ON_REQUEST": _on_request}
_made: dict = {}


def _table(name: str) -> dict:
    if name not in _made:
        _made[name] = _TABLES[name]()
    return _made[name]


def __getattr__(name: str):
    """BUILTINS and ON_REQUEST are built on first use, not at import (importing normconf builds nothing)."""
    if name in _TABLES:
        return _table(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get(name: str) -> Adapter:
    builtins, on_request = _table("BUILTINS"), _table("ON_REQUEST")
    try:
        return builtins.get(name) or on_request[name]
    except KeyError:
        raise KeyError(f"no adapter named {name!r}; known: {', '.join([*builtins, *on_request])}") from None


class PluginAdapter:
    """Wraps a user's object: operations it lacks raise Unsupported; availability and versions get
    defaults; every other attribute (layout_note, execution_mode, ...) is the object's own.  `spec`
    is where it came from (module:attribute, path/file.py:attribute or an entry point), for repro snippets."""

    def __init__(self, obj, spec: str):
        self._obj, self.spec = obj, spec
        self.name = str(obj.name)
        self.momentum_form = getattr(obj, "momentum_form", "weight_on_new")
        if self.momentum_form not in MOMENTUM_FORMS:  # else every BatchNorm cell would fail on it, one by one
            raise ValueError(f"plug-in {self.name!r} ({spec}): momentum_form {self.momentum_form!r} is not one of "
                             f"{', '.join(MOMENTUM_FORMS)}")

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = getattr(self._obj, attr, None)
        if value is not None:
            return value
        if attr in OPS:
            return lambda *a, **k: _unsupported(self.name, attr)
        raise AttributeError(attr)

    def availability(self):
        fn = getattr(self._obj, "availability", None)
        return fn() if fn else None

    def versions(self):
        fn = getattr(self._obj, "versions", None)
        return dict(fn()) if fn else {"plugin": self.spec}




def _unsupported(name, op):
    raise Unsupported(f"plug-in {name!r} does not implement {op}")


def _instantiate(obj, spec: str) -> PluginAdapter:
    adapter = obj() if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "name")) else obj
    if not hasattr(adapter, "name") or not any(hasattr(adapter, op) for op in OPS):
        raise TypeError(f"{spec}: not an adapter: needs `name` and at least one of {', '.join(OPS)} "
                        "(see adapters/base.py)")
    if isinstance(adapter, RemoteAdapter):  # a full adapter already: kept as is, so it is treated as a built-in one
        adapter.spec = adapter.spec or spec
        return adapter
    return adapter if isinstance(adapter, PluginAdapter) else PluginAdapter(adapter, spec)


def is_plugin(adapter) -> bool:
    return getattr(adapter, "spec", None) is not None


def load_spec(spec: str) -> PluginAdapter:
    """`module:attribute` or `path/to/file.py:attribute`."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"--adapter {spec!r}: expected module:attribute or path/file.py:attribute")
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            spec_obj = importlib.util.spec_from_file_location(f"normconf_plugin_{path.stem}", path)
            module = importlib.util.module_from_spec(spec_obj)
            sys.modules[spec_obj.name] = module
            spec_obj.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        obj = getattr(module, attr)
    except Exception as exc:  # the plug-in's own module failed (SyntaxError, ImportError, its own code): one line
        raise ValueError(f"--adapter {spec!r}: {type(exc).__name__}: {exc}") from None
    return _instantiate(obj, str(Path(target).resolve()) + ":" + attr if target.endswith(".py") else spec)


def plugins() -> dict[str, PluginAdapter]:
    out = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # an installed plug-in package that fails to import: one line naming it
            raise ValueError(f"entry point {ep.name} = {ep.value}: {type(exc).__name__}: {exc}") from None
        adapter = _instantiate(obj, ep.value)
        out[adapter.name] = adapter
    return out
