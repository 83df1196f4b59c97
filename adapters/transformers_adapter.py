"""transformers' RMSNorm modules from the model code people port from: LlamaRMSNorm, GemmaRMSNorm and
T5LayerNorm, built by their constructors (no weights are ever downloaded) and run eagerly on the CPU.

Each model is its own column, transformers[llama] / [gemma] / [t5], on request (group `transformers`:
importing transformers' model code takes seconds).  They implement RMSNorm only (the last axis): every
other operation is Unsupported.  Translations: the module is moved to the weight's dtype (a float32 weight
beside bfloat16 activations is how these models run in mixed precision); the weight is copied as stored
(GemmaRMSNorm's zero-centred w, which it applies as 1 + w); eps DEFAULT is left to the constructor.
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import ImportingAdapter, Unsupported, given
from normconf.adapters.torch_adapter import _dtype, _to_numpy, _to_torch

MODULES = {  # model -> (module path, class)
    "llama": ("transformers.models.llama.modeling_llama", "LlamaRMSNorm"),
    "gemma": ("transformers.models.gemma.modeling_gemma", "GemmaRMSNorm"),
    "t5": ("transformers.models.t5.modeling_t5", "T5LayerNorm"),
}


class TransformersRMSNormAdapter(ImportingAdapter):
    requires = ("transformers", "torch")
    group = "transformers"  # on request only (adapters/registry.py)

    def __init__(self, model: str):
        self.model = model
        self.name = f"transformers[{model}]"

    def _unsupported(self, *args, **kwargs):
        raise Unsupported(f"{self.name} is an RMSNorm module only")

    layer_norm = batch_norm_steps = batch_norm_eval = _unsupported

    def rms_norm(self, x, axes, weight, eps):
        import importlib

        import torch
        if [a % x.ndim for a in axes] != [x.ndim - 1]:
            raise Unsupported(f"{self.name} normalizes the last axis only (mean(-1)), not axes {tuple(axes)}")
        path, cls = MODULES[self.model]
        module = getattr(importlib.import_module(path), cls)(x.shape[-1], **given(eps=eps))
        module = module.to(_dtype(x if weight is None else weight))
        with torch.no_grad():
            if weight is not None:
                module.weight.copy_(_to_torch(weight))
            return {"y": _to_numpy(module(_to_torch(np.asarray(x))))}
