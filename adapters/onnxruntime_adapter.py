"""ONNX Runtime's own operators, run directly: a one-node graph built with onnx.helper, executed by
onnxruntime on the CPU.  LayerNormalization-17 and BatchNormalization-15 (both in opset 17), so that an
exporter's bug and a runtime's bug can be told apart (adapters/torch_onnx_adapter.py exports torch's
modules into the same runtime).

Translations (the one documented place):
- momentum: the ONNX form, the weight on the old value (running = m * running + (1 - m) * batch), as Keras;
  no cumulative average (momentum=None is Unsupported).
- layout: BatchNormalization's channels are dim 1: a channels-last case is moved there and back.
- BatchNorm's running statistics live outside the graph: the adapter starts them at zeros and ones and
  feeds each step's outputs into the next (training_mode=1); eval runs training_mode=0 with them.
- scale and B are required inputs of BatchNormalization and Scale of LayerNormalization: without an affine
  step the adapter passes ones and zeros (an exact identity).
- LayerNormalization normalizes the trailing axes from `axis` on with a per-element Scale; its stash_type
  is left at the default (1: float32 statistics), as an exporter writes it.
- dtype: the graph is typed in the input's dtype; a dtype the CPU provider has no kernel for is Unsupported.
"""
from __future__ import annotations

import functools

import numpy as np

from normconf.adapters.base import DEFAULT, ImportingAdapter, Unsupported, given, steps_output, trailing
from normconf.adapters.onnxruntime_groups import OnnxGroupOps

OPSET = 17
RMS_OPSET = 23  # RMSNormalization-23 (onnxruntime has a CPU kernel in 1.32, measured)
IR_VERSION = 8  # pinned: newer onnx releases write IR versions older runtimes refuse


def _elem_type(dtype) -> int:
    from onnx import TensorProto
    types = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
    if np.dtype(dtype).name not in types:
        # measured with onnxruntime 1.32: a session builds, but run() refuses ml_dtypes' bfloat16 arrays
        # ("Numpy_type 256 can't be converted to MLDataType")
        raise Unsupported(f"onnxruntime's Python API takes no {np.dtype(dtype).name} arrays")
    return types[np.dtype(dtype).name]


# an operator newer than OPSET: the opset it needs and the IR version that opset came with
NEWER_OPS = {"GroupNormalization": (21, 10)}  # version 21: scale and bias per channel (18's were per group)


