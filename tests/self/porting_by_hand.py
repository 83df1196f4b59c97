"""Train one framework's BatchNorm, called as the porting guide's copy-paste line says, on a golden case's
float32 batches, in a child process (Keras's backend is fixed per process; tests/self/test_honest_readings.py).

    python -m tests.self.porting_by_hand FRAMEWORK KWARGS_JSON CASE OUT.npz

FRAMEWORK is torch (its defaults; KWARGS_JSON is ignored), flax (flax.linen.BatchNorm) or keras; the case's
gamma and beta are loaded into the layer.  OUT.npz gets y_train (steps, ...), running_mean, y_eval.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from normconf.golden import fixtures


def _torch(kwargs, batches, x_eval, gamma, beta):
    import torch
    layer = torch.nn.BatchNorm2d if batches[0].ndim == 4 else torch.nn.BatchNorm1d
    bn = layer(gamma.shape[0])  # the guide's torch side: its defaults
    ys = []
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
        for x in batches:
            ys.append(bn(torch.from_numpy(x)).numpy())
        bn.eval()
        y_eval = bn(torch.from_numpy(x_eval)).numpy()
    return np.stack(ys), bn.running_mean.numpy(), y_eval


def _flax(kwargs, batches, x_eval, gamma, beta):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    bn = nn.BatchNorm(**kwargs)  # use_running_average is given per call: training, then eval
    variables = bn.init(jax.random.PRNGKey(0), jnp.asarray(batches[0]), use_running_average=False)
    params = {"scale": jnp.asarray(gamma), "bias": jnp.asarray(beta)}
    stats, ys = variables["batch_stats"], []
    for x in batches:
        y, updated = bn.apply({"params": params, "batch_stats": stats}, jnp.asarray(x), use_running_average=False,
                              mutable=["batch_stats"])
        ys.append(np.asarray(y))
        stats = updated["batch_stats"]
    y_eval = bn.apply({"params": params, "batch_stats": stats}, jnp.asarray(x_eval), use_running_average=True)
    return np.stack(ys), np.asarray(stats["mean"]), np.asarray(y_eval)


def _keras(kwargs, batches, x_eval, gamma, beta):
    import keras
    layer = keras.layers.BatchNormalization(**kwargs)
    layer.build(x_eval.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    ys = [keras.ops.convert_to_numpy(layer(x, training=True)) for x in batches]
    y_eval = keras.ops.convert_to_numpy(layer(x_eval, training=False))
    return np.stack(ys), keras.ops.convert_to_numpy(layer.moving_mean.value), y_eval


def main(framework: str, kwargs_json: str, case: str, out: str) -> None:
    fx = fixtures.load_case(case)
    inputs = fx.inputs
    run = {"torch": _torch, "flax": _flax, "keras": _keras}[framework]
    y_train, running_mean, y_eval = run(json.loads(kwargs_json), list(inputs["x"]), inputs["x_eval"],
                                        inputs["gamma"], inputs["beta"])
    np.savez(out, y_train=y_train, running_mean=running_mean, y_eval=y_eval)


if __name__ == "__main__":
    main(*sys.argv[1:])
