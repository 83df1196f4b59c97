"""What a convention that no argument reconciles costs, measured on case inputs for the porting guide:
the float64 reference (golden/reference.py, through golden/candidates.py) trained on a case's batches
under each side's variant, everything else the reference profile, and the largest absolute difference
of the running statistics and the eval outputs after the case's training steps.
"""
from __future__ import annotations

import functools

import numpy as np

from normconf.golden import candidates as cand
from normconf.golden import fixtures
from normconf.golden.cases import CASES
from normconf.golden.reference import CONVENTIONS, LAYER_CONVENTIONS

# an ordinary BatchNorm2d case and BatchNorm1d/2d ones at mean offset 1e3 x std, where running statistics matter most
COST_CASES = ("bn2d_nchw", "stress_bn_offset_1e3", "stress_bn_offset_1e3_nchw")
OUTPUTS = ("running_mean", "running_var", "y_eval")


def drift(case_name: str, convention: str, variant_a: str, variant_b: str) -> dict[str, float]:
    """Largest |difference| per output between the two variants' float64 reference runs of one case."""
    fx = fixtures.load_case(case_name)
    case = fx.case
    runs = cand.for_case(case, fx.inputs, eps=case.eps, momentum=case.momentum)
    a, b = (runs.outputs(cand.base_profile(case.layer, {convention: v})) for v in (variant_a, variant_b))
    return {o: float(np.max(np.abs(a[o] - b[o]))) for o in OUTPUTS}


@functools.lru_cache(maxsize=None)
def cost_text(convention: str, variant_a: str, variant_b: str) -> str | None:
    """"Measured cost ...: bn2d_nchw (3 steps): running_var 0.012, y_eval 0.0089; ..." or None where
    the convention is no BatchNorm training convention, the variants are not its, or no fixture loads."""
    if convention not in LAYER_CONVENTIONS["batch_norm"] or not {variant_a, variant_b} <= set(CONVENTIONS[convention]):
        return None
    parts = []
    for name in COST_CASES:
        try:
            found = drift(name, convention, variant_a, variant_b)
        except fixtures.FixtureError:
            return None
        shown = ", ".join(f"{o} {d:.2g}" for o, d in found.items() if d > 0) or "none"
        parts.append(f"{name} ({CASES[name].steps} steps): {shown}")
    return (f"Measured cost ({variant_a} vs {variant_b}, float64 reference trained from the same start on the case "
            f"inputs, largest absolute difference): " + "; ".join(parts))
