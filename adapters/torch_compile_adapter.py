"""PyTorch modules under torch.compile (inductor, on the CPU): the path people train with.

The same modules and translations as adapters/torch_adapter.py (its eager twin); each forward goes through
`torch.compile(module, backend="inductor", dynamic=False)`.  Every adapter call starts from a reset
compiler (torch._dynamo.reset), so no compiled graph, guard or recompile budget carries from one case to
the next: a case's result never depends on which cases ran before (and dynamo's recompile limit, which
silently falls back to eager, is never reached).  Inductor's compiled code is cached on disk in the normconf
cache directory (<cache>/inductor, TORCHINDUCTOR_CACHE_DIR unless set), so a warm run loads it back.

Too slow for the default run (19 s for 104 cells with a warm inductor cache, minutes cold): it is the
`compiled` group, selected with --frameworks=compiled (or by name, torch[compile]); CI runs it.
"""
from __future__ import annotations

import os

from normconf.adapters.base import before_each_operation
from normconf.adapters.cache import cache_dir
from normconf.adapters.torch_adapter import TorchAdapter


class TorchCompileAdapter(TorchAdapter):
    name = "torch[compile]"
    group = "compiled"  # on request only (adapters/registry.py)
    execution_mode = "compiled"
    layout_note = TorchAdapter.layout_note + "; each module forward under torch.compile (inductor)"

    def __init__(self):
        self._compiled = {}  # id(module) -> its compiled wrapper, for this call only

    def _run(self, layer, x):
        import torch
        key = id(layer)
        if key not in self._compiled:
            self._compiled = {key: torch.compile(layer, backend="inductor", dynamic=False)}
        return self._compiled[key](x)

    def _fresh(self):
        import torch
        directory = cache_dir()
        if directory is not None:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(directory / "inductor"))
        torch._dynamo.reset()
        self._compiled = {}


# every operation (forward and gradient, of every layer) starts from a reset compiler
before_each_operation(TorchCompileAdapter, "_fresh")
