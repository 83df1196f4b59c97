"""Gradient fixtures (issue 23): per case of golden/gradient_cases.py, the inputs, the fixed cotangent dy,
and the expected y, dx, dgamma, dbeta of the documented formula (golden/gradients.py, float64), with each
output's tolerance and scale floor (golden/tolerance.py) and the proof that the case decides what it
declares (every competing variant at least DECISIVENESS_MARGIN tolerances away).

They live in golden/data/gradients/ with a manifest of their own (SHA-256 and size per file), so the
forward fixtures and their manifest are untouched.  Loading never unpickles.
"""
from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from normconf.golden import gradients as G
from normconf.golden import npzio
from normconf.golden import reference as ref
from normconf.golden.fixtures import FixtureError, golden_dir, sha256
from normconf.golden.generate import CASTS
from normconf.golden.gradient_cases import COTANGENT_MEAN, GRADIENT_CASES, GRADIENT_CONVENTIONS, GradCase
from normconf.golden.tolerance import DECISIVENESS_MARGIN, gradient_floors, gradient_tolerances, tolerances

SUBDIR = "gradients"
MANIFEST = "manifest.json"
OUTPUTS = ("y", "dx", "dgamma", "dbeta")
SCHEMA_VERSION = 1


def gradient_dir(directory: Path | None = None) -> Path:
    return Path(directory or golden_dir()) / SUBDIR


def make_inputs(case: GradCase, draw: int = 0) -> dict[str, np.ndarray]:
    """Draw 0 is the committed fixture's; others are re-draws (the re-draw study, tests/self)."""
    rng = case.rng() if draw == 0 else np.random.default_rng([zlib.crc32(case.name.encode()), draw])
    cast = CASTS[case.dtype]
    out = {"x": cast(case.loc + case.scale * rng.standard_normal(case.shape))}
    gamma = rng.uniform(0.5, 2.0, case.param_shape)
    if case.gamma == "mixed":
        gamma = gamma * rng.choice((-1.0, 1.0), case.param_shape)
    if case.layer == "rms_norm":  # one parameter, the weight
        out["weight"] = cast(gamma)
    else:
        out["gamma"] = cast(gamma)
        out["beta"] = cast(rng.normal(0.0, 1.0, case.param_shape))
    if case.layer == "batch_norm_eval":  # far from the batch's own statistics, so the two backwards differ
        c = case.param_shape[0]
        out["running_mean"] = cast(case.loc + case.scale * rng.uniform(1.0, 2.0, c))
        out["running_var"] = cast(case.scale ** 2 * rng.uniform(2.0, 4.0, c))
    out["dy"] = cast(COTANGENT_MEAN + rng.standard_normal(case.shape))
    return out


@dataclass
class Backward:
    """One variant's float64 outputs, and what the tolerance floors are measured from."""
    outputs: dict[str, np.ndarray]
    xhat: np.ndarray
    inv_std: np.ndarray
    gamma_b: np.ndarray
    param_axes: tuple[int, ...]


def _f64(inputs, key):
    return np.asarray(inputs[key], np.float64)


def _layer_norm(case, inputs, v) -> Backward:
    x, dy = _f64(inputs, "x"), _f64(inputs, "dy")
    axes = ref.normalize_axes(case.axes, x.ndim)
    shape = ref.affine_shape(x.shape, axes, "per_element")
    gamma_b, beta_b = _f64(inputs, "gamma").reshape(shape), _f64(inputs, "beta").reshape(shape)
    forms = {"norm_variance": v["norm_variance"], "eps_placement": v["eps_placement"]}
    fwd = ref.layer_norm(x, axes, gamma_b, beta_b, case.eps, **forms)
    dx, xhat = G.normalized_backward(x, axes, dy, gamma_b, case.eps, **forms,
                                     through_statistics=v["statistics_gradient"] != "constant_statistics")
    param_axes = tuple(i for i in range(x.ndim) if i not in axes)
    outputs = {"y": fwd.y, "dx": dx, "dgamma": (dy * xhat).sum(axis=param_axes),
               "dbeta": dy.sum(axis=param_axes)}
    return Backward(outputs, xhat, fwd.inv_std, gamma_b, param_axes)


