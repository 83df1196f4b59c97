"""The adapter interface: what normconf asks of a framework, with every parameter explicit.

An adapter runs a framework's real layers.  Its three operations take numpy arrays in the case's dtype
and hand back numpy arrays in the framework's output dtype, keyed by the golden output names:

    layer_norm(x, axes, gamma, beta, eps, affine_axes)           -> {"y"}
    batch_norm_steps(batches, x_eval, feature_axis, gamma, beta, eps, momentum)
                                                                 -> {"y_train", "running_mean", "running_var", "y_eval"}
    (the batches' batch axis may change length from step to step: y_train is then a list of one array
    per step, else stacked (K, *shape) or that list; steps_output does it.  running_* are (K, C).)
    batch_norm_eval(x, feature_axis, running_mean, running_var, gamma, beta, eps) -> {"y"}
    group_norm(x, channel_axis, groups, gamma, beta, eps)         -> {"y"}
    instance_norm(x, channel_axis, gamma, beta, eps)              -> {"y"}
    instance_norm_steps(batches, x_eval, channel_axis, gamma, beta, eps, momentum)
                                                                 -> {"y_train", "running_mean", "running_var", "y_eval"}
    rms_norm(x, axes, weight, eps)                               -> {"y"}   (optional: Unsupported without it)

and, optional (issue 23: without them the gradient cells are unsupported), the forward output and the
gradients for a cotangent dy = dL/dy from one call, through the framework's own autodiff:

    layer_norm_grad(x, axes, gamma, beta, eps, dy)               -> {"y", "dx", "dgamma", "dbeta"}
    batch_norm_grad(x, feature_axis, gamma, beta, eps, dy, running_mean=None, running_var=None)
                                                                 -> {"y", "dx", "dgamma", "dbeta"}
    rms_norm_grad(x, axes, weight, eps, dy)                      -> {"y", "dx", "dweight"}

batch_norm_grad trains (batch statistics) when running_mean is None, else evaluates with the given running
statistics.  dgamma, dbeta come back in gamma's shape and the parameters' dtype.

eps, momentum or batch_norm_steps' feature_axis may be DEFAULT: build the layer without that argument
(the default probes).
momentum reaches the adapter already in the framework's own form (see native_momentum), or None for
PyTorch's cumulative average.  An adapter raises Unsupported when the framework cannot express a case.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import platform
from typing import Any, Protocol, runtime_checkable

import numpy as np

from normconf.adapters.compat import unmet


class Unsupported(Exception):
    """The framework has no way to express this call (a recorded outcome, never a pass)."""


class _Default:
    def __repr__(self):
        return "DEFAULT"


DEFAULT: Any = _Default()  # leave the argument to the framework's default

# How long one adapter call may take before its cell is a timeout (NORMCONF_CALL_TIMEOUT seconds).
MAX_CALL_TIMEOUT_S = 1e6  # about 11 days: past ~1e11 the interval timer overflows


def _call_timeout() -> tuple[float, str | None]:
    """(seconds, None), or the default and the problem (normconf/plugin.py makes it a usage error).
    Read when used, not at import: a process may set the variable after importing normconf."""
    raw = os.environ.get("NORMCONF_CALL_TIMEOUT", "120")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_CALL_TIMEOUT_S:  # NaN fails too
        return 120.0, (f"NORMCONF_CALL_TIMEOUT={raw!r}: expected a number of seconds above 0 "
                       f"and at most {MAX_CALL_TIMEOUT_S:g}")
    return seconds, None


def call_timeout_s() -> float:
    return _call_timeout()[0]


def call_timeout_problem() -> str | None:
    return _call_timeout()[1]


@runtime_checkable
class Adapter(Protocol):
    name: str
    # How the framework reads the number given as momentum: "weight_on_new" (running = (1-m) r + m b)
    # or "weight_on_old" (running = m r + (1-m) b).  native_momentum translates in this one place.
    momentum_form: str

    def availability(self) -> str | None:
        """None when usable, else why not (the import error)."""

    def versions(self) -> dict[str, str]: ...

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes) -> dict[str, np.ndarray]: ...

    def batch_norm_steps(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum) -> dict[str, np.ndarray]: ...

    def batch_norm_eval(self, x, feature_axis, running_mean, running_var, gamma, beta, eps) -> dict[str, np.ndarray]: ...

    def rms_norm(self, x, axes, weight, eps) -> dict[str, np.ndarray]: ...

    # GroupNorm and InstanceNorm: axis 0 is the batch, channel_axis any other; gamma/beta (C,) or None
    def group_norm(self, x, channel_axis, groups, gamma, beta, eps) -> dict[str, np.ndarray]: ...

    def instance_norm(self, x, channel_axis, gamma, beta, eps) -> dict[str, np.ndarray]: ...

    def instance_norm_steps(self, batches, x_eval, channel_axis, gamma, beta, eps, momentum) -> dict[str, np.ndarray]: ...



GRADIENT_OPS = ("layer_norm_grad", "batch_norm_grad", "rms_norm_grad")  # optional: see the module's docstring
FORWARD_OPS = ("layer_norm", "batch_norm_steps", "batch_norm_eval", "rms_norm", "group_norm", "instance_norm",
               "instance_norm_steps")
OPS = (*FORWARD_OPS, *GRADIENT_OPS)  # every operation an adapter may implement


def before_each_operation(cls, hook: str):
    """Make every operation `cls` has call self.<hook>() first: state that belongs to one call (a compiler
    reset, the graphs one call exported) is fresh for each, whichever operation a newer layer adds."""
    def wrapped(method):
        def run(self, *args, **kwargs):
            getattr(self, hook)()
            return method(self, *args, **kwargs)
        run.__name__, run.__doc__ = method.__name__, method.__doc__
        return run
    for op in OPS:
        if hasattr(cls, op):
            setattr(cls, op, wrapped(getattr(cls, op)))
    return cls
MOMENTUM_FORMS = ("weight_on_new", "weight_on_old")  # what native_momentum translates


def native_momentum(adapter: Adapter, momentum_pytorch_form):
    """Translate PyTorch-form momentum (weight on the new batch) into the adapter's own form."""
    if momentum_pytorch_form is None or momentum_pytorch_form is DEFAULT:
        return momentum_pytorch_form
    if adapter.momentum_form == "weight_on_new":
        return momentum_pytorch_form
    if adapter.momentum_form == "weight_on_old":
        return 1.0 - momentum_pytorch_form
    raise ValueError(f"adapter {adapter.name!r}: unknown momentum_form {adapter.momentum_form!r}")