def run_node(op: str, inputs: dict, outputs: list[str], seen: list | None = None, opset: int | None = None,
             **attributes) -> list[np.ndarray]:
    """One ONNX node over named numpy inputs, through an onnxruntime CPU session; `seen` gets what the
    graph holds (describe).  opset: where the caller needs a newer one than NEWER_OPS says."""
    needed, ir_version = NEWER_OPS.get(op, (OPSET, IR_VERSION))
    opset = opset or needed
    from onnx import helper
    node = helper.make_node(op, list(inputs), outputs, **attributes)
    infos = [helper.make_tensor_value_info(n, _elem_type(a.dtype), list(a.shape)) for n, a in inputs.items()]
    out_type = _elem_type(next(iter(inputs.values())).dtype)
    graph = helper.make_graph([node], op, infos, [helper.make_tensor_value_info(n, out_type, None) for n in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    if seen is not None:
        seen.append(describe(model))
    try:
        session = _session(model.SerializeToString())
    except Exception as exc:  # NOT_IMPLEMENTED: no kernel for this type on the CPU provider
        if "NOT_IMPLEMENTED" in str(exc) or "Could not find an implementation" in str(exc):
            raise Unsupported(f"onnxruntime CPU has no {op} kernel for these types: {str(exc)[:200]}") from None
        raise
    return session.run(outputs, {n: np.ascontiguousarray(a) for n, a in inputs.items()})


def describe(model) -> str:
    """The normalization nodes of a graph with the attributes that decide their behaviour."""
    from onnx import helper
    parts = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "BatchNormalization":
            parts.append(f"BatchNormalization training_mode={attrs.get('training_mode', 0)}, "
                         f"{len(node.output)} output{'s' * (len(node.output) > 1)}")
        elif node.op_type == "LayerNormalization":
            parts.append(f"LayerNormalization stash_type={attrs.get('stash_type', 1)}")
    return ", ".join(parts) or "no normalization node: " + " ".join(n.op_type for n in model.graph.node)


@functools.lru_cache(maxsize=32)
def _session(model: bytes):
    """One session per distinct graph: a training run's steps share theirs (a session holds no state
    between runs: the running statistics are inputs and outputs)."""
    import onnxruntime
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


class GraphNotes:
    """What the ONNX graphs of an adapter's current call hold (each operation resets `_graphs`);
    judge/verdict.py records it per cell as `graph`."""
    _graphs: list = []

    def graph_note(self) -> str | None:
        return "; ".join(dict.fromkeys(self._graphs)) or None


class OnnxRuntimeAdapter(GraphNotes, OnnxGroupOps, ImportingAdapter):
    name = "onnxruntime"
    requires = ("onnxruntime", "onnx")
    momentum_form = "weight_on_old"
    execution_mode = "onnxruntime"
    layout_note = ("one-node ONNX graph (opset 17) in onnxruntime's CPU provider; channels-last moved to dim 1; "
                   "BatchNorm's running statistics start at 0 and 1 and are fed back by the adapter")
    _run_node = staticmethod(run_node)  # for the GroupNorm/InstanceNorm nodes (adapters/onnxruntime_groups.py)

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        self._graphs = []
        if not trailing(axes, x.ndim):
            raise Unsupported(f"LayerNormalization normalizes the trailing axes from `axis` on, not {tuple(axes)}")
        if gamma is not None and sorted(a % x.ndim for a in affine_axes) != sorted(a % x.ndim for a in axes):
            raise Unsupported("Scale spans every normalized axis (no per-feature-axis affine)")
        shape = x.shape[x.ndim - len(axes):]
        inputs = {"X": x, "Scale": gamma if gamma is not None else np.ones(shape, x.dtype)}
        if beta is not None:
            inputs["B"] = beta
        (y,) = run_node("LayerNormalization", inputs, ["Y"], self._graphs, axis=x.ndim - len(axes),
                        **given(epsilon=eps))
        return {"y": y}

    def rms_norm(self, x, axes, weight, eps):
        if not trailing(axes, x.ndim):
            raise Unsupported(f"RMSNormalization normalizes the trailing axes from `axis` on, not {tuple(axes)}")
        shape = x.shape[x.ndim - len(axes):]
        scale = weight if weight is not None else np.ones(shape, x.dtype)
        (y,) = run_node("RMSNormalization", {"X": x, "scale": scale}, ["Y"], opset=RMS_OPSET,
                        axis=x.ndim - len(axes), **given(epsilon=eps))
        return {"y": y}

    def _affine(self, gamma, beta, channels, dtype):
        return (gamma if gamma is not None else np.ones(channels, dtype),
                beta if beta is not None else np.zeros(channels, dtype))

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        self._graphs = []
        if momentum is None:
            raise Unsupported("BatchNormalization takes a float momentum: no cumulative average")
        fa = 1 if feature_axis is DEFAULT else feature_axis % x_eval.ndim
        channels, dtype = x_eval.shape[fa], x_eval.dtype
        scale, bias = self._affine(gamma, beta, channels, dtype)
        mean, var = np.zeros(channels, dtype), np.ones(channels, dtype)
        attrs = given(epsilon=eps, momentum=momentum)
        ys, means, vars_ = [], [], []
        for x in batches:
            y, mean, var = run_node("BatchNormalization", {"X": np.moveaxis(x, fa, 1), "scale": scale, "B": bias,
                                                           "input_mean": mean, "input_var": var},
                                    ["Y", "running_mean", "running_var"], self._graphs, training_mode=1, **attrs)
            ys.append(np.moveaxis(y, 1, fa))
            means.append(mean)
            vars_.append(var)
        y_eval = self._eval(x_eval, fa, mean, var, scale, bias, eps)
        return {"y_train": steps_output(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}

    def _eval(self, x, fa, mean, var, scale, bias, eps):
        (y,) = run_node("BatchNormalization", {"X": np.moveaxis(x, fa, 1), "scale": scale, "B": bias,
                                               "input_mean": mean, "input_var": var}, ["Y"], self._graphs, **given(epsilon=eps))
        return np.moveaxis(y, 1, fa)

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        self._graphs = []
        fa = feature_axis % x.ndim
        scale, bias = self._affine(gamma, beta, x.shape[fa], x.dtype)
        return {"y": self._eval(x, fa, np.asarray(running_mean), np.asarray(running_var), scale, bias, eps)}