def _batch_norm(case, inputs, v) -> Backward:
    x, dy = _f64(inputs, "x"), _f64(inputs, "dy")
    fa = case.feature_axis
    axes = ref.batch_axes(x.ndim, fa)
    cshape = ref.channel_shape(x.ndim, fa, x.shape[fa])
    gamma, beta = _f64(inputs, "gamma"), _f64(inputs, "beta")
    eps_placement = v.get("eps_placement", "inside_sqrt")
    if v.get("eval_gradient") == "running_constant":
        rm, rv = _f64(inputs, "running_mean"), _f64(inputs, "running_var")
        fwd = ref.batch_norm_eval(x, fa, rm, rv, gamma, beta, case.eps, eps_placement=eps_placement)
        grads = G.batch_norm_eval_backward(x, fa, rm, rv, dy, gamma, beta, case.eps, eps_placement=eps_placement)
    else:  # training, or eval computed as if training (the batch's statistics)
        forms = {"norm_variance": v.get("norm_variance", "biased"), "eps_placement": eps_placement}
        fwd = ref.batch_norm_train(x, fa, gamma, beta, case.eps, **forms)
        grads = G.batch_norm_train_backward(x, fa, dy, gamma, beta, case.eps, **forms,
                                            through_statistics=v.get("statistics_gradient") != "constant_statistics")
    xhat = (x - np.broadcast_to(fwd.mean, cshape)) * fwd.inv_std
    outputs = {"y": fwd.y, "dx": grads.dx, "dgamma": grads.dgamma, "dbeta": grads.dbeta}
    return Backward(outputs, xhat, fwd.inv_std, gamma.reshape(cshape), axes)


def _rms_norm(case, inputs, v) -> Backward:
    x, dy = _f64(inputs, "x"), _f64(inputs, "dy")
    axes = ref.normalize_axes(case.axes, x.ndim)
    weight = _f64(inputs, "weight")
    forms = {"eps_placement": v["eps_placement"], "rms_weight_form": v["rms_weight_form"]}
    fwd = ref.rms_norm(x, axes, weight, case.eps, **forms)
    grads = G.rms_norm_backward(x, axes, dy, weight, case.eps, **forms)
    param_axes = tuple(i for i in range(x.ndim) if i not in axes)
    w_eff = ref.rms_weight(weight, v["rms_weight_form"])
    return Backward({"y": fwd.y, "dx": grads.dx, "dweight": grads.dgamma}, x * fwd.inv_std, fwd.inv_std, w_eff,
                    param_axes)


# layer -> its float64 backward, given the variant of each of its gradient conventions; a new layer's
# gradient is one more entry (and its conventions in gradient_cases.GRADIENT_LAYERS)
BACKWARD = {"layer_norm": _layer_norm, "batch_norm": _batch_norm, "batch_norm_eval": _batch_norm,
            "rms_norm": _rms_norm}
# the outputs a layer's gradient cell returns (RMSNorm has one parameter, its weight)
LAYER_OUTPUTS = {"rms_norm": ("y", "dx", "dweight")}


def outputs_of(layer: str) -> tuple[str, ...]:
    return LAYER_OUTPUTS.get(layer, OUTPUTS)


def documented_variant(case: GradCase, convention: str) -> str:
    return GRADIENT_CONVENTIONS[convention][0]


def backward(case: GradCase, inputs, variants: dict[str, str] | None = None) -> Backward:
    """The outputs under the documented variant of each of the layer's conventions, or those given."""
    from normconf.golden.gradient_cases import GRADIENT_LAYERS
    chosen = {c: documented_variant(case, c) for c in GRADIENT_LAYERS[case.layer]}
    chosen.update(variants or {})
    return BACKWARD[case.layer](case, inputs, chosen)


