"""The report as a person reads it: colours that mean something, marks readable without colour, NaN
counts wherever figures are, navigable details, a page that fits 1400 px in Chromium, and a terminal
table that fits 120 columns and is the README's."""
import copy
import importlib.util
import re

import pytest

from normconf.reports import html, palette, porting, table
from tests.self.suite_runner import REPO, run_suite

PLUGINS = REPO / "tests" / "self" / "report_plugins.py"
ADAPTERS = ("numpy", "keras_like", "mislabelled", "ln_only")
_spec = importlib.util.spec_from_file_location("screenshot", REPO / "scripts" / "screenshot.py")
screenshot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screenshot)


@pytest.fixture(scope="module")
def view_run(tmp_path_factory):
    """numpy beside three plug-ins (tests/self/report_plugins.py): Keras-like values, a wrong documentation
    with NaN at large means, and a LayerNorm-only implementation."""
    tmp = tmp_path_factory.mktemp("view")
    code, data, output = run_suite(tmp, "normconf/checks/test_golden.py", f"--frameworks={','.join(ADAPTERS)}",
                                   f"--adapter={PLUGINS}:KerasLike", f"--adapter={PLUGINS}:Mislabelled",
                                   f"--adapter={PLUGINS}:LayerNormOnly", "-n", "0", "-p", "no:randomly")
    assert data.get("adapters") == list(ADAPTERS), output[-3000:]
    return tmp / "out", data, output


def _row(data, title):
    return next(r for r in data["matrix"]["rows"] if r["row"] == title)


BASELINE = REPO / "reports" / "baselines" / "pinned.json"


def _baseline_matrix():
    return table.matrix_of(BASELINE)


# -- colours and marks ------------------------------------------------------------------------------

def test_palette_is_clearly_distinct():
    assert palette.smallest_distance(palette.PALETTE) >= palette.MIN_DISTANCE


@pytest.mark.parametrize("source", ["view_run", "baseline"])
def test_distinct_values_get_distinct_colours_equal_values_equal_ones(source, request):
    matrix = request.getfixturevalue("view_run")[1]["matrix"] if source == "view_run" else _baseline_matrix()
    adapters, several = matrix["adapters"], 0
    for row in matrix["rows"]:
        colours = palette.row_colours(row, adapters)
        labels = [palette.label_of(row["cells"][a]) for a in adapters]
        assert set(colours) == {label for label in labels if label}, row["row"]
        if len(colours) > 1:
            several += 1
            assert palette.smallest_distance(colours.values()) >= palette.MIN_DISTANCE, row["row"]
            assert len(set(colours.values())) == len(colours), row["row"]
    assert several >= 5  # rows where frameworks differ


def test_documented_values_take_the_calm_colours(view_run):
    _, data, _ = view_run
    row = _row(data, "mean offset 1e4 x std (BatchNorm)")
    colours = palette.row_colours(row, data["adapters"])
    assert colours["accurate"] == palette.PALETTE[0] and colours["inaccurate"] not in palette.PALETTE[5:]


def test_status_is_a_mark_and_a_word(view_run):
    out, data, _ = view_run
    page = (out / "report.html").read_text()
    row = page.split('data-row="running_variance"')[1].split("</tr>")[0]
    cell = row.split('data-adapter="mislabelled"')[1].split("</td>")[0]
    # biased in 45 cases (bn_steps_ragged and bn_cumulative_ragged among them), no variant in the 3 where its E[x^2] - E[x]^2 breaks down (stress_bn_offset_1e3, its
    # NCHW twin and stress_bn_offset_1e4): unclear, counts in the cell
    assert "?" in cell and "documented: unbiased" in cell and ">biased x45, unclear x3<" in cell
    assert "✓" in row.split('data-adapter="numpy"')[1].split("</td>")[0]
    behaviour = page.split('data-row="one value per channel (training)"')[1].split("</tr>")[0]
    assert "✗" in behaviour.split('data-adapter="mislabelled"')[1].split("</td>")[0]
    for status, (symbol, word) in palette.MARKS.items():
        assert symbol in page.split('class="legend"')[1].split("</p>")[0], status


