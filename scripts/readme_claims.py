"""Re-measure two of the README's figures about framework behaviour (issue 20, item 5).

    python scripts/readme_claims.py

1. PyTorch's CPU BatchNorm in bfloat16 at a mean 100 x the std (dtype_bn_bfloat16_offset100): how much larger
   the stored running variance is than the documented one (unbiased batch variance, float64 formula), and
   whether it is exactly the unbiased variance around the batch mean rounded to bfloat16.
2. Flax BatchNorm's output dtype for float16/bfloat16 inputs, linen and nnx, with the default param_dtype
   and with param_dtype set to the input's dtype (how normconf's adapter builds them).
A script that prints figures, not a test; each part says when its framework is not installed.
"""
from __future__ import annotations

import importlib.util

import ml_dtypes
import numpy as np

from normconf.adapters.harness import call
from normconf.adapters.registry import get
from normconf.golden.bfloat16 import to_bfloat16
from normconf.golden.fixtures import load_case


def _variance_around_rounded_mean(batch: np.ndarray, feature_axis: int) -> np.ndarray:
    """The unbiased variance of each channel around its batch mean rounded to bfloat16."""
    axes = tuple(a for a in range(batch.ndim) if a != feature_axis % batch.ndim)
    rounded_mean = to_bfloat16(batch.mean(axis=axes, keepdims=True)).astype(np.float64)
    n = batch.size // batch.shape[feature_axis]
    return ((batch - rounded_mean) ** 2).sum(axis=axes) / (n - 1)


def torch_running_variance_excess(case_name: str = "dtype_bn_bfloat16_offset100") -> None:
    fx = load_case(case_name)
    torch_profile = next(i for i, v in enumerate(fx.variants) if v["profile"].get("running_variance") == "unbiased")
    documented = fx.expected[torch_profile]["running_var"]
    actual = np.asarray(call(get("torch"), fx)["running_var"], dtype=np.float64)
    excess = actual / documented - 1.0
    # momentum 1: each step's running variance is that batch's own (one row per step)
    around_rounded = np.stack([_variance_around_rounded_mean(b.astype(np.float64), fx.case.axes[0])
                               for b in fx.inputs["x"]])
    same = np.array_equal(to_bfloat16(around_rounded).view(np.uint16), to_bfloat16(actual).view(np.uint16))
    print(f"torch {case_name}: running_var / documented = {np.round(actual / documented, 4).tolist()}; "
          f"largest excess {100 * excess.max():.1f} %")
    print(f"  equals the unbiased variance around the bfloat16-rounded mean, rounded to bfloat16: {same}")


def flax_output_dtypes() -> None:
    import jax
    import jax.numpy as jnp
    from flax import linen, nnx
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x = jnp.asarray(np.ones((4, 3)), dtype=dtype)
        for label, kwargs in (("default param_dtype", {}), ("param_dtype = input dtype", {"param_dtype": dtype})):
            linen_bn = linen.BatchNorm(use_running_average=False, **kwargs)
            variables = linen_bn.init(jax.random.PRNGKey(0), x)
            y, _ = linen_bn.apply(variables, x, mutable=["batch_stats"])
            nnx_bn = nnx.BatchNorm(3, rngs=nnx.Rngs(0), **kwargs)
            print(f"flax BatchNorm {np.dtype(dtype).name} input, {label}: linen -> {y.dtype}, "
                  f"nnx -> {nnx_bn(x).dtype}")


def main() -> None:
    for module, measure in (("torch", torch_running_variance_excess), ("flax", flax_output_dtypes)):
        if importlib.util.find_spec(module) is None:
            print(f"{module} not installed: its figure not measured")
        else:
            measure()


if __name__ == "__main__":
    main()
