"""Numbers measured from an adapter's outputs, each with its uncertainty: a default eps or momentum the
layer was not given, the factor its running variance is fed, and the non-finite values it returned.

An estimate is named when a short decimal (one or two significant digits) lies within three
uncertainties of it, so a value nobody listed (eps 2e-5, momentum 1.0) is a finding, not a crash.
Uncertainties are bounds propagated from the tolerance (an output may be off by `tol` times its scale
max(max|output|, floor), golden/tolerance.py) or the spread over channels or groups, whichever is larger.

A default is reported as a number only when it lies in its parameter's domain (a momentum in [0, 1],
an eps above 0) and above the probe's resolution; otherwise the record says in words what was seen,
holds no number, and its state is "unclear" (`default_measurement`).  Where the probe's output does not
show a convention the estimate depends on, the estimate under each variant still possible is kept
(`alternatives`) and the uncertainty covers them all until the run's other cases tell (reports/matrix.py).
"""
from __future__ import annotations

import math

import numpy as np

FLOAT32_STORAGE = 2.0 ** -23  # a default held as a float32 attribute is off by up to this, relatively


def measurement(value, uncertainty, name: str | None) -> dict:
    """A measured number as the cell record holds it (built-in types only; None where not finite)."""
    value, uncertainty = float(value), float(uncertainty)
    finite = math.isfinite(value)
    shown = f"{value:.4g} ± {uncertainty:.1g}" if finite else "not measurable"
    return {"value": value if finite else None, "uncertainty": uncertainty if math.isfinite(uncertainty) else None,
            "name": name, "display": name if name and not finite else f"{name} ({shown})" if name else shown}


def default_measurement(key: str, value: float, uncertainty: float) -> dict:
    """A measured default as the cell holds it: `measurement` with state "named" when the number lies in
    its parameter's domain and above the probe's resolution, else words only, state "unclear"."""
    words = outside_domain(key, value, uncertainty)
    if words:
        return {"value": None, "uncertainty": None, "name": None, "display": words, "state": "unclear"}
    if key == "default_momentum":  # within 3 uncertainties of [0, 1]: the nearest value inside it
        value = min(max(value, 0.0), 1.0)
    return {**measurement(value, uncertainty, short_decimal(value, uncertainty)), "state": "named"}


def outside_domain(key: str, value: float, uncertainty: float) -> str | None:
    """What was seen, in words, when an estimate is no usable value of its parameter (None when it is)."""
    if not (math.isfinite(value) and math.isfinite(uncertainty)):
        return "not measurable: the outputs give no finite estimate"
    band = 3 * uncertainty
    if key == "default_eps":
        if value < -band:
            return "not an eps: the outputs are larger than dividing by the batch variance gives (a negative estimate)"
        if value <= band:
            return f"eps below {max(value, 0.0) + band:.0e}, the resolution of this probe"
    if key == "default_momentum" and not -band <= value <= 1 + band:
        return "the running-mean update is not an exponential average of the batch means"
    return None


def covering(readings: list[dict]) -> tuple[float, float]:
    """One value and uncertainty whose 3-uncertainty band covers every reading's own band."""
    low = min(r["value"] - 3 * r["uncertainty"] for r in readings)
    high = max(r["value"] + 3 * r["uncertainty"] for r in readings)
    return (low + high) / 2, (high - low) / 6


def given_text(readings: list[dict]) -> str:
    """"norm_variance biased / unbiased": the variants the readings were measured under."""
    conventions = dict.fromkeys(c for r in readings for c in r["given"])
    return ", ".join(f"{c} {' / '.join(dict.fromkeys(r['given'][c] for r in readings))}" for c in conventions)


def short_decimal(value: float, uncertainty: float) -> str | None:
    """The shortest decimal with one or two significant digits within 3 uncertainties, as `%g`."""
    if not math.isfinite(value):
        return None
    for digits in (1, 2):
        candidate = float(f"{value:.{digits - 1}e}")
        if abs(value - candidate) <= 3 * uncertainty + abs(candidate) * FLOAT32_STORAGE:
            return f"{candidate:g}"
    return None


def agrees(measured: dict, documented: float) -> bool:
    """A documented number is consistent with the measurement (3 uncertainties, float32 storage)."""
    if measured["value"] is None or measured["uncertainty"] is None:
        return False
    return abs(measured["value"] - documented) <= 3 * measured["uncertainty"] + abs(documented) * FLOAT32_STORAGE


# ------------------------------------------------------------------------------------------------ eps