def test_hover_texts_say_only_what_is_there(view_run):
    out, _, _ = view_run
    titles = re.findall(r'title="([^"]*)"', (out / "report.html").read_text())
    assert titles and not [t for t in titles if "None" in t or "; ;" in t or t.endswith("; ")]


def test_layernorm_only_plugin_has_no_differs_mark_in_batchnorm_rows(view_run):
    _, data, _ = view_run
    for row in data["matrix"]["rows"]:
        cell = row["cells"]["ln_only"]
        if "BatchNorm" in row["row"] or row["row"] in ("running_variance", "momentum_form"):
            assert cell["status"] in ("no-doc", "not-run"), (row["row"], cell)
    # a BatchNorm that fails for its running variance handles channels-last as it handles channels-first
    assert _row(data, "BatchNorm channels-last input")["cells"]["mislabelled"]["status"] == "agrees"


# -- NaN and accuracy figures -------------------------------------------------------------------------

def test_nan_counts_in_the_matrix_stress_table_and_details(view_run):
    out, data, _ = view_run
    nan = "y_train: 24 NaN of 96"
    cell = _row(data, "mean offset 1e4 x std (BatchNorm)")["cells"]["mislabelled"]
    assert nan in cell["detail"] and cell["label"] == "inaccurate"
    page = (out / "report.html").read_text()
    matrix = page.split('id="matrix"')[1].split("</table>")[0]
    stress = page.split('id="stress"')[1].split("</table>")[0]
    details = page.split('data-case="stress_bn_offset_1e4" data-adapter="mislabelled"')
    assert nan in matrix and nan in stress
    assert nan in [d for d in details if d.startswith(">")][0].split("</details>")[0]


def test_accuracy_table_names_both_cases_and_shows_known_as_known(view_run):
    _, data, _ = view_run
    cells = [copy.deepcopy(c) for c in data["cells"] if c["adapter"] == "numpy" and c["case"] in ("ln_last1", "ln_last2")]
    ulp, err = cells
    ulp["accuracy"]["max_ulp"], ulp["accuracy"]["error"] = 40.0, 0.1
    err["accuracy"]["max_ulp"], err["accuracy"]["error"] = 2.0, 30.0
    err["outcome"], err["nonfinite"] = "xfail", {"y": {"nan": 3, "inf": 1, "size": 24, "unexpected": 4}}
    text = html.accuracy_table(cells, ["numpy"])
    assert "30&times; tolerance <small>(ln_last2)</small>" in text and "40 ULP <small>(ln_last1)</small>" in text
    assert "known deviation" in text and "✗" not in text
    assert "y: 3 NaN and 1 inf of 24" in text


# -- the page in Chromium ---------------------------------------------------------------------------------

