"""Batches whose size changes from step to step (issue 21): a BatchNorm case with `batch_sizes` trains on
one batch per step, step k's batch axis holding batch_sizes[k] values.  The batch axis is the first axis
that is not the feature axis; every other axis keeps the case's shape (x_eval has the case's shape).

A fixture stores the K batches as ONE input `x`, concatenated along the batch axis, and the expected
y_train the same way, so the file format and every one-shape fixture stay byte for byte as they were.
An adapter hands y_train back per step (a list of arrays: they cannot be stacked); `steps_form` joins it
into the stored form before anything is compared.  A one-shape case keeps y_train stacked, (K, *shape).
"""
from __future__ import annotations

import numpy as np


def batch_axis(shape, feature_axis: int) -> int:
    """The axis whose length changes from step to step: the first one that is not the feature axis."""
    return 1 if feature_axis % len(shape) == 0 else 0


def step_shapes(case) -> list[tuple[int, ...]]:
    """Each training step's batch shape."""
    if not case.batch_sizes:
        return [tuple(case.shape)] * case.steps
    a = batch_axis(case.shape, case.axes[0])
    return [tuple(n if i == a else s for i, s in enumerate(case.shape)) for n in case.batch_sizes]


def joined_shape(case) -> tuple[int, ...]:
    """The shape x and y_train are stored in: (K, *shape), or the batches joined along the batch axis."""
    if not case.batch_sizes:
        return (case.steps, *case.shape)
    a = batch_axis(case.shape, case.axes[0])
    return tuple(sum(case.batch_sizes) if i == a else s for i, s in enumerate(case.shape))


def split_steps(x, case) -> list[np.ndarray]:
    """The stored x as the list of batches an adapter is handed, one per step."""
    if not case.batch_sizes:
        return list(x)
    return np.split(x, np.cumsum(case.batch_sizes)[:-1], axis=batch_axis(case.shape, case.axes[0]))


def join_steps(steps, case) -> np.ndarray:
    """Per-step arrays in the stored form (the inverse of split_steps)."""
    if not case.batch_sizes:
        return np.stack(steps)
    return np.concatenate(steps, axis=batch_axis(case.shape, case.axes[0]))


def steps_form(outputs: dict, case) -> tuple[dict, str | None]:
    """(outputs with y_train in the stored form, None), or (outputs, why y_train cannot be read).  A
    one-shape case takes y_train stacked or as a list of equal arrays (a plug-in may do either)."""
    y = outputs.get("y_train")
    if case.layer != "batch_norm" or not isinstance(y, (list, tuple)):
        if case.layer == "batch_norm" and case.batch_sizes and y is not None:
            return outputs, (f"output 'y_train' of ragged case {case.name!r} must be a list of one array per "
                             f"step (batch sizes {list(case.batch_sizes)}), got {type(y).__name__}")
        return outputs, None
    shapes = [np.shape(s) for s in y]
    if shapes != step_shapes(case):
        return outputs, f"output 'y_train' has step shapes {shapes}, expected {step_shapes(case)}"
    return {**outputs, "y_train": join_steps([np.asarray(s) for s in y], case)}, None

