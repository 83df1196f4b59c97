"""The analytic float64 gradients (golden/gradients.py) against two independent derivations: central finite
differences of golden/reference.py's forward (agreement limited by the difference step: about 1e-9
relative), and autograd of the documented formula written again in torch ops, float64 (float64 noise)."""
import importlib.util

import numpy as np
import pytest

from normconf.golden import gradients as G
from normconf.golden import reference as ref

VARIANTS = [dict(norm_variance=v, eps_placement=e) for v in ("biased", "unbiased") for e in ("inside_sqrt", "added_to_std")]


def _directional(forward, x, g, v, h=1e-6):
    """d/dt sum(g * forward(x + t v)) at t = 0, by central differences."""
    return (np.sum(g * forward(x + h * v)) - np.sum(g * forward(x - h * v))) / (2 * h)


def _case(shape, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(offset, 1.5, shape), rng.normal(size=shape), rng.normal(size=shape)


def _close(analytic, numeric, scale):
    return abs(analytic - numeric) <= 1e-7 * scale


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['norm_variance']}-{v['eps_placement']}")
@pytest.mark.parametrize("axes", [(-1,), (1, 3), (0, 2)])
def test_layer_norm_dx_and_affine_match_finite_differences(variant, axes):
    x, g, v = _case((3, 4, 5, 6), 1)
    shape = ref.affine_shape(x.shape, axes, "per_element")
    rng = np.random.default_rng(2)
    gamma, beta = rng.normal(size=shape), rng.normal(size=shape)
    grads = G.layer_norm_backward(x, axes, g, gamma, beta, 1e-3, **variant)

    def fwd(xx, gm=gamma, bt=beta):
        return ref.layer_norm(xx, axes, gm, bt, 1e-3, **variant).y
    scale = np.abs(g).sum()
    assert _close(np.sum(grads.dx * v), _directional(fwd, x, g, v), scale)
    dg, db = rng.normal(size=shape), rng.normal(size=shape)
    assert _close(np.sum(grads.dgamma * dg), _directional(lambda t: fwd(x, gamma + t), 0.0 * dg, g, dg), scale)
    assert _close(np.sum(grads.dbeta * db), _directional(lambda t: fwd(x, gamma, beta + t), 0.0 * db, g, db), scale)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['norm_variance']}-{v['eps_placement']}")
@pytest.mark.parametrize("shape,feature_axis", [((8, 3), 1), ((4, 3, 2, 5), 1), ((4, 2, 5, 3), -1)])
def test_batch_norm_training_dx_flows_through_the_batch_statistics(variant, shape, feature_axis):
    x, g, v = _case(shape, 3, offset=2.0)
    c = shape[feature_axis]
    rng = np.random.default_rng(4)
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    grads = G.batch_norm_train_backward(x, feature_axis, g, gamma, beta, 1e-3, **variant)
    numeric = _directional(lambda xx: ref.batch_norm_train(xx, feature_axis, gamma, beta, 1e-3, **variant).y, x, g, v)
    assert _close(np.sum(grads.dx * v), numeric, np.abs(g).sum())
    frozen = G.batch_norm_train_backward(x, feature_axis, g, gamma, beta, 1e-3, through_statistics=False, **variant)
    # the classic bug misses the derivative by a wide margin: the checks can tell it apart
    assert abs(np.sum(frozen.dx * v) - numeric) > 1e3 * 1e-7 * np.abs(g).sum()


