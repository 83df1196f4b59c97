"""PyTorch: torch.nn.LayerNorm / BatchNorm1d-3d / RMSNorm (module) and torch.nn.functional (second adapter).

Translations (the one documented place):
- momentum: PyTorch's own form (weight on the new batch); None is the cumulative average.
- layout: BatchNorm has no feature-axis argument (channels are dim 1), so a channels-last case is
  moved to channels-first and back (torch.movedim); the adapter says so in `layout_note`.
- LayerNorm normalizes the last len(normalized_shape) dims with a per-element affine: other axis
  sets and per-feature affine are Unsupported.
- dtype: the module is built in the input's dtype (parameters and buffers alike).
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import DEFAULT, ImportingAdapter, Unsupported, given, steps_output, trailing
from normconf.adapters.torch_groups import TorchFunctionalGroupOps, TorchGroupOps

_BN_CLASS = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}


def _torch():
    import torch
    return torch


def _to_torch(a):
    torch = _torch()
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":  # numpy has no bfloat16: go through the float32 values (exact)
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def _to_numpy(t):
    torch = _torch()
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy().copy()


def _dtype(x):
    return _to_torch(np.asarray(x).ravel()[:1]).dtype


class TorchAdapter(TorchGroupOps, ImportingAdapter):
    name = "torch"
    requires = ("torch",)
    momentum_form = "weight_on_new"
    layout_note = "channels-last moved to channels-first with torch.movedim: BatchNorm has no axis argument"
    # the converters, for the GroupNorm/InstanceNorm operations (adapters/torch_groups.py)
    _torch = staticmethod(_torch)
    _to_torch = staticmethod(_to_torch)
    _to_numpy = staticmethod(_to_numpy)
    _dtype = staticmethod(_dtype)

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        torch = _torch()
        if not trailing(axes, x.ndim):
            raise Unsupported(f"normalized_shape covers trailing dims only, not axes {tuple(axes)}")
        if gamma is not None and tuple(sorted(a % x.ndim for a in affine_axes)) != tuple(sorted(a % x.ndim for a in axes)):
            raise Unsupported("the affine parameters span every normalized dim (no per-feature-axis affine)")
        shape = x.shape[x.ndim - len(axes):]
        return {"y": _to_numpy(self._ln(torch, x, shape, gamma, beta, eps))}

    def _run(self, layer, x):
        """One forward of the module (eagerly here; adapters/torch_compile_adapter.py compiles it)."""
        return layer(x)

    def _ln(self, torch, x, shape, gamma, beta, eps):
        layer = torch.nn.LayerNorm(shape, elementwise_affine=gamma is not None, dtype=_dtype(x), **given(eps=eps))
        with torch.no_grad():
            if gamma is not None:
                layer.weight.copy_(_to_torch(gamma))
                layer.bias.copy_(_to_torch(beta))
            return self._run(layer, _to_torch(x))

    def _bn_layer(self, torch, x, gamma, eps, momentum):
        cls = getattr(torch.nn, _BN_CLASS[x.ndim])
        return cls(x.shape[1], affine=gamma is not None, dtype=_dtype(x), **given(eps=eps, momentum=momentum))

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        torch = _torch()
        fa = 1 if feature_axis is DEFAULT else feature_axis % x_eval.ndim  # BatchNorm*d: channels are dim 1
        first = [np.moveaxis(b, fa, 1) for b in batches]
        layer = self._bn_layer(torch, first[0], gamma, eps, momentum)
        with torch.no_grad():
            if gamma is not None:
                layer.weight.copy_(_to_torch(gamma))
                layer.bias.copy_(_to_torch(beta))
            layer.train()
            ys, means, vars_ = [], [], []
            for b in first:
                ys.append(np.moveaxis(_to_numpy(self._run(layer, _to_torch(b))), 1, fa))
                means.append(_to_numpy(layer.running_mean))
                vars_.append(_to_numpy(layer.running_var))
            layer.eval()
            y_eval = np.moveaxis(_to_numpy(self._run(layer, _to_torch(np.moveaxis(x_eval, fa, 1)))), 1, fa)
        return {"y_train": steps_output(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        torch = _torch()
        fa = feature_axis % x.ndim
        xf = np.moveaxis(x, fa, 1)
        layer = self._bn_layer(torch, xf, gamma, eps, 0.1)
        with torch.no_grad():
            if gamma is not None:
                layer.weight.copy_(_to_torch(gamma))
                layer.bias.copy_(_to_torch(beta))
            layer.running_mean.copy_(_to_torch(running_mean))
            layer.running_var.copy_(_to_torch(running_var))
            layer.eval()
            return {"y": np.moveaxis(_to_numpy(self._run(layer, _to_torch(xf))), 1, fa)}

    def rms_norm(self, x, axes, weight, eps):
        torch = _torch()
        if not hasattr(torch.nn, "RMSNorm"):
            raise Unsupported(f"torch {torch.__version__} has no nn.RMSNorm (added in torch 2.4)")
        if not trailing(axes, x.ndim):
            raise Unsupported(f"normalized_shape covers trailing dims only, not axes {tuple(axes)}")
        return {"y": _to_numpy(self._rms(torch, x, x.shape[x.ndim - len(axes):], weight, eps))}

    def _rms(self, torch, x, shape, weight, eps):
        # the module in the weight's dtype (a float32 weight beside bfloat16 activations: mixed precision)
        layer = torch.nn.RMSNorm(shape, elementwise_affine=weight is not None,
                                 dtype=_dtype(x if weight is None else weight), **given(eps=eps))
        with torch.no_grad():
            if weight is not None:
                layer.weight.copy_(_to_torch(weight))
            return self._run(layer, _to_torch(x))

    # -- gradients (issue 23): autograd through the module, as a training step's loss.backward() does --
    def layer_norm_grad(self, x, axes, gamma, beta, eps, dy):
        torch = _torch()
        if not trailing(axes, x.ndim):
            raise Unsupported(f"normalized_shape covers trailing dims only, not axes {tuple(axes)}")
        xt = _to_torch(x).requires_grad_()
        y, params = self._ln_grad_call(torch, xt, tuple(x.shape[x.ndim - len(axes):]), gamma, beta, eps)
        return _backward(y, _to_torch(dy), xt, params, lambda a: a)

    def _ln_grad_call(self, torch, xt, shape, gamma, beta, eps):
        layer = torch.nn.LayerNorm(shape, dtype=xt.dtype, **given(eps=eps))
        with torch.no_grad():
            layer.weight.copy_(_to_torch(gamma))
            layer.bias.copy_(_to_torch(beta))
        return self._run(layer, xt), (layer.weight, layer.bias)

    def batch_norm_grad(self, x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None):
        torch = _torch()
        fa = feature_axis % x.ndim
        xt = _to_torch(np.moveaxis(x, fa, 1)).requires_grad_()
        y, params = self._bn_grad_call(torch, xt, gamma, beta, eps, running_mean, running_var)
        return _backward(y, _to_torch(np.moveaxis(dy, fa, 1)), xt, params, lambda a: np.moveaxis(a, 1, fa))

    def _bn_grad_call(self, torch, xt, gamma, beta, eps, running_mean, running_var):
        layer = self._bn_layer(torch, _to_numpy(xt), gamma, eps, 0.1)
        with torch.no_grad():
            layer.weight.copy_(_to_torch(gamma))
            layer.bias.copy_(_to_torch(beta))
            if running_mean is not None:
                layer.running_mean.copy_(_to_torch(running_mean))
                layer.running_var.copy_(_to_torch(running_var))
        layer.train(running_mean is None)
        return self._run(layer, xt), (layer.weight, layer.bias)


    def rms_norm_grad(self, x, axes, weight, eps, dy):
        torch = _torch()
        if not hasattr(torch.nn, "RMSNorm"):
            raise Unsupported(f"torch {torch.__version__} has no nn.RMSNorm (added in torch 2.4)")
        if not trailing(axes, x.ndim):
            raise Unsupported(f"normalized_shape covers trailing dims only, not axes {tuple(axes)}")
        xt = _to_torch(x).requires_grad_()
        y, w = self._rms_grad_call(torch, xt, tuple(x.shape[x.ndim - len(axes):]), weight, eps)
        y.backward(_to_torch(dy))
        return {"y": _to_numpy(y), "dx": _to_numpy(xt.grad), "dweight": _to_numpy(w.grad)}

    def _rms_grad_call(self, torch, xt, shape, weight, eps):
        layer = torch.nn.RMSNorm(shape, dtype=_dtype(weight), **given(eps=eps))
        with torch.no_grad():
            layer.weight.copy_(_to_torch(weight))
        return self._run(layer, xt), layer.weight


def _backward(y, dy, xt, params, layout) -> dict:
    """y.backward(dy): the forward output and the gradients of x (put back in the case's layout) and of gamma, beta."""
    y.backward(dy)
    gamma, beta = params
    return {"y": layout(_to_numpy(y)), "dx": layout(_to_numpy(xt.grad)), "dgamma": _to_numpy(gamma.grad),
            "dbeta": _to_numpy(beta.grad)}


class TorchFunctionalAdapter(TorchFunctionalGroupOps, TorchAdapter):
    """torch.nn.functional.layer_norm / batch_norm with explicit running buffers."""
    name = "torch_functional"

    def _ln(self, torch, x, shape, gamma, beta, eps):
        w = None if gamma is None else _to_torch(gamma)
        b = None if beta is None else _to_torch(beta)
        return torch.nn.functional.layer_norm(_to_torch(x), tuple(shape), w, b, **given(eps=eps))

    def _rms(self, torch, x, shape, weight, eps):
        if not hasattr(torch.nn.functional, "rms_norm"):
            raise Unsupported(f"torch {torch.__version__} has no F.rms_norm (added in torch 2.4)")
        w = None if weight is None else _to_torch(weight)
        return torch.nn.functional.rms_norm(_to_torch(x), tuple(shape), w, **given(eps=eps))

    def _ln_grad_call(self, torch, xt, shape, gamma, beta, eps):
        w, b = _to_torch(gamma).requires_grad_(), _to_torch(beta).requires_grad_()
        return torch.nn.functional.layer_norm(xt, shape, w, b, **given(eps=eps)), (w, b)

    def _rms_grad_call(self, torch, xt, shape, weight, eps):
        if not hasattr(torch.nn.functional, "rms_norm"):
            raise Unsupported(f"torch {torch.__version__} has no F.rms_norm (added in torch 2.4)")
        w = _to_torch(weight).requires_grad_()
        return torch.nn.functional.rms_norm(xt, shape, w, **given(eps=eps)), w

    def _bn_grad_call(self, torch, xt, gamma, beta, eps, running_mean, running_var):
        w, b = _to_torch(gamma).requires_grad_(), _to_torch(beta).requires_grad_()
        c = xt.shape[1]
        training = running_mean is None
        rm = torch.zeros(c, dtype=xt.dtype) if training else _to_torch(running_mean)
        rv = torch.ones(c, dtype=xt.dtype) if training else _to_torch(running_var)
        return torch.nn.functional.batch_norm(xt, rm, rv, w, b, training=training, **given(eps=eps)), (w, b)

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum):
        torch = _torch()
        if momentum is None:
            raise Unsupported("F.batch_norm takes a float momentum: the cumulative average (1/num_batches_tracked) "
                              "is computed by the nn module, not the function")
        fa = 1 if feature_axis is DEFAULT else feature_axis % x_eval.ndim
        dt = _dtype(x_eval)
        c = x_eval.shape[fa]
        rm, rv = torch.zeros(c, dtype=dt), torch.ones(c, dtype=dt)
        w = None if gamma is None else _to_torch(gamma)
        b = None if beta is None else _to_torch(beta)
        F = torch.nn.functional
        ys, means, vars_ = [], [], []
        for x in batches:
            y = F.batch_norm(_to_torch(np.moveaxis(x, fa, 1)), rm, rv, w, b, training=True,
                             **given(momentum=momentum, eps=eps))
            ys.append(np.moveaxis(_to_numpy(y), 1, fa))
            means.append(_to_numpy(rm))
            vars_.append(_to_numpy(rv))
        y_eval = F.batch_norm(_to_torch(np.moveaxis(x_eval, fa, 1)), rm, rv, w, b, training=False, **given(eps=eps))
        return {"y_train": steps_output(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": np.moveaxis(_to_numpy(y_eval), 1, fa)}

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        torch = _torch()
        fa = feature_axis % x.ndim
        w = None if gamma is None else _to_torch(gamma)
        b = None if beta is None else _to_torch(beta)
        y = torch.nn.functional.batch_norm(_to_torch(np.moveaxis(x, fa, 1)), _to_torch(running_mean),
                                           _to_torch(running_var), w, b, training=False, **given(eps=eps))
        return {"y": np.moveaxis(_to_numpy(y), 1, fa)}