def estimate_eps(x, y, centre, var, eps_placement: str, gamma, beta, tol: float, floor: float) -> tuple[float, float]:
    """eps from an output normalized with known statistics: per group, (x - centre) has mean square S
    and the un-affined output z = (y - beta) / gamma has mean square Z = S / (var + eps) (eps inside
    the square root) or S / (sqrt(var) + eps)^2 (added to the std).  Groups are the axes the
    statistics broadcast over."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    z = y if beta is None else y - beta
    z = z if gamma is None else z / gamma
    axes = tuple(a for a in range(x.ndim) if np.shape(centre)[a] == 1)
    s = np.mean((x - centre) ** 2, axis=axes, keepdims=True)
    zz = np.mean(z ** 2, axis=axes, keepdims=True)
    ok = (zz > 0) & (s > 0) & np.isfinite(zz)
    if not ok.any():
        return math.nan, math.inf
    ratio = (s / np.where(ok, zz, 1.0))[ok]
    var = np.broadcast_to(var, ok.shape)[ok]
    # |dz| <= tol * scale per element, so Z is off by up to 2 tol scale / rms(z), relatively
    rel = 2 * tol * max(floor, float(np.nanmax(np.abs(y)))) / np.sqrt(zz[ok])
    if eps_placement == "inside_sqrt":
        per_group, spread = ratio - var, ratio * rel
    else:
        per_group, spread = np.sqrt(ratio) - np.sqrt(var), 0.5 * np.sqrt(ratio) * rel
    value = float(np.mean(per_group))
    scatter = float(np.std(per_group) / math.sqrt(len(per_group))) if len(per_group) > 1 else 0.0
    return value, max(float(np.max(spread)), scatter)


# ------------------------------------------------------------------------------------------- momentum

def estimate_weight(batch_means, running_means, initial_running_stats: str, tol: float,
                    floor: float) -> tuple[float, float]:
    """The weight on the new batch from the first running-mean updates (least squares over channels):
    zero_one start:  r1 = w m1;  zero_debiased:  r2 = ((1 - w) m1 + m2) / (2 - w), so
    w (m1 - r2) = m1 + m2 - 2 r2 (the first debiased step is the batch itself, whatever w is)."""
    m = np.asarray(batch_means, np.float64)
    r = np.asarray(running_means, np.float64)
    if initial_running_stats == "zero_one":
        a, b = r[0], m[0]
    elif len(m) >= 2:
        a, b = m[0] + m[1] - 2 * r[1], m[0] - r[1]
    else:
        return math.nan, math.inf
    norm = float(np.sum(b * b))
    if norm == 0 or not np.isfinite(a).all():
        return math.nan, math.inf
    w = float(np.sum(a * b) / norm)
    scale = max(floor, float(np.max(np.abs(r))))
    bound = 3 * tol * scale * float(np.sum(np.abs(b))) / norm  # |dr| <= tol * scale enters a up to twice
    scatter = float(np.std(a / np.where(b == 0, np.nan, b)) / math.sqrt(len(b))) if len(b) > 1 else 0.0
    return w, max(bound, 0.0 if math.isnan(scatter) else scatter)


# --------------------------------------------------------------------------- running-variance factor

def estimate_factor(observed, alpha, beta, tol: float, floor: float) -> tuple[float, float]:
    """The running variance is linear in the factor f its batch variances are fed with (f = 1 biased,
    N/(N-1) unbiased): observed = alpha + f beta, alpha and beta from the reference trajectory."""
    obs, alpha, beta = (np.asarray(v, np.float64) for v in (observed, alpha, beta))
    ok = np.isfinite(obs) & np.isfinite(alpha) & np.isfinite(beta)
    norm = float(np.sum(beta[ok] ** 2))
    if norm == 0:
        return math.nan, math.inf
    f = float(np.sum((obs[ok] - alpha[ok]) * beta[ok]) / norm)
    scale = max(floor, float(np.max(np.abs(obs[ok]), initial=0.0)))
    return f, tol * scale * float(np.sum(np.abs(beta[ok]))) / norm


def factor_name(value: float, uncertainty: float, n: int) -> str | None:
    """1 is the biased variance, N/(N-1) the unbiased one; anything else is reported as a number."""
    probe = {"value": value if math.isfinite(value) else None, "uncertainty": uncertainty}
    for factor, name in ((1.0, "1 (biased)"), (n / (n - 1) if n > 1 else math.inf, "N/(N-1) (unbiased)")):
        if math.isfinite(factor) and agrees(probe, factor):
            return name
    return None


# ---------------------------------------------------------------------------------------- non-finite

def nonfinite(outputs: dict, expected: dict) -> dict[str, dict]:
    """Per output with any NaN or inf: counts in the adapter's output, and how many of them the
    formula itself gives (0/0 where it divides by N - 1 = 0): those are agreement, the rest are not."""
    out = {}
    for name, exp in expected.items():
        a = np.asarray(outputs[name], np.float64)
        e = np.asarray(exp, np.float64)
        bad = ~np.isfinite(a)
        if not bad.any():
            continue
        unexpected = bad & np.isfinite(e) if e.shape == a.shape else bad
        out[name] = {"nan": int(np.isnan(a).sum()), "inf": int(np.isinf(a).sum()), "size": int(a.size),
                     "unexpected": int(unexpected.sum())}
    return out


def nonfinite_text(name: str, counts: dict) -> str:
    """"y_train: 24 NaN of 96" (inf likewise)."""
    parts = [f"{counts['nan']} NaN"] * bool(counts["nan"]) + [f"{counts['inf']} inf"] * bool(counts["inf"])
    return f"{name}: {' and '.join(parts)} of {counts['size']}"