def test_batch_norm_eval_has_no_batch_coupling():
    x, g, v = _case((6, 3, 4), 5)
    rm, rv = np.array([0.5, -1.0, 2.0]), np.array([0.7, 1.3, 2.2])
    gamma, beta = np.array([1.5, -0.5, 2.0]), np.array([0.1, 0.2, 0.3])
    grads = G.batch_norm_eval_backward(x, 1, rm, rv, g, gamma, beta, 1e-3)
    numeric = _directional(lambda xx: ref.batch_norm_eval(xx, 1, rm, rv, gamma, beta, 1e-3).y, x, g, v)
    assert _close(np.sum(grads.dx * v), numeric, np.abs(g).sum())
    # elementwise: dx = g * gamma / sqrt(rv + eps), channel by channel
    assert np.allclose(grads.dx, g * (gamma / np.sqrt(rv + 1e-3))[None, :, None], rtol=1e-14, atol=0)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch (pip install -e '.[torch]')")
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['norm_variance']}-{v['eps_placement']}")
def test_autograd_of_the_formula_in_torch_agrees_to_float64_noise(variant):
    import torch
    x, g, _ = _case((5, 4, 3), 6, offset=1.0)
    gamma, beta = np.linspace(-1, 2, 4), np.linspace(0.5, -0.5, 4)
    ddof = 0 if variant["norm_variance"] == "biased" else 1
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    dims = (0, 2)
    mean = xt.mean(dim=dims, keepdim=True)
    var = ((xt - mean) ** 2).sum(dim=dims, keepdim=True) / (x.size // 4 - ddof)
    std = var.sqrt()
    s = 1 / (var + 1e-3).sqrt() if variant["eps_placement"] == "inside_sqrt" else 1 / (std + 1e-3)
    y = (xt - mean) * s * gt[None, :, None] + bt[None, :, None]
    y.backward(torch.tensor(g))
    ours = G.batch_norm_train_backward(x, 1, g, gamma, beta, 1e-3, **variant)
    for mine, theirs in ((ours.dx, xt.grad), (ours.dgamma, gt.grad), (ours.dbeta, bt.grad)):
        theirs = theirs.numpy()
        assert np.max(np.abs(mine - theirs)) <= 64 * np.finfo(np.float64).eps * np.max(np.abs(theirs))


RMS_VARIANTS = [dict(eps_placement=e, rms_weight_form=f) for e in ("inside_sqrt", "added_to_std") for f in ("w", "one_plus_w")]


def _rms_id(v):
    return f"{v['eps_placement']}-{v['rms_weight_form']}"


@pytest.mark.parametrize("variant", RMS_VARIANTS, ids=_rms_id)
@pytest.mark.parametrize("axes", [(-1,), (2, 3)])
def test_rms_norm_dx_and_dweight_match_finite_differences(variant, axes):
    x, g, v = _case((3, 4, 5, 6), 7, offset=0.5)
    rng = np.random.default_rng(8)
    weight = rng.normal(size=tuple(x.shape[a] for a in axes))
    grads = G.rms_norm_backward(x, axes, g, weight, 1e-3, **variant)

    def fwd(xx, w=weight):
        return ref.rms_norm(xx, axes, w, 1e-3, **variant).y
    scale = np.abs(g).sum()
    assert grads.dbeta is None and grads.dgamma.shape == weight.shape
    assert _close(np.sum(grads.dx * v), _directional(fwd, x, g, v), scale)
    dw = rng.normal(size=weight.shape)
    assert _close(np.sum(grads.dgamma * dw), _directional(lambda t: fwd(x, weight + t), 0.0 * dw, g, dw), scale)


def test_rms_weight_forms_share_dweight_and_differ_in_dx():
    x, g, _ = _case((4, 16), 9)
    weight = np.linspace(-0.5, 1.5, 16)
    w, one_plus = (G.rms_norm_backward(x, (-1,), g, weight, 1e-6, rms_weight_form=f) for f in ("w", "one_plus_w"))
    assert np.array_equal(w.dgamma, one_plus.dgamma)
    assert np.max(np.abs(w.dx - one_plus.dx)) > 0.1 * np.max(np.abs(w.dx))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch (pip install -e '.[torch]')")
@pytest.mark.parametrize("variant", RMS_VARIANTS, ids=_rms_id)
def test_rms_autograd_of_the_formula_in_torch_agrees_to_float64_noise(variant):
    import torch
    x, g, _ = _case((5, 3, 8), 10, offset=0.3)
    weight = np.linspace(-1, 2, 8)
    xt, wt = (torch.tensor(a, requires_grad=True) for a in (x, weight))
    ms = (xt * xt).mean(dim=-1, keepdim=True)
    s = 1 / (ms + 1e-3).sqrt() if variant["eps_placement"] == "inside_sqrt" else 1 / (ms.sqrt() + 1e-3)
    y = xt * s * (wt if variant["rms_weight_form"] == "w" else 1 + wt)
    y.backward(torch.tensor(g))
    ours = G.rms_norm_backward(x, (-1,), g, weight, 1e-3, **variant)
    for mine, theirs in ((ours.dx, xt.grad), (ours.dgamma, wt.grad)):
        theirs = theirs.numpy()
        assert np.max(np.abs(mine - theirs)) <= 64 * np.finfo(np.float64).eps * np.max(np.abs(theirs))
