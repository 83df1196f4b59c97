"""A measured default read from a probe cell under a known deviation that explains the probe's own failure
(issue 18): torch[onnx] exports training BatchNorm as an inference node, so its probes "measure" eps 0.8 and
momentum 0.  The matrix must say "not measurable: <deviation>", never show the number as a measured fact;
a deviation that waives something else (accuracy) leaves an agreeing reading as it is."""
from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.judge.expectations import from_data
from normconf.judge.verdict import run_cell
from normconf.reports.matrix import build_matrix
from normconf.reports.table import text_matrix

EPS_BN = "default eps (BatchNorm)"
MOMENTUM = "default momentum (BatchNorm, weight on the new batch)"
OWN_FORM = "default momentum (BatchNorm, the framework's own form)"
PROBES = ("probe_default_eps_bn", "probe_default_momentum_bn", "probe_momentum_form")
DOCUMENTED = {"default_eps": {"variant": 1e-5, "cite": "-"}, "default_momentum": {"variant": 0.1, "cite": "-"},
              "momentum_form": {"variant": "weight_on_new", "cite": "-"}}
INFERENCE_NODE = {"cases": ["probe_default_*"], "match": ["default_"],
                  "reason": "a train-mode BatchNorm module is exported as an inference node (one output): it "
                            "normalizes with its running statistics"}


def _rows(profile: dict, deviations: list[dict]) -> dict:
    expectation = from_data({"adapters": ["odd"], "documented": DOCUMENTED, "deviation": deviations}, "odd.toml")
    cells = [run_cell(NumpyAdapter(profile, name="odd"), "odd", case, expectation, None) for case in PROBES]
    matrix = build_matrix(cells, ["odd"])
    return {r["row"]: r["cells"]["odd"] for r in matrix["rows"]}, matrix, cells


def test_a_default_waived_by_a_deviation_reads_not_measurable_naming_it():
    rows, matrix, cells = _rows({"default_eps": 0.8, "default_momentum": 0.9}, [INFERENCE_NODE])
    assert {c["case"]: c["outcome"] for c in cells}["probe_default_eps_bn"] == "xfail"
    for title in (EPS_BN, MOMENTUM, OWN_FORM):
        cell = rows[title]
        assert cell["label"] == "not measurable" and cell["status"] == "unclear", (title, cell)
        assert cell["value"] is None
        assert cell["observed"].startswith("not measurable: odd.toml#deviation[1], a train-mode BatchNorm module is "
                                           "exported as an inference node"), cell["observed"]
    table = text_matrix(matrix)
    assert "0.8" not in table and "not measurable" in table


def test_without_the_deviation_the_same_number_is_a_disagreeing_measurement():
    rows, _, _ = _rows({"default_eps": 0.8, "default_momentum": 0.9}, [])
    assert rows[EPS_BN]["status"] == "disagrees" and rows[EPS_BN]["label"] == "0.8"


def test_a_deviation_waiving_something_else_keeps_an_agreeing_reading():
    other = {**INFERENCE_NODE, "match": ["default_momentum"]}  # waives the momentum probe only
    rows, _, _ = _rows({"default_momentum": 0.9}, [other])
    assert rows[EPS_BN]["status"] == "agrees" and rows[EPS_BN]["label"] != "not measurable"
    assert rows[MOMENTUM]["label"] == "not measurable"