@pytest.mark.skipif(screenshot.chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_page_fits_1400px_and_rendered_colours_are_apart(view_run):
    out, data, _ = view_run
    m = screenshot.measure(out / "report.html", width=1400)
    assert m["scrollWidth"] <= m["clientWidth"] and m["matrixRight"] <= m["clientWidth"], m
    several = 0
    for title, cells in m["rows"].items():
        by_label = {}
        for label, colour in cells.values():
            by_label.setdefault(label, set()).add(colour)
        assert all(len(c) == 1 for c in by_label.values()), (title, by_label)  # equal values, equal colours
        rendered = ["#%02X%02X%02X" % tuple(map(int, re.findall(r"\d+", c.pop())[:3])) for c in by_label.values()]
        if len(rendered) > 1:
            several += 1
            assert palette.smallest_distance(rendered) >= palette.MIN_DISTANCE, (title, by_label)
    assert several >= 5


# -- details ----------------------------------------------------------------------------------------------

def test_details_grouped_by_adapter_and_outcome_failures_first(view_run):
    out, data, _ = view_run
    page = (out / "report.html").read_text()
    section = page.split('<details class="adapter" data-adapter="mislabelled" open>')[1].split('class="adapter"')[0]
    outcomes = re.findall(r'data-outcome="([a-z_]+)"', section)
    assert outcomes[0] == "fail" and outcomes[-1] == "pass"
    spec = data["adapter_info"]["mislabelled"]["plugin"]
    assert html.e(f"load_spec({spec!r})") in section  # a plug-in's snippet goes through its spec
    assert '<details class="adapter" data-adapter="numpy">' in page  # nothing failed: folded


def test_versions_are_a_small_table(view_run):
    out, _, _ = view_run
    versions = (out / "report.html").read_text().split('id="versions">')[1].split("</table>")[0]
    assert versions.count("<tr>") >= 2 and "numpy only" in versions


# -- porting guide ----------------------------------------------------------------------------------------

def test_porting_guide_uses_plugin_names_and_never_calls_a_default_irreconcilable(view_run):
    _, data, _ = view_run
    advice = {(a.a.name, a.b.name): a for a in porting.guide(data["matrix"], data["adapter_info"])}
    adv = advice[("numpy", "keras_like")]
    assert adv.like[("numpy", "keras_like")]["batch_norm"] == {"momentum": 0.9, "eps": 1e-05, "feature_axis": 1}
    assert any(line.startswith("momentum: numpy momentum=m is keras_like momentum=1 - m") for line in adv.agree)
    defaults = [r["row"] for r in data["matrix"]["rows"] if r["kind"] in ("default", "derived")]
    for a in advice.values():
        assert not [line for line in a.cannot for d in defaults if line.startswith(d)]


def test_no_advice_from_mixed_or_unclear_cells(view_run):
    _, data, _ = view_run
    matrix = copy.deepcopy(data["matrix"])
    cell = _row({"matrix": matrix}, "running_variance")["cells"]["keras_like"]
    cell.update(status="mixed", label="mixed", observed="mixed: biased x3, unbiased x1", cases=["bn1d_nc", "bn2d_nchw"])
    adv = next(a for a in porting.guide(matrix, data["adapter_info"]) if {a.a.name, a.b.name} == {"numpy", "keras_like"})
    assert not [line for line in adv.agree + adv.cannot if "running_variance" in line]
    assert "unclear: running_variance on keras_like (mixed): see cases bn1d_nc, bn2d_nchw" in adv.unclear


# -- terminal and README ----------------------------------------------------------------------------------

def _no_word_cut(text: str, matrix: dict):
    words = set(text.split())
    for row in matrix["rows"]:
        for cell in row["cells"].values():
            label = palette.label_of(cell)
            if label:
                short = table.WORDS.get(label, label)
                assert all(w in words or w.upper() in words or w + "!" in words for w in short.split()), (row["row"], short)


def test_terminal_table_fits_and_cuts_nothing(view_run):
    _, data, output = view_run
    text = table.text_matrix(data["matrix"])
    assert max(map(len, text.splitlines())) <= 120
    _no_word_cut(text, data["matrix"])
    assert text in output.replace("\r", "")  # the terminal summary prints exactly this


def test_many_long_plugin_columns_go_into_blocks():
    matrix = _baseline_matrix()
    for i in range(6):
        name = f"a_rather_long_plugin_name_{i}"
        matrix["adapters"].append(name)
        for row in matrix["rows"]:
            row["cells"][name] = dict(row["cells"]["numpy"])
    text = table.text_matrix(matrix)
    assert max(map(len, text.splitlines())) <= 120
    assert all(f"a_rather_long_plugin_name_{i}" in text for i in range(6))
    _no_word_cut(text, matrix)


def test_readme_table_is_what_the_code_renders_from_the_committed_baseline():
    readme = (REPO / "README.md").read_text()
    assert table.readme_table(readme) == table.readme_block(_baseline_matrix()), (
        "README's table is stale: normconf.table reports/baselines/pinned.json --readme README.md")
