"""The reference formulas against hand-computed values and against their defining properties."""
import numpy as np
import pytest

from normconf.golden import reference as ref


def test_layer_norm_hand_computed():
    # x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25, unbiased 5/3.
    out = ref.layer_norm([[1.0, 2.0, 3.0, 4.0]], (1,), eps=0.0)
    np.testing.assert_allclose(out.mean, [[2.5]], rtol=0, atol=0)
    np.testing.assert_allclose(out.var, [[1.25]], rtol=0, atol=0)
    np.testing.assert_allclose(out.y, [[-1.5, -0.5, 0.5, 1.5]] / np.sqrt(1.25), rtol=1e-15)
    unbiased = ref.layer_norm([[1.0, 2.0, 3.0, 4.0]], (1,), eps=0.0, norm_variance="unbiased")
    np.testing.assert_allclose(unbiased.var, [[5.0 / 3.0]], rtol=1e-15)


def test_eps_placement_hand_computed():
    # x = [0, 2]: mean 1, variance 1, eps 0.44: inside -> 1/sqrt(1.44) = 1/1.2; added to std -> 1/1.44.
    inside = ref.layer_norm([[0.0, 2.0]], (1,), eps=0.44)
    added = ref.layer_norm([[0.0, 2.0]], (1,), eps=0.44, eps_placement="added_to_std")
    np.testing.assert_allclose(inside.y, [[-1 / 1.2, 1 / 1.2]], rtol=1e-15)
    np.testing.assert_allclose(added.y, [[-1 / 1.44, 1 / 1.44]], rtol=1e-15)


def test_layer_norm_noncontiguous_axes_and_per_feature_affine():
    x = np.arange(24.0).reshape(2, 3, 4)
    out = ref.layer_norm(x, (0, 2), eps=0.0)
    for j in range(3):  # each middle index is its own group
        group = x[:, j, :]
        np.testing.assert_allclose(out.y[:, j, :], (group - group.mean()) / group.std(), rtol=1e-14)
    assert ref.affine_shape((2, 3, 4), (1, 2), "per_element") == (1, 3, 4)
    assert ref.affine_shape((2, 3, 4), (1, 2), "per_feature_axis") == (1, 1, 4)


def test_batch_norm_running_update_hand_computed():
    # One channel, batch [1, 3]: mean 2, biased variance 1, unbiased 2.
    x = np.array([[1.0], [3.0]])
    run = ref.batch_norm_steps([x], x, 1, momentum=0.1, profile={"running_variance": "unbiased"})
    np.testing.assert_allclose(run.running_mean, [[0.2]], rtol=1e-15)
    np.testing.assert_allclose(run.running_var, [[0.9 * 1 + 0.1 * 2]], rtol=1e-15)
    biased = ref.batch_norm_steps([x], x, 1, momentum=0.1)
    np.testing.assert_allclose(biased.running_var, [[1.0]], rtol=1e-15)
    old = ref.batch_norm_steps([x], x, 1, momentum=0.1, profile={"momentum_form": "weight_on_old"})
    np.testing.assert_allclose(old.running_mean, [[0.9 * 2]], rtol=1e-15)
    debiased = ref.batch_norm_steps([x], x, 1, momentum=0.1, profile={"initial_running_stats": "zero_debiased"})
    np.testing.assert_allclose(debiased.running_mean, [[2.0]], rtol=1e-15)  # first step: the batch itself
    np.testing.assert_allclose(debiased.running_var, [[1.0]], rtol=1e-15)
    # Cumulative average over batches with means 2 and 6: 2, then 4.
    cum = ref.batch_norm_steps([x, x + 4], x, 1, momentum=None, profile={"momentum_form": "cumulative_average"})
    np.testing.assert_allclose(cum.running_mean[:, 0], [2.0, 4.0], rtol=1e-15)
    # Eval from running statistics: (x - 0.2) / sqrt(1.1 + eps) for the unbiased run.
    np.testing.assert_allclose(run.y_eval, (x - 0.2) / np.sqrt(1.1 + 1e-5), rtol=1e-15)
    batch_eval = ref.batch_norm_steps([x], x, 1, profile={"eval_statistics": "batch"})
    np.testing.assert_allclose(batch_eval.y_eval, (x - 2) / np.sqrt(1 + 1e-5), rtol=1e-15)


def test_batchnorm_affine_undoes_normalization_layernorm_cannot():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    mean, std = x.mean(axis=0), x.std(axis=0)
    np.testing.assert_allclose(ref.batch_norm_train(x, 1, std, mean, eps=1e-12).y, x, rtol=1e-9)
    # The same gamma/beta do not undo LayerNorm, which normalizes rows but scales columns ...
    assert np.max(np.abs(ref.layer_norm(x, (1,), std, mean, eps=1e-12).y - x)) > 0.1
    # ... and no per-column affine does: the best least-squares fit leaves a residual.
    y = ref.layer_norm(x, (1,), None, None, eps=1e-12).y
    design = np.stack([y, np.ones_like(y)], axis=-1)  # gamma_j * y_ij + beta_j
    residual = max(np.linalg.lstsq(design[:, j], x[:, j], rcond=None)[1].sum() for j in range(4))
    assert residual > 1e-3


@pytest.mark.parametrize("eps", [1e-5, 1e-3, 0.5])
def test_groups_have_mean_zero_and_shrunken_variance(eps):
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(5, 3, 4))
    bn = ref.batch_norm_train(x, 1, eps=eps)
    np.testing.assert_allclose(bn.y.mean(axis=(0, 2)), 0, atol=1e-14)
    var = x.var(axis=(0, 2))
    np.testing.assert_allclose(bn.y.var(axis=(0, 2)), var / (var + eps), rtol=1e-12)
    ln = ref.layer_norm(x, (1, 2), eps=eps)
    np.testing.assert_allclose(ln.y.mean(axis=(1, 2)), 0, atol=1e-14)
    var = x.var(axis=(1, 2))
    np.testing.assert_allclose(ln.y.var(axis=(1, 2)), var / (var + eps), rtol=1e-12)


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown variant 'sideways' of running_variance"):
        ref.batch_norm_steps([np.ones((2, 1))], np.ones((2, 1)), 1, profile={"running_variance": "sideways"})
