"""PyTorch modules exported with torch.onnx.export and run in ONNX Runtime on the CPU: the deploy path.

The same modules and translations as adapters/torch_adapter.py (its eager twin); each forward is the module,
in its current mode (train or eval), exported by the exporter torch 2.x uses by default (dynamo=True:
torch.export, then onnxscript) at a pinned opset and IR version, and run by onnxruntime's CPU provider
(adapters/onnxruntime_adapter.py runs ONNX Runtime's operators directly, so an exporter's bug and a
runtime's are told apart).

What the graph contains is recorded per cell (`graph_note`, in results.json as `graph`): each
BatchNormalization's training_mode and outputs, each LayerNormalization's stash_type.  Measured with
torch 2.13 / onnxscript 0.7: a train-mode BatchNorm is written as an inference node (no training_mode, one
output), so the exported model normalizes with its running statistics and never updates them; the module's
buffers, read after each step as for eager torch, therefore stay at their initial values.  That is a finding
(a known deviation in adapters/expectations/torch.toml), not an adapter choice.

Cost: the first export in a process takes ~4 s and each further one 0.5 to 1 s (measured), so exports are cached, in memory and on disk
(<cache dir>/torch_onnx/, a refusal too), per module configuration (repr, dtype, mode, input shape and dtype, versions):
the module is exported once with placeholder parameter values that are all distinct (the exporter's optimizer
merges equal initializers), and each call substitutes the case's values for the initializers of the same
names.  Too slow cold for the default run: it is in the `compiled` group (--frameworks=compiled).
"""
from __future__ import annotations

import hashlib
import os
import tempfile

import numpy as np

from normconf.adapters.base import Unsupported, before_each_operation, installed_version
from normconf.adapters.cache import cache_dir
from normconf.adapters.onnxruntime_adapter import GraphNotes, _elem_type, _session, describe
from normconf.adapters.torch_adapter import TorchAdapter, _to_numpy, _to_torch

OPSET = 18  # the dynamo exporter's lowest own opset (asked for 17, it exports 18 and converts down)
IR_VERSION = 10  # pinned: what the exporter writes here and onnxruntime 1.32 reads
_VERSIONS = ("torch", "onnxscript", "onnx")


class TorchOnnxAdapter(GraphNotes, TorchAdapter):
    name = "torch[onnx]"
    group = "compiled"  # on request only (adapters/registry.py)
    requires = ("torch", "onnx", "onnxruntime", "onnxscript")
    execution_mode = "onnx_export"
    layout_note = TorchAdapter.layout_note + "; each module forward exported (torch.onnx.export) and run in onnxruntime"

    def _run(self, layer, x):
        _elem_type(_to_numpy(x[:0]).dtype)  # bfloat16: Unsupported, as for onnxruntime's own column
        state = {k: _to_numpy(v) for k, v in layer.state_dict().items()}
        config = _config(layer, x)
        try:
            model = _exported(config, layer, tuple(x.shape), x.dtype)
        except ParametersFolded:  # exported with the case's own values instead: nothing to substitute
            model = _exported(f"{config}|values={_values_hash(state)}", layer, tuple(x.shape), x.dtype,
                              placeholders=False)
        self._graphs.append(describe(model))
        session = _session(_with_values(model, state).SerializeToString())
        outputs = session.run(None, {session.get_inputs()[0].name: _to_numpy(x)})
        if len(outputs) != 1:  # running statistics as outputs: the mapping back to buffers is not known here
            raise RuntimeError(f"exported graph has {len(outputs)} outputs ({describe(model)}); the adapter "
                               "reads only y: teach it the others before trusting this column")
        return _to_torch(outputs[0])

    # an exported inference graph has no autodiff: gradients through ONNX Runtime are not a deploy path
    def layer_norm_grad(self, *args, **kwargs):
        raise Unsupported("an exported ONNX graph runs forward only: no gradients through onnxruntime")

    batch_norm_grad = rms_norm_grad = layer_norm_grad

    def _new_call(self):
        self._graphs = []  # one call's graph note (GraphNotes), never the last call's


before_each_operation(TorchOnnxAdapter, "_new_call")


def _values_hash(state: dict) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(state.items()):
        digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]


