"""An older framework release without a layer (flax 0.10.4's nnx has no InstanceNorm, measured by `normconf
sweep flax 0.10.4`) makes that layer's cells unsupported, naming the version, never an error in each cell."""
import types

import pytest

from normconf.adapters.base import Unsupported, layer_class


def test_a_missing_layer_is_unsupported_naming_the_release():
    module = types.ModuleType("numpy.fake")  # a real package, so its version can be named
    module.GroupNorm = object
    assert layer_class(module, "GroupNorm") is object
    with pytest.raises(Unsupported, match=r"numpy\.fake\.InstanceNorm does not exist in numpy \d"):
        layer_class(module, "InstanceNorm")
