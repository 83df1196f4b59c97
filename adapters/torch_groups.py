"""PyTorch's GroupNorm and InstanceNorm: torch.nn.GroupNorm / InstanceNorm1d-3d (modules) and
torch.nn.functional.group_norm / instance_norm, mixed into the torch adapters (adapters/torch_adapter.py).

Translations: channels are dim 1 in every one of them (no axis argument), so a channels-last case is
moved with torch.movedim, as for BatchNorm; the module is built in the input's dtype; affine is passed
explicitly (InstanceNorm's default is affine=False, GroupNorm's affine=True).  GroupNorm has no default
number of groups: the default-groups probe leaves num_groups out and the call raises (documented).
"""
from __future__ import annotations

import numpy as np

from normconf.adapters.base import DEFAULT, Unsupported, given

_IN_CLASS = {3: "InstanceNorm1d", 4: "InstanceNorm2d", 5: "InstanceNorm3d"}


def _in_class(torch, ndim: int):
    if ndim not in _IN_CLASS:
        raise Unsupported(f"InstanceNorm1d/2d/3d take (N, C, L) to (N, C, D, H, W), not {ndim} dims")
    return getattr(torch.nn, _IN_CLASS[ndim])


def _load_affine(adapter, layer, gamma, beta):
    if gamma is not None:
        layer.weight.copy_(adapter._to_torch(gamma))
        layer.bias.copy_(adapter._to_torch(beta))


class TorchGroupOps:
    """The modules; `_run` is the adapter's one forward (eager, or compiled)."""

    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        torch = self._torch()
        ca = 1 if channel_axis is DEFAULT else channel_axis % x.ndim  # no axis argument: channels are dim 1
        xf = np.moveaxis(x, ca, 1)
        # num_groups is required: the default-groups probe leaves it out, and the constructor raises
        layer = torch.nn.GroupNorm(num_channels=xf.shape[1], affine=gamma is not None, dtype=self._dtype(x),
                                   **given(num_groups=groups, eps=eps))
        with torch.no_grad():
            _load_affine(self, layer, gamma, beta)
            return {"y": np.moveaxis(self._to_numpy(self._run(layer, self._to_torch(xf))), 1, ca)}

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        torch = self._torch()
        ca = channel_axis % x.ndim
        xf = np.moveaxis(x, ca, 1)
        layer = _in_class(torch, x.ndim)(xf.shape[1], affine=gamma is not None, dtype=self._dtype(x), **given(eps=eps))
        with torch.no_grad():
            _load_affine(self, layer, gamma, beta)
            return {"y": np.moveaxis(self._to_numpy(self._run(layer, self._to_torch(xf))), 1, ca)}

    def instance_norm_steps(self, batches, x_eval, channel_axis, gamma, beta, eps, momentum):
        """InstanceNorm*d(track_running_stats=True): trained for the steps, then eval."""
        torch = self._torch()
        ca = channel_axis % x_eval.ndim
        first = [np.moveaxis(b, ca, 1) for b in batches]
        layer = _in_class(torch, x_eval.ndim)(first[0].shape[1], affine=gamma is not None, track_running_stats=True,
                                              dtype=self._dtype(x_eval), **given(eps=eps, momentum=momentum))
        with torch.no_grad():
            _load_affine(self, layer, gamma, beta)
            layer.train()
            ys, means, vars_ = [], [], []
            for b in first:
                ys.append(np.moveaxis(self._to_numpy(self._run(layer, self._to_torch(b))), 1, ca))
                means.append(self._to_numpy(layer.running_mean))
                vars_.append(self._to_numpy(layer.running_var))
            layer.eval()
            y_eval = np.moveaxis(self._to_numpy(self._run(layer, self._to_torch(np.moveaxis(x_eval, ca, 1)))), 1, ca)
        return {"y_train": np.stack(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": y_eval}


class TorchFunctionalGroupOps:
    """torch.nn.functional.group_norm / instance_norm, with explicit running buffers."""

    def _params(self, gamma, beta):
        return (None if gamma is None else self._to_torch(gamma)), (None if beta is None else self._to_torch(beta))

    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        torch = self._torch()
        ca = 1 if channel_axis is DEFAULT else channel_axis % x.ndim
        w, b = self._params(gamma, beta)
        y = torch.nn.functional.group_norm(self._to_torch(np.moveaxis(x, ca, 1)), weight=w, bias=b,
                                           **given(num_groups=groups, eps=eps))
        return {"y": np.moveaxis(self._to_numpy(y), 1, ca)}

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        torch = self._torch()
        ca = channel_axis % x.ndim
        w, b = self._params(gamma, beta)
        y = torch.nn.functional.instance_norm(self._to_torch(np.moveaxis(x, ca, 1)), weight=w, bias=b, **given(eps=eps))
        return {"y": np.moveaxis(self._to_numpy(y), 1, ca)}

    def instance_norm_steps(self, batches, x_eval, channel_axis, gamma, beta, eps, momentum):
        torch = self._torch()
        if momentum is None:
            raise Unsupported("F.instance_norm takes a float momentum")
        ca = channel_axis % x_eval.ndim
        dt = self._dtype(x_eval)
        c = x_eval.shape[ca]
        rm, rv = torch.zeros(c, dtype=dt), torch.ones(c, dtype=dt)
        w, b = self._params(gamma, beta)
        F = torch.nn.functional
        ys, means, vars_ = [], [], []
        for x in batches:
            y = F.instance_norm(self._to_torch(np.moveaxis(x, ca, 1)), rm, rv, w, b, use_input_stats=True,
                                **given(momentum=momentum, eps=eps))
            ys.append(np.moveaxis(self._to_numpy(y), 1, ca))
            means.append(self._to_numpy(rm))
            vars_.append(self._to_numpy(rv))
        y_eval = F.instance_norm(self._to_torch(np.moveaxis(x_eval, ca, 1)), rm, rv, w, b, use_input_stats=False,
                                 **given(eps=eps))
        return {"y_train": np.stack(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
                "y_eval": np.moveaxis(self._to_numpy(y_eval), 1, ca)}
