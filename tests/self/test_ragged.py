"""Batch sizes that change from step to step (issue 21, golden/ragged.py): the reference, the stored form,
the transport to child processes, the judge, and plug-ins that stack."""
import numpy as np
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.adapters.remote import _listed, decode, pack_call, pack_reply, unpack_call
from normconf.golden import reference as ref
from normconf.golden.cases import CASES, Case
from normconf.golden.fixtures import load_case
from normconf.golden.ragged import join_steps, split_steps, step_shapes, steps_form
from normconf.judge.expectations import load_all
from normconf.judge.verdict import run_cell

RAGGED = ("bn_steps_ragged", "bn_cumulative_ragged")


def test_reference_uses_each_steps_own_n_hand_computed():
    # one channel: batch [1, 3] (N 2: biased 1, unbiased 2), then [0, 0, 6] (N 3: biased 8, unbiased 12)
    a, b = np.array([[1.0], [3.0]]), np.array([[0.0], [0.0], [6.0]])
    run = ref.batch_norm_steps([a, b], a, 1, momentum=None,
                               profile={"running_variance": "unbiased", "momentum_form": "cumulative_average"})
    np.testing.assert_allclose(run.running_var[:, 0], [2.0, (2.0 + 12.0) / 2], rtol=1e-15)  # steps weigh 1/k
    np.testing.assert_allclose(run.running_mean[:, 0], [2.0, (2.0 + 2.0) / 2], rtol=1e-15)
    assert [y.shape for y in run.y_train] == [(2, 1), (3, 1)]
    np.testing.assert_allclose(run.y_train[1][:, 0], (b[:, 0] - 2.0) / np.sqrt(8.0 + 1e-5), rtol=1e-14)


def test_stored_form_round_trips_along_the_batch_axis():
    case = Case("t", "batch_norm", (4, 3, 5), (0,), steps=3, batch_sizes=(2, 3, 2))  # feature axis 0: batch axis 1
    assert step_shapes(case) == [(4, 2, 5), (4, 3, 5), (4, 2, 5)]
    x = np.arange(4 * 7 * 5.0).reshape(4, 7, 5)
    steps = split_steps(x, case)
    assert [s.shape for s in steps] == step_shapes(case)
    np.testing.assert_array_equal(join_steps(steps, case), x)


@pytest.mark.parametrize("bad", [dict(steps=2, batch_sizes=(2, 3, 4)), dict(batch_sizes=(3, 3, 3)),
                                 dict(batch_sizes=(0, 2, 3))])
def test_case_refuses_batch_sizes_it_cannot_use(bad):
    with pytest.raises(ValueError, match="batch_sizes"):
        Case("t", "batch_norm", (4, 3), (1,), **bad)


def test_steps_form_joins_lists_and_names_what_is_wrong():
    case = CASES["bn_steps_ragged"]
    ys = [np.zeros(s) for s in step_shapes(case)]
    joined, problem = steps_form({"y_train": ys}, case)
    assert problem is None and joined["y_train"].shape == (11, 3)
    _, problem = steps_form({"y_train": ys[:2]}, case)
    assert "step shapes" in problem
    _, problem = steps_form({"y_train": np.zeros((11, 3))}, case)
    assert "must be a list of one array per step" in problem
    one_shape = CASES["bn_steps_10"]
    stacked, problem = steps_form({"y_train": [np.zeros((8, 4))] * 10}, one_shape)
    assert problem is None and stacked["y_train"].shape == (10, 8, 4)


def test_transport_carries_ragged_lists_both_ways():
    batches = [np.ones((2, 3)), np.ones((5, 3))]
    op, kwargs = unpack_call(pack_call("batch_norm_steps", {"batches": batches, "x_eval": np.ones((5, 3)), "eps": 1e-5}))
    assert op == "batch_norm_steps" and [b.shape for b in kwargs["batches"]] == [(2, 3), (5, 3)]
    header, arrays = decode(pack_reply({"y_train": batches, "running_mean": np.zeros((2, 3))}))
    back = _listed(arrays, header["lists"])
    assert [y.shape for y in back["y_train"]] == [(2, 3), (5, 3)] and back["running_mean"].shape == (2, 3)


@pytest.mark.parametrize("name", RAGGED)
def test_ragged_fixture_shows_running_variance_and_numpy_passes(name):
    fx = load_case(name)
    assert "running_variance" in fx.case.shows and len(set(fx.case.batch_sizes)) > 1
    cell = run_cell(NumpyAdapter(), "numpy", name, load_all()[0]["numpy"], None)
    assert cell["outcome"] == "pass", cell["message"]
    assert cell["conventions"]["running_variance"]["observed"] == "unbiased"


class Stacking(NumpyAdapter):
    """A plug-in written before ragged steps: it always stacks y_train."""

    def batch_norm_steps(self, *args):
        out = super().batch_norm_steps(*args)
        return {**out, "y_train": np.stack(out["y_train"])}


def test_a_plugin_that_stacks_passes_one_shape_cases_and_fails_ragged_ones_plainly():
    expectation = load_all()[0]["numpy"]
    assert run_cell(Stacking(), "numpy", "bn_steps_10", expectation, None)["outcome"] == "pass"
    cell = run_cell(Stacking(), "numpy", "bn_steps_ragged", expectation, None)
    assert cell["outcome"] == "error" and "same shape" in cell["message"]