def conditioning(case: GradCase, inputs) -> float:
    """max |mean| / sqrt(var + eps) over the groups the statistics are taken over (the forward's)."""
    x = _f64(inputs, "x")
    if case.layer == "rms_norm":  # nothing is subtracted: no cancellation for an offset to cause
        return 0.0
    axes = ref.normalize_axes(case.axes, x.ndim) if case.layer == "layer_norm" else ref.batch_axes(x.ndim, case.feature_axis)
    worst = float(np.max(np.abs(x.mean(axis=axes)) / np.sqrt(x.var(axis=axes) + case.eps)))
    if case.layer == "batch_norm_eval":
        rm, rv = _f64(inputs, "running_mean"), _f64(inputs, "running_var")
        worst = max(worst, float(np.max(np.abs(rm) / np.sqrt(rv + case.eps))))
    return worst


@dataclass
class GradFixture:
    case: GradCase
    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    tolerances: dict[str, float]
    floors: dict[str, float]
    conditioning: float
    margins: dict[str, float]        # shown convention -> the nearest competing variant's gradients, in tolerances
    path: str = ""


def distance(a: dict, b: dict, tols: dict, floors: dict) -> float:
    """max over the outputs of scaled error / tolerance (golden/tolerance.py scaled_error)."""
    from normconf.golden.tolerance import scaled_error
    return max(scaled_error(a[k], b[k], floors[k]) / tols[k] for k in tols)


def case_tolerances(case: GradCase, dtype: str, conditioning: float) -> dict[str, float]:
    """Output name -> tolerance for the case computed in `dtype` (its own, or float32 to name a precision)."""
    grads = gradient_tolerances(dtype, case.reduction_size, case.param_reduction_size, conditioning)
    return {"y": tolerances(dtype, case.reduction_size, conditioning, layer="layer_norm")["y"],
            **_renamed(case, grads)}


def _renamed(case: GradCase, per_output: dict) -> dict:
    """dx, dgamma, dbeta -> the layer's own outputs (RMSNorm: dx, and dweight, whose sum is dgamma's)."""
    if case.layer != "rms_norm":
        return per_output
    return {"dx": per_output["dx"], "dweight": per_output["dgamma"]}


def build(case: GradCase, draw: int = 0) -> GradFixture:
    """The fixture, with the proof that it decides what it shows; `draw` > 0: a re-draw of its inputs."""
    inputs = make_inputs(case, draw)
    cond = conditioning(case, inputs)
    truth = backward(case, inputs)
    tols = case_tolerances(case, case.dtype, cond)
    floors = {"y": float(np.max(np.abs(truth.gamma_b))),
              **_renamed(case, gradient_floors(_f64(inputs, "dy"), truth.xhat, truth.inv_std, truth.gamma_b,
                                               truth.param_axes))}
    margins = {}
    grads = {k: v for k, v in tols.items() if k != "y"}  # what identification reads (judge/gradients.py)
    for convention in case.shows:
        margin = min(distance(backward(case, inputs, {convention: v}).outputs, truth.outputs, grads, floors)
                     for v in GRADIENT_CONVENTIONS[convention][1:])
        if margin < DECISIVENESS_MARGIN:
            raise ValueError(f"gradient case {case.name!r}: {convention} is not decisive: a competing variant is "
                             f"only {margin:.3g} tolerances away (need >= {DECISIVENESS_MARGIN:g})")
        margins[convention] = margin
    return GradFixture(case, inputs, truth.outputs, tols, floors, cond, margins)


def to_bytes(fx: GradFixture) -> bytes:
    arrays = {**fx.inputs, **{f"expected.{k}": v for k, v in fx.expected.items()}}
    arrays["meta"] = npzio.json_array({"schema_version": SCHEMA_VERSION, "case": dataclasses.asdict(fx.case),
                                       "tolerances": fx.tolerances, "floors": fx.floors,
                                       "conditioning": fx.conditioning, "margins": fx.margins})
    return npzio.dumps(arrays)


