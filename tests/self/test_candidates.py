"""The memoised candidates are the reference: every profile's outputs equal golden/reference.py's own
composition, so the dependency keys (golden/candidates.py) leave no convention out."""
import numpy as np
import pytest

from normconf.golden import candidates
from normconf.golden import reference as ref


def _batches(seed=0, shape=(5, 3, 2)):
    rng = np.random.default_rng(seed)
    return rng.normal(1.5, 2.0, size=(3, *shape)), rng.normal(1.5, 2.0, size=shape), rng.uniform(0.5, 2, 3), rng.normal(size=3)


@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_every_batch_norm_profile_matches_the_reference(momentum):
    batches, x_eval, gamma, beta = _batches()
    cands = candidates.BatchNormCandidates(batches, x_eval, 1, gamma, beta, 1e-3, momentum)
    profiles = candidates.profiles("batch_norm")
    assert len(profiles) == 2 * 2 * 3 * 2 * 2 * 2 * 3
    for p in profiles:
        run = ref.batch_norm_steps(list(batches), x_eval, 1, gamma, beta, 1e-3, momentum, p)
        got = cands.outputs(p)
        for name in ("y_train", "running_mean", "running_var", "y_eval"):
            np.testing.assert_array_equal(got[name], getattr(run, name), err_msg=f"{name} under {p}")


def test_profiles_share_arrays():
    batches, x_eval, gamma, beta = _batches()
    cset = candidates.CandidateSet([(candidates.BatchNormCandidates(batches, x_eval, 1, gamma, beta, 1e-5, 0.1),
                                     candidates.profiles("batch_norm"))], dict.fromkeys(candidates.BatchNormCandidates.OUTPUTS, 1e-6),
                                    dict.fromkeys(candidates.BatchNormCandidates.OUTPUTS, 1.0))
    distinct = {o: len(cset._unique[o]) for o in cset.outputs}
    # by dependency: 6 trajectories of the mean (3 forms x 2 starts), 12 of the variance (x 2 stored
    # variances), y_train 4 batch-normalized + 2 eps placements x 2 running variants x 12 trajectories, y_eval
    # 4 + 2 x 12.  By content, under the cumulative average debiasing is a no-op, so its two starts give one
    # trajectory -- except where a step normalizes with the statistics before it (running_previous), whose
    # first step still sees the two starts' raw (0, 1) and (0, 0)
    assert distinct == {"running_mean": 6 - 1, "running_var": 12 - 2, "y_train": 4 + 2 * ((12 - 2) + 12),
                        "y_eval": 4 + 2 * (12 - 2)}


def test_errors_and_distances_in_tolerances():
    batches, x_eval, gamma, beta = _batches()
    cands = candidates.BatchNormCandidates(batches, x_eval, 1, gamma, beta, 1e-5, 0.1)
    profiles = candidates.profiles("batch_norm")
    cset = candidates.CandidateSet([(cands, profiles)], dict.fromkeys(cands.OUTPUTS, 1e-6), dict.fromkeys(cands.OUTPUTS, 1.0))
    i = profiles.index(candidates.base_profile("batch_norm", {"running_variance": "unbiased"}))
    errors = cset.errors(cands.outputs(profiles[i]))
    assert errors[i] == 0 and np.all(errors >= 0)
    d = cset.distance_matrix()
    np.testing.assert_array_equal(d[i], errors)  # the distance to a profile is the error of its outputs
    assert all(cset.distance(i, j) == d[i, j] for j in range(0, len(profiles), 7))


def test_nonfinite_actual_elements_are_left_out_of_the_errors():
    batches, x_eval, gamma, beta = _batches()
    cands = candidates.BatchNormCandidates(batches, x_eval, 1, gamma, beta, 1e-5, 0.1)
    p = candidates.base_profile("batch_norm")
    cset = candidates.CandidateSet([(cands, [p])], dict.fromkeys(cands.OUTPUTS, 1e-6), dict.fromkeys(cands.OUTPUTS, 1.0))
    actual = {k: v.copy() for k, v in cands.outputs(p).items()}
    actual["y_train"][0, 0, 0, 0] = np.nan
    assert cset.errors(actual)[0] == 0
    assert cset.distance_matrix()[0, 0] == 0
