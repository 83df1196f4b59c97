"""normconf's public plug-in API: everything a plug-in author needs, in one module.

A plug-in is any object with a ``name`` (str) and one or more of the operations below (LayerNorm and
BatchNorm's three; RMSNorm's, GroupNorm's, InstanceNorm's and the gradients, optional); the ones it lacks
report as *unsupported*.  Register it with ``--adapter=path/file.py:Attr`` (or ``module:Attr``), or
permanently with an entry point in the ``normconf.adapters`` group.  The suite hands every operation numpy
arrays in the case's dtype (float16, bfloat16 from ml_dtypes, float32 or float64) and expects numpy arrays
back, in the dtype the implementation really produces, keyed by the names below.  Arguments that are
``DEFAULT`` must be left out of the layer's construction (the default probes measure what it then does).

Optional attributes:

- ``momentum_form``: ``"weight_on_new"`` (default; PyTorch: running = (1 - m) running + m batch) or
  ``"weight_on_old"`` (Keras, Flax: running = m running + (1 - m) batch).  The suite translates the momentum
  of every case into this form before calling; the probes check the claim.
- ``documented``: {convention: variant, or {"variant", "cite"}}, defaults as numbers (``default_eps``,
  ``default_momentum`` as the weight on the new batch, ``default_feature_axis``), optionally per layer
  (``"default_eps@layer_norm"``), in the schema of the built-in expectation files.
- ``outcomes`` / ``deviations``: lists of [[outcome]] / [[deviation]] entries (see README, *Checking your
  own implementation*).
- ``availability()`` -> None or why it cannot run; ``versions()`` -> {package: version}.
- ``layout_note``, ``execution_mode`` ("eager" or "jit"): shown in the report.
- ``graph_note()`` -> None or what the last operation's compiled or exported graph held (the ONNX adapters:
  "BatchNormalization training_mode=0, 1 output"): results.json's ``graph`` and the cell's details.
- ``arguments``: your framework's names, for the porting guide: {"layer_norm": "mylib.LayerNorm({})",
  "batch_norm": "mylib.BatchNorm({})", "eps": ..., "momentum": ..., "axis": ... (None: no feature-axis
  argument), "layer_norm_axes": ...}, ``{}`` where the keyword arguments go (reports/arguments.py).  Without
  it the guide says the plug-in declares no argument names and gives the values only.

An implementation that must run in its own process (it fixes global state per process) is returned as a
``RemoteAdapter`` (below); it gets what the built-in Keras children get: the report header, results.json's
``child_process``, a per-call deadline enforced by stopping the child, and ``close()`` at the end.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from normconf.adapters.base import DEFAULT, Unsupported, steps_output
from normconf.adapters.remote import RemoteAdapter

__all__ = ["DEFAULT", "Unsupported", "RemoteAdapter", "Adapter", "steps_output"]


class Adapter(Protocol):
    """The operations a plug-in may implement (any subset).  Shapes: N batch, C channels (features)."""

    name: str

    def layer_norm(self, x: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray | None, beta: np.ndarray | None,
                   eps: float, affine_axes: tuple[int, ...]) -> dict[str, np.ndarray]:
        """LayerNorm of ``x`` (any rank) over ``axes`` (ints, possibly negative, possibly not trailing).

        gamma, beta: None (no affine) or arrays of shape ``[x.shape[a] for a in affine_axes]`` (usually
        the normalized shape; Flax's per-feature-axis affine differs), in x's dtype.  eps: a float or DEFAULT.
        Returns ``{"y": array of x.shape}``.
        """

    def batch_norm_steps(self, batches: list[np.ndarray], x_eval: np.ndarray, feature_axis: int,
                         gamma: np.ndarray | None, beta: np.ndarray | None, eps: float,
                         momentum: float | None) -> dict[str, np.ndarray]:
        """A fresh BatchNorm layer trained for ``len(batches)`` steps, then evaluated once.

        batches: S arrays (the channel axis at ``feature_axis``, possibly negative or DEFAULT: the layer's
        own default), of one shape, or, in the cases with batch sizes that change from step to step, of
        shapes whose batch axis (the first axis that is not the feature axis) differs from step to step;
        x_eval: one more array.  gamma, beta: None or arrays of shape (C,).  eps: float or DEFAULT.
        momentum: in this adapter's ``momentum_form``, DEFAULT, or None (PyTorch's cumulative average).
        Running statistics start as the layer makes them.  Returns::

            "y_train":      (S, *batch.shape)   training-mode output of each step, stacked; or a list of
                                                S arrays, one per step (required where shapes differ:
                                                ``steps_output(ys)`` picks the form)
            "running_mean": (S, C)              running mean after each step
            "running_var":  (S, C)              running variance after each step (as the layer stores it)
            "y_eval":       x_eval.shape        eval-mode output after the last step

        A plug-in that always stacks y_train keeps working on every one-shape case; on a case whose batch
        sizes change its np.stack raises, and the cell says so.
        """

    def batch_norm_eval(self, x: np.ndarray, feature_axis: int, running_mean: np.ndarray, running_var: np.ndarray,
                        gamma: np.ndarray | None, beta: np.ndarray | None, eps: float) -> dict[str, np.ndarray]:
        """Eval-mode BatchNorm with the given running statistics (shape (C,), in x's dtype or float32 as the
        case says).  Returns ``{"y": array of x.shape}``.  Must not modify any argument."""

    # Optional (gradient cells, issue 23): the forward output and the gradients of sum(y * dy) through your own
    # autodiff (or backward kernel), from one call.  Without them the gradient cells are unsupported.
    def layer_norm_grad(self, x: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray, beta: np.ndarray,
                        eps: float, dy: np.ndarray) -> dict[str, np.ndarray]:
        """LayerNorm over ``axes`` with gamma, beta spanning them; dy: the cotangent, x's shape and dtype.
        Returns ``{"y", "dx"}`` of x's shape and ``{"dgamma", "dbeta"}`` of gamma's shape."""

    def batch_norm_grad(self, x: np.ndarray, feature_axis: int, gamma: np.ndarray, beta: np.ndarray, eps: float,
                        dy: np.ndarray, running_mean: np.ndarray | None = None,
                        running_var: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """One training step (running_mean None: the batch's statistics, which dx flows through) or eval with
        the given running statistics.  Returns ``{"y", "dx", "dgamma", "dbeta"}`` as layer_norm_grad."""

    def rms_norm(self, x: np.ndarray, axes: tuple[int, ...], weight: np.ndarray | None,
                 eps: float) -> dict[str, np.ndarray]:
        """RMSNorm of ``x`` over ``axes`` (trailing, possibly negative): x / sqrt(mean(x^2) + eps) * weight.

        weight: None (no weight) or an array of shape ``[x.shape[a] for a in axes]`` in x's dtype, handed
        as the layer stores it: an implementation that applies (1 + weight) (Gemma) does so itself, and is
        identified as such (convention ``rms_weight_form``).  eps: a float or DEFAULT.  Optional: without
        it the RMSNorm cells are unsupported.  Returns ``{"y": array of x.shape}``."""

    def group_norm(self, x: np.ndarray, channel_axis: int, groups: int, gamma: np.ndarray | None,
                   beta: np.ndarray | None, eps: float) -> dict[str, np.ndarray]:
        """GroupNorm: axis 0 is the batch, ``channel_axis`` any other (possibly negative); statistics per
        sample and group of C / groups channels.  groups: an int or DEFAULT (leave it to the layer).
        gamma, beta: None or (C,).  Returns ``{"y": array of x.shape}``."""

    def instance_norm(self, x: np.ndarray, channel_axis: int, gamma: np.ndarray | None, beta: np.ndarray | None,
                      eps: float) -> dict[str, np.ndarray]:
        """InstanceNorm without running statistics: statistics per sample and channel.  Returns
        ``{"y": array of x.shape}``."""

    def instance_norm_steps(self, batches: list[np.ndarray], x_eval: np.ndarray, channel_axis: int,
                            gamma: np.ndarray | None, beta: np.ndarray | None, eps: float,
                            momentum: float | None) -> dict[str, np.ndarray]:
        """InstanceNorm keeping running statistics (torch's track_running_stats=True), trained for
        ``len(batches)`` steps, then evaluated once: the outputs of ``batch_norm_steps``."""

    def rms_norm_grad(self, x: np.ndarray, axes: tuple[int, ...], weight: np.ndarray, eps: float,
                      dy: np.ndarray) -> dict[str, np.ndarray]:
        """Optional (gradient cells): rms_norm with a weight, and the gradients of sum(y * dy).  Returns
        ``{"y", "dx"}`` of x's shape and ``{"dweight"}`` of the weight's shape (the same for w and 1 + w)."""
