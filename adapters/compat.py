"""Framework versions in one place: the verified floors, and the one API that moved under us.

Below a floor an adapter is *not installed* with the reason ("flax_nnx needs flax >= 0.8.4, found
0.8.0"), never an error in every cell.  The floors are the lowest versions the suite was run on
(README "Verified version floors"); pyproject.toml declares the same numbers.
"""
from __future__ import annotations

import os
import re
import sys

# adapter -> (module, lowest verified version, what is known below it).  Verified 2026-11-22 on
# Python 3.11 (README "Verified version floors"); NORMCONF_IGNORE_FLOORS=1 runs below them anyway.
_TORCH = ("torch", "1.13", "the oldest torch with a Python 3.11 wheel")
_JAX = ("jax", "0.4.26", "jax 0.4.23 fails to import with numpy 2.4 (numpy.trapz)")
_KERAS = ("keras", "3.0", "the adapter drives Keras 3's multi-backend API")
FLOORS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "torch": (_TORCH,),
    "torch_functional": (_TORCH,),
    "flax_linen": (_JAX, ("flax", "0.8.0", "the oldest flax verified")),
    "flax_nnx": (_JAX, ("flax", "0.8.4", "flax.nnx exists from 0.8.4 on")),
    "keras[tensorflow]": (_KERAS, ("tensorflow", "2.16", "the first TensorFlow that installs beside Keras 3")),
    "keras[jax]": (_KERAS, _JAX),
    "keras[torch]": (_KERAS, ("torch", "2.0", "Keras's torch backend imports torch._dynamo")),
    "onnxruntime": (("onnxruntime", "1.32", "the oldest onnxruntime verified"), ("onnx", "1.23", "the oldest onnx verified")),
    "torch[compile]": (("torch", "2.13", "the oldest torch whose inductor was run by normconf"),),
}

# torch wheels before 2.3 are built against numpy 1.x: with numpy 2 every tensor<->array conversion
# raises "Numpy is not available".
TORCH_NUMPY2 = "2.3"


def version_tuple(text: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13, 0); '0.4.30' -> (0, 4, 30).  Pre-release tags count as the release."""
    match = re.match(r"\d+(?:\.\d+)*", str(text))
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def _version(module: str) -> str:
    return str(getattr(sys.modules.get(module), "__version__", "unknown"))


def unmet(adapter: str, version_of=_version) -> str | None:
    """Why `adapter` cannot run on the imported framework versions, or None.  Call after importing.
    NORMCONF_IGNORE_FLOORS=1 runs below the floors anyway: how a lower floor gets verified."""
    adapter = adapter.removesuffix("[eager]")  # an eager variant runs the same framework
    floors = () if os.environ.get("NORMCONF_IGNORE_FLOORS") == "1" else FLOORS.get(adapter, ())
    for module, floor, why in floors:
        found = version_of(module)
        if version_tuple(found) < version_tuple(floor):
            return f"{adapter} needs {module} >= {floor}, found {found} ({why})"
    if "torch" in {m for m, _, _ in FLOORS.get(adapter, ())}:  # not a floor: a missing declaration
        torch, numpy = version_of("torch"), version_of("numpy")
        if version_tuple(torch) < version_tuple(TORCH_NUMPY2) and version_tuple(numpy) >= (2,):
            return (f"{adapter}: torch {torch} needs numpy < 2 (it was built against numpy 1.x), found numpy {numpy}: "
                    f"pip install 'numpy<2' (the extra normconf[torch-numpy1]), or torch >= {TORCH_NUMPY2}")
    return None


def enable_x64():
    """Context manager for float64 in JAX.  jax.enable_x64 exists from jax 0.8.0 on; before that it is
    jax.experimental.enable_x64, which later releases removed."""
    import jax
    switch = getattr(jax, "enable_x64", None)
    if switch is None:
        from jax.experimental import enable_x64 as switch
    return switch(True)


def assign(variable, value) -> None:
    """Set an nnx Variable.  `variable[...] = value` works from flax 0.10.7 on; older releases forward the
    item assignment to the immutable jax array (TypeError), and take `variable.value = value` instead,
    which flax 0.12 deprecates."""
    if version_tuple(_version("flax")) >= (0, 10, 7):
        variable[...] = value
    else:
        variable.value = value