def _config(layer, x) -> str:
    """What the exported graph depends on: the module's repr (class, sizes, eps, momentum, affine), its dtype
    (the adapter builds it in the input's), its mode, the input's shape, and the exporter's versions."""
    versions = ",".join(f"{m}={installed_version(m)}" for m in _VERSIONS)
    return f"{layer!r}|train={layer.training}|x={tuple(x.shape)},{x.dtype}|opset={OPSET},ir={IR_VERSION}|{versions}"


def _exported(config: str, layer, shape, dtype, placeholders: bool = True):
    """The module's graph for this configuration: from memory or disk, else exported now (and kept)."""
    if config not in _memory:
        path = _disk_path(config)
        failed = path.with_suffix(".failed") if path is not None else None
        folded = path.with_suffix(".folded") if path is not None else None
        if failed is not None and failed.is_file():  # the exporter refused this configuration before
            raise ExportFailed(failed.read_text())
        if folded is not None and folded.is_file():  # its parameters were folded before
            raise ParametersFolded(folded.read_text())
        data = path.read_bytes() if path is not None and path.is_file() else None
        if data is None:
            try:
                data = _export(layer, shape, dtype, placeholders).SerializeToString()
            except ExportFailed as exc:
                _store(failed, str(exc).encode())
                raise
            except ParametersFolded as exc:
                _store(folded, str(exc).encode())
                raise
            _store(path, data)
        import onnx
        _memory[config] = onnx.load_from_string(data)
    return _memory[config]


_memory: dict = {}  # config -> ModelProto


def _export(layer, shape, dtype, placeholders: bool = True):
    """Export a copy of the module holding placeholder values distinct from each other and from any constant
    the exporter writes (its optimizer merges equal initializers: measured, an affine=False BatchNorm's
    constant scale of ones and a running mean of ones became one initializer); without placeholders, the
    module as it is (its values are then in the graph, wherever the exporter put them)."""
    import copy

    import torch
    probe = copy.deepcopy(layer)
    with torch.no_grad():
        for i, (name, tensor) in enumerate(probe.state_dict().items() if placeholders else ()):
            if tensor.is_floating_point():
                tensor.copy_(1.0 + 0.1234567 * (i + 1) + torch.linspace(0.0, 0.01, tensor.numel()).reshape(tensor.shape))
    try:
        program = torch.onnx.export(probe, (torch.zeros(shape, dtype=dtype),), dynamo=True, opset_version=OPSET,
                                    verbose=False)
    except Exception as exc:  # the exporter's message is pages long: its exception summary is the finding
        raise ExportFailed(_summary(exc)) from None
    model = program.model_proto
    model.ir_version = IR_VERSION
    names = {i.name for i in model.graph.initializer}
    missing = {k for k, v in probe.state_dict().items() if v.is_floating_point()} - names
    if missing and placeholders:  # folded (GroupNorm's affine, a cast weight) or not used (a training-mode
        # InstanceNorm's running statistics): the case's values could not be substituted by name
        raise ParametersFolded(f"exported graph holds no initializer named {sorted(missing)}")
    return model


class ParametersFolded(RuntimeError):
    """The exporter folded the module's parameters into other constants: export it with its own values."""


class ExportFailed(RuntimeError):
    """torch.onnx.export refused the module (a per-cell finding, one line)."""


def _summary(exc) -> str:
    """The exporter's own one-line cause: the line after "## Exception summary", else the first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if "## Exception summary" in lines:
        lines = lines[lines.index("## Exception summary") + 1:]
    cause = lines[0] if lines else type(exc).__name__
    return f"torch.onnx.export failed: {cause[:300]}"


def _with_values(model, state: dict):
    """The graph with the case's parameter and buffer values in the initializers of the same names."""
    from onnx import numpy_helper
    out = type(model)()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in state:
            value = state[init.name]
            if value.dtype.name == "bfloat16":
                raise RuntimeError("bfloat16 initializers are not substituted (the column refuses bfloat16)")
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value), init.name))
    return out


def _disk_path(config: str):
    directory = cache_dir()
    if directory is None:
        return None
    return directory / "torch_onnx" / (hashlib.sha256(config.encode()).hexdigest()[:32] + ".onnx")


def _store(path, data: bytes) -> None:
    """Write atomically; a cache that cannot be written costs only the time (adapters/cache.py)."""
    if path is None:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            os.unlink(tmp)
