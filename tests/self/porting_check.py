"""Follow the porting guide's calls for torch and Keras on the same data, in one child process whose
KERAS_BACKEND is set by the caller (tests/self/test_porting.py).

    python -m tests.self.porting_check ADVICE.json   ->  JSON: output -> scaled error between the two

ADVICE.json holds the guide's `like` entries: "keras" (Keras given torch's defaults) and "torch" (torch
given Keras's defaults), each {"layer_norm": kwargs, "batch_norm": kwargs, "input": how torch is fed},
and "weight_on_new": each one's measured default momentum as the weight on the new batch.
Batches have a small variance (0.05 around 0.1), so a missed eps or momentum shows at once.
"""
from __future__ import annotations

import json
import sys

import numpy as np

N, C, H, W, STEPS = 2, 3, 2, 4, 20  # 16 values per channel: N/(N-1) is 7%, well over the tolerance


def _torch_bn(kwargs, batches, x_eval, channels_last, stats=None):
    import torch
    into, back = ((lambda t: t.movedim(-1, 1)), (lambda t: t.movedim(1, -1))) if channels_last else \
        ((lambda t: t), (lambda t: t))
    bn = torch.nn.BatchNorm2d(C, **kwargs)
    out = {"y_train": [], "running_mean": [], "running_var": []}
    with torch.no_grad():
        for x in batches:
            out["y_train"].append(back(bn(into(torch.from_numpy(x)))).numpy())
            out["running_mean"].append(bn.running_mean.numpy().copy())
            out["running_var"].append(bn.running_var.numpy().copy())
        if stats is not None:  # a checkpoint's statistics, copied as they are
            bn.running_mean.copy_(torch.from_numpy(stats[0]))
            bn.running_var.copy_(torch.from_numpy(stats[1]))
        bn.eval()
        out["y_eval"] = back(bn(into(torch.from_numpy(x_eval)))).numpy()
    return {k: np.asarray(v) for k, v in out.items()}


def _keras_bn(kwargs, batches, x_eval, stats=None):
    import keras
    layer = keras.layers.BatchNormalization(**kwargs)
    layer.build(x_eval.shape)
    out = {"y_train": [], "running_mean": [], "running_var": []}
    for x in batches:
        out["y_train"].append(keras.ops.convert_to_numpy(layer(x, training=True)))
        out["running_mean"].append(keras.ops.convert_to_numpy(layer.moving_mean.value))
        out["running_var"].append(keras.ops.convert_to_numpy(layer.moving_variance.value))
    if stats is not None:
        layer.moving_mean.assign(stats[0])
        layer.moving_variance.assign(stats[1])
    out["y_eval"] = keras.ops.convert_to_numpy(layer(x_eval, training=False))
    return {k: np.asarray(v) for k, v in out.items()}


def _scaled(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def _running_var_as_other(var, momentum_new, factor):
    """What the other framework stores: the batch variances rescaled, the initial 1 not (it fades as
    (1 - m)^steps), as the guide says."""
    fade = (1 - momentum_new) ** STEPS
    return (var - fade) * factor + fade


def main(path: str) -> dict:
    import keras
    import torch
    advice = json.loads(open(path).read())
    rng = np.random.default_rng(0)
    first = [(0.1 + 0.05 * rng.standard_normal((N, C, H, W))).astype(np.float32) for _ in range(STEPS + 1)]
    last = [np.ascontiguousarray(np.moveaxis(x, 1, -1)) for x in first]  # the same data, channels last
    n = N * H * W
    # the case's conditioning, as golden/tolerance.py reads it: max |mean| / sqrt(var + eps) over channels
    out = {"offset": max(float((abs(x.mean((0, 2, 3))) / np.sqrt(x.var((0, 2, 3)) + 1e-5)).max()) for x in first)}
    # 1. Keras given torch's defaults, on torch's channels-first batches
    ref = _torch_bn({}, first[:-1], first[-1], False)
    like = _keras_bn(advice["keras"]["batch_norm"], first[:-1], first[-1])
    bare = _keras_bn({"axis": 1}, first[:-1], first[-1])  # the axis alone: eps and momentum left at Keras's
    out["keras_like_torch"] = {k: _scaled(like[k], ref[k]) for k in ("y_train", "running_mean")}
    out["keras_like_torch"]["running_var_rescaled"] = _scaled(
        like["running_var"][-1], _running_var_as_other(ref["running_var"][-1], advice["weight_on_new"]["torch"], (n - 1) / n))
    out["keras_like_torch"]["running_var_as_stored"] = _scaled(like["running_var"][-1], ref["running_var"][-1])
    out["keras_like_torch"]["y_eval_as_stored"] = _scaled(like["y_eval"], ref["y_eval"])
    copied = _keras_bn(advice["keras"]["batch_norm"], first[:-1], first[-1],
                       stats=(ref["running_mean"][-1], ref["running_var"][-1]))
    out["keras_like_torch"]["y_eval_checkpoint_copied"] = _scaled(copied["y_eval"], ref["y_eval"])
    out["keras_bare"] = {k: _scaled(bare[k], ref[k]) for k in ("y_train", "running_mean")}
    # 2. torch given Keras's defaults, on Keras's channels-last batches, fed as the guide says
    assert advice["torch"]["input"] == "x.movedim(-1, 1)", advice["torch"]
    ref = _keras_bn({}, last[:-1], last[-1])
    like = _torch_bn(advice["torch"]["batch_norm"], last[:-1], last[-1], True)
    out["torch_like_keras"] = {k: _scaled(like[k], ref[k]) for k in ("y_train", "running_mean")}
    out["torch_like_keras"]["running_var_rescaled"] = _scaled(
        like["running_var"][-1], _running_var_as_other(ref["running_var"][-1], advice["weight_on_new"]["keras"], n / (n - 1)))
    copied = _torch_bn(advice["torch"]["batch_norm"], last[:-1], last[-1], True,
                       stats=(ref["running_mean"][-1], ref["running_var"][-1]))
    out["torch_like_keras"]["y_eval_checkpoint_copied"] = _scaled(copied["y_eval"], ref["y_eval"])
    # 3. LayerNorm both ways, over the last axis
    x = first[0]
    ln_torch = torch.nn.LayerNorm((W,))(torch.from_numpy(x)).detach().numpy()
    ln_keras = keras.ops.convert_to_numpy(keras.layers.LayerNormalization(**advice["keras"]["layer_norm"])(x))
    out["layer_norm_keras_like_torch"] = _scaled(ln_keras, ln_torch)
    ln_keras = keras.ops.convert_to_numpy(keras.layers.LayerNormalization()(x))
    ln_torch = torch.nn.LayerNorm((W,), **advice["torch"]["layer_norm"])(torch.from_numpy(x)).detach().numpy()
    out["layer_norm_torch_like_keras"] = _scaled(ln_torch, ln_keras)
    out["layer_norm_bare"] = _scaled(torch.nn.LayerNorm((W,))(torch.from_numpy(x)).detach().numpy(), ln_keras)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