def parse(data: bytes, path) -> GradFixture:
    try:
        arrays = npzio.loads(data)
        meta = npzio.from_json_array(arrays.pop("meta"))
    except Exception as exc:  # corrupt bytes raise many kinds; one line naming the file
        raise FixtureError(path, f"not a readable gradient fixture ({type(exc).__name__}: {exc})") from None
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise FixtureError(path, f"gradient schema version {meta.get('schema_version')!r}, this normconf reads "
                                 f"{SCHEMA_VERSION}: regenerate fixtures")
    spec = dict(meta["case"])
    for key in ("shape", "axes", "shows"):
        spec[key] = tuple(spec[key])
    expected = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("expected.")}
    case = GradCase(**spec)
    if set(expected) != set(outputs_of(case.layer)):
        raise FixtureError(path, f"expected outputs {sorted(expected)}, not {list(outputs_of(case.layer))}")
    inputs = {k: v for k, v in arrays.items() if not k.startswith("expected.")}
    return GradFixture(case, inputs, expected, meta["tolerances"], meta["floors"],
                       meta["conditioning"], meta["margins"], str(path))


def file_name(name: str) -> str:
    return f"{name}.npz"


def load_case(name: str, directory: Path | None = None) -> GradFixture:
    """By case name, checked against the gradient manifest."""
    folder = gradient_dir(directory)
    path = folder / file_name(name)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise FixtureError(folder / MANIFEST, f"gradient manifest unreadable ({exc}): run `normconf golden generate`") from None
    if path.name not in manifest:
        raise FixtureError(path, "not listed in the gradient manifest")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FixtureError(path, f"cannot read ({exc.strerror or exc})") from None
    if sha256(data) != manifest[path.name]:
        raise FixtureError(path, "SHA-256 differs from the gradient manifest (tampered or stale fixture)")
    return parse(data, path)


def build_all() -> dict[str, bytes]:
    return {file_name(name): to_bytes(build(case)) for name, case in GRADIENT_CASES.items()}


def manifest_text(files: dict[str, bytes]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, "files": {f: sha256(d) for f, d in sorted(files.items())},
                       "sizes": {f: len(d) for f, d in sorted(files.items())}}, indent=1, sort_keys=True) + "\n"


def generate(directory: Path | None = None) -> dict[str, bytes]:
    folder = gradient_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    built = build_all()
    for stale in {p.name for p in folder.glob("*.npz")} - set(built):
        (folder / stale).unlink()
    for fname, data in built.items():
        (folder / fname).write_bytes(data)
    (folder / MANIFEST).write_text(manifest_text(built))
    return built


def problems(directory: Path | None = None, rtol: float = 1e-12) -> list[str]:
    """What differs on disk from a fresh build (missing, extra, hash, values beyond rtol of the scale)."""
    folder = gradient_dir(directory)
    built = build_all()
    out = []
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return [f"{folder / MANIFEST}: unreadable ({exc}): run `normconf golden generate`"]
    on_disk = {p.name for p in folder.glob("*.npz")}
    out += [f"{folder / f}: extra file, no case in golden/gradient_cases.py produces it" for f in sorted(on_disk - set(built))]
    for fname, data in sorted(built.items()):
        path = folder / fname
        if fname not in on_disk:
            out.append(f"{path}: missing (run `normconf golden generate`)")
            continue
        disk = path.read_bytes()
        if manifest.get("files", {}).get(fname) != sha256(disk):
            out.append(f"{path}: hash mismatch with {MANIFEST}")
        if disk != data:
            a, b = parse(disk, path), parse(data, path)
            changed = [k for k in sorted({*a.inputs, *b.inputs}) if not _same(a.inputs.get(k), b.inputs.get(k), 0.0)]
            changed += [f"expected.{k}" for k in outputs_of(a.case.layer) if not _same(a.expected[k], b.expected[k], rtol)]
            if changed:
                out.append(f"{path}: changed values in {', '.join(changed)}")
    return out


def _same(a, b, rtol) -> bool:
    if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.astype(np.float64), b.astype(np.float64)
    return bool(np.all(np.abs(a - b) <= rtol * max(1.0, float(np.abs(a).max(initial=0.0)))))