class ImportingAdapter:
    """Shared plumbing: availability from importing `requires`, versions of those modules."""
    name = "unnamed"
    momentum_form = "weight_on_new"
    requires: tuple[str, ...] = ()
    execution_mode = "eager"  # op by op; the JAX adapters run "jit" (one compiled program per call)

    def availability(self) -> str | None:
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # an import can fail with more than ImportError
                return f"{module} not importable: {type(exc).__name__}: {exc}"
        return unmet(self.name)  # below a verified version floor: say what it needs

    def rms_norm(self, x, axes, weight, eps) -> dict[str, np.ndarray]:
        """Frameworks without an RMSNorm keep this: their RMSNorm cells are unsupported."""
        raise Unsupported(f"{self.name} has no RMSNorm")

    # The newer operations: a framework without the layer says so (each adapter overrides what it has).
    def group_norm(self, x, channel_axis, groups, gamma, beta, eps):
        raise Unsupported(f"{self.name} has no GroupNorm")

    def instance_norm(self, x, channel_axis, gamma, beta, eps):
        raise Unsupported(f"{self.name} has no InstanceNorm")

    def instance_norm_steps(self, batches, x_eval, channel_axis, gamma, beta, eps, momentum):
        raise Unsupported(f"{self.name} has no InstanceNorm with running statistics")

    def versions(self) -> dict[str, str]:
        """From package metadata: no framework import needed to say what is installed."""
        out = {"python": platform.python_version(), "numpy": np.__version__}
        out.update({module: installed_version(module) for module in self.requires})
        return out


@functools.lru_cache(maxsize=1)
def _distributions_of_modules() -> dict:
    """Read once per process: it scans every installed distribution (about 0.25 s here)."""
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=None)
def installed_version(module: str) -> str:
    dists = _distributions_of_modules().get(module, [module])
    for dist in dists:
        try:
            return f"{importlib.metadata.version(dist)}" + ("" if dist == module else f" ({dist})")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def given(**kwargs) -> dict:
    """The keyword arguments that are not DEFAULT: a default probe omits the argument altogether."""
    return {k: v for k, v in kwargs.items() if v is not DEFAULT}


def trailing(axes, ndim: int) -> bool:
    """True when `axes` are exactly the last len(axes) dimensions (PyTorch's normalized_shape)."""
    norm = sorted(a % ndim for a in axes)
    return norm == list(range(ndim - len(norm), ndim))


def trajectory(steps, y_eval) -> dict[str, np.ndarray]:
    """batch_norm_steps' outputs from one (y, running_mean, running_var) triple per training step."""
    ys, means, vars_ = zip(*steps)
    return {"y_train": steps_output(ys), "running_mean": np.stack(means), "running_var": np.stack(vars_),
            "y_eval": y_eval}


def steps_output(ys) -> np.ndarray | list:
    """y_train: stacked, (K, *shape), when every step has one shape, else one array per step in a list
    (batch sizes that change from step to step: golden/ragged.py)."""
    return np.stack(ys) if len({np.shape(y) for y in ys}) <= 1 else list(ys)

def float_dtype_name(array) -> str:
    return str(np.asarray(array).dtype)


def layer_class(module, name: str):
    """`module.name`, or Unsupported naming the version that lacks it (flax 0.10.4's nnx has no
    InstanceNorm: an older release without a layer is a fact about it, not an error in every cell)."""
    if not hasattr(module, name):
        package = module.__name__.split(".")[0]
        raise Unsupported(f"{module.__name__}.{name} does not exist in {package} {installed_version(package)}")
    return getattr(module, name)
