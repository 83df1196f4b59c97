"""The porting guide's GroupNorm advice, checked by hand: torch.nn.GroupNorm given what the guide says
(num_groups=32, eps=1e-06, channels moved to dim 1) computes what Flax's GroupNorm does with its defaults
on a channels-last input; both against the float64 reference."""
import numpy as np
import pytest

from normconf.adapters.base import DEFAULT
from normconf.golden import reference as ref
from normconf.golden.tolerance import base_tolerance, scaled_error

pytest.importorskip("torch")
pytest.importorskip("flax")


def test_torch_groupnorm_with_the_advised_arguments_matches_flax_defaults():
    from normconf.adapters.flax_adapter import FlaxLinenAdapter
    from normconf.adapters.torch_adapter import TorchAdapter
    x = np.random.default_rng(22).normal(0.5, 2.0, (2, 3, 5, 64)).astype(np.float32)  # channels last
    flax_default = FlaxLinenAdapter().group_norm(x, DEFAULT, DEFAULT, None, None, DEFAULT)["y"]
    torch_advised = np.moveaxis(TorchAdapter().group_norm(np.moveaxis(x, -1, 1), 1, 32, None, None, 1e-6)["y"], 1, -1)
    expected = ref.group_norm(x, -1, 32, eps=1e-6).y
    stats = ref.group_norm(x, -1, 32, eps=0.0)
    tol = base_tolerance("float32", 3 * 5 * 2, float(np.max(np.abs(stats.mean) / np.sqrt(stats.var + 1e-6))))
    assert scaled_error(flax_default, expected, 1.0) <= tol
    assert scaled_error(torch_advised, expected, 1.0) <= tol
    # the advice matters: torch with its own eps and one group per 2 channels misses by far more
    assert scaled_error(TorchAdapter().group_norm(np.moveaxis(x, -1, 1), 1, 16, None, None, 1e-5)["y"],
                        np.moveaxis(expected, -1, 1), 1.0) > 100 * tol
