"""Compare an adapter's outputs with every variant of a fixture and name the one within tolerance."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from golden.tolerance import error_measures, scaled_error

NO_MATCH = "matches no variant"


@dataclass
class Observation:
    variants: list[dict[str, str]]
    errors: list[float]                  # scaled error against each variant (worst output)
    worst_output: list[str]              # which output decided that error
    tolerance: float

    @property
    def matched(self) -> int | None:
        within = [i for i, e in enumerate(self.errors) if e <= self.tolerance]
        return within[0] if len(within) == 1 else None

    @property
    def nearest(self) -> int:
        return int(np.argmin(self.errors))

    def observed(self) -> dict[str, str]:
        """convention -> observed variant, or NO_MATCH (nearest named) for every convention."""
        i = self.matched
        if i is not None:
            return dict(self.variants[i])
        near = self.variants[self.nearest]
        return {c: f"{NO_MATCH} (nearest {v}, {self.errors[self.nearest] / self.tolerance:.3g}x tolerance)"
                for c, v in near.items()}


def observe(fixture, outputs: dict[str, np.ndarray]) -> Observation:
    errors, worst = [], []
    for expected in fixture.expected:
        per = {k: scaled_error(outputs[k], expected[k]) for k in expected}
        key = max(per, key=per.get)
        errors.append(per[key])
        worst.append(key)
    return Observation(fixture.variants, errors, worst, fixture.tolerance)


def measures(outputs, expected: dict[str, np.ndarray], out_dtype: str) -> dict[str, float]:
    """Worst max-abs, max-rel and ULP errors over the outputs of one variant."""
    agg = {"max_abs": 0.0, "max_rel": 0.0, "max_ulp": 0.0}
    for k, e in expected.items():
        m = error_measures(outputs[k], e, out_dtype)
        agg = {name: max(agg[name], m[name]) for name in agg}
    return {k: (v if math.isfinite(v) else float("inf")) for k, v in agg.items()}


def check_outputs(outputs, fixture) -> str | None:
    """Why the outputs cannot be compared (missing, wrong shape or dtype), or None."""
    in_dtype = str(fixture.inputs["x"].dtype)
    for name in fixture.expected[0]:
        if name not in outputs:
            return f"output {name!r} missing"
        got = np.asarray(outputs[name])
        shapes = {variant[name].shape for variant in fixture.expected}  # variants may differ (feature axis)
        if got.shape not in shapes:
            return f"output {name!r} has shape {got.shape}, expected {' or '.join(map(str, sorted(shapes)))}"
        if name.startswith("y") and str(got.dtype) != in_dtype:
            return f"output {name!r} has dtype {got.dtype}, input was {in_dtype}"
        if got.dtype.kind != "f" and str(got.dtype) != "bfloat16":
            return f"output {name!r} has non-float dtype {got.dtype}"
    return None
