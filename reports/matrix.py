"""The conformance matrix: conventions, defaults and behaviours as rows, adapters as columns, each
cell the variant observed over all cases that show it, next to what the adapter documents."""
from __future__ import annotations

from collections import Counter

from golden.compare import NO_MATCH

CONVENTION_ROWS = ("norm_variance", "running_variance", "momentum_form", "eps_placement",
                   "initial_running_stats", "eval_statistics")
DEFAULT_ROWS = (("default_eps", "layer_norm"), ("default_eps", "batch_norm"), ("default_momentum", "batch_norm"),
                ("default_feature_axis", "batch_norm"))
# Behaviour rows: (title, case, how to read the cell's outcome)
BEHAVIOUR_ROWS = (
    ("BatchNorm channels-last input", "bn2d_nhwc", "layout"),
    ("cumulative average (momentum=None)", "bn_cumulative", {"pass": "supported", "unsupported": "not available"}),
    ("one value per channel (training)", "stress_bn_one_value_per_channel", None),
    ("LayerNorm over non-trailing axes", "ln_noncontiguous_1_3", {"pass": "supported", "unsupported": "trailing only"}),
    ("LayerNorm per-feature-axis affine", "ln_affine_per_feature", {"pass": "supported", "unsupported": "per element only"}),
    ("mean offset 1e4 x std (LayerNorm)", "stress_ln_offset_1e4", {"pass": "accurate", "xfail": "inaccurate (known)", "fail": "inaccurate"}),
    ("mean offset 1e4 x std (BatchNorm)", "stress_bn_offset_1e4", {"pass": "accurate", "xfail": "inaccurate (known)", "fail": "inaccurate"}),
    ("float64 kept float64 (BatchNorm)", "dtype_bn_float64", {"pass": "yes", "xfail": "no (known)", "fail": "no"}),
)


def _plain(variant: str) -> str:
    return NO_MATCH if variant.startswith(NO_MATCH) else variant


def _summarize(observed: Counter) -> str:
    if len(observed) == 1:
        return next(iter(observed))
    return "mixed: " + ", ".join(f"{v} x{n}" for v, n in observed.most_common())


def _convention_cell(cells, adapter, convention, layer=None) -> dict:
    seen, expected, cite, cases = Counter(), set(), None, []
    for c in cells:
        if c["adapter"] != adapter or convention not in c.get("conventions", {}):
            continue
        if layer and c.get("layer") != layer:
            continue
        if c["outcome"] == "xfail":  # a known deviation says nothing about the convention
            continue
        entry = c["conventions"][convention]
        seen[_plain(entry["observed"])] += 1
        expected.add(entry["expected"])
        cite = cite or entry.get("cite")
        cases.append(c["case"])
    if not seen:
        return {"observed": None, "expected": None, "status": "not-run", "cases": []}
    observed = _summarize(seen)
    doc = next(iter(expected)) if len(expected) == 1 else None
    status = "agrees" if observed == doc else ("no-doc" if doc is None else "disagrees")
    return {"observed": observed, "expected": doc, "status": status, "cases": sorted(cases), "cite": cite}


def _behaviour_cell(cells, adapter, case, reading) -> dict:
    cell = next((c for c in cells if c["adapter"] == adapter and c["case"] == case), None)
    if cell is None or cell["outcome"] in ("not_installed", "missing"):
        return {"observed": None, "expected": None, "status": "not-run", "cases": []}
    if reading == "layout":
        observed = "axis argument" if (cell.get("layout") or "").startswith("native") else "moved to channels-first"
        return {"observed": observed, "expected": None, "status": "agrees" if cell["outcome"] == "pass"
                else "disagrees", "cases": [case], "kind": "layout"}
    if reading is None:
        observed = cell.get("behaviour") or cell["outcome"]
    else:
        observed = reading.get(cell["outcome"], cell["outcome"])
    status = {"pass": "agrees", "xfail": "known", "unsupported": "no-doc"}.get(cell["outcome"], "disagrees")
    return {"observed": observed, "expected": None, "status": status, "cases": [case]}


def _native_momentum_row(rows, adapters) -> dict:
    """The default momentum as the framework's own argument reads it, from the two measured rows."""
    by_name = {r["row"]: r for r in rows}
    pytorch_form = by_name["default_momentum (batch_norm, PyTorch form)"]["cells"]
    forms = by_name["momentum_form"]["cells"]
    cells = {}
    for a in adapters:
        value, form = pytorch_form[a]["observed"], forms[a]["observed"]
        if value is None or form not in ("weight_on_new", "weight_on_old"):
            cells[a] = {"observed": None, "expected": None, "status": "not-run", "cases": []}
            continue
        native = float(value) if form == "weight_on_new" else 1.0 - float(value)
        cells[a] = {**pytorch_form[a], "observed": f"{native:g} ({form})", "expected": None}
    return {"row": "default_momentum (batch_norm, own form)", "kind": "derived", "cells": cells}


def build_matrix(cells: list[dict], adapters: list[str]) -> dict:
    rows = []
    for convention in CONVENTION_ROWS:
        rows.append({"row": convention, "kind": "convention",
                     "cells": {a: _convention_cell(cells, a, convention) for a in adapters}})
    for convention, layer in DEFAULT_ROWS:
        rows.append({"row": f"{convention} ({layer}, PyTorch form)" if convention == "default_momentum"
                     else f"{convention} ({layer})", "kind": "default",
                     "cells": {a: _convention_cell(cells, a, convention, layer) for a in adapters}})
    rows.insert(len(rows) - 1, _native_momentum_row(rows, adapters))
    for title, case, reading in BEHAVIOUR_ROWS:
        rows.append({"row": title, "kind": "behaviour",
                     "cells": {a: _behaviour_cell(cells, a, case, reading) for a in adapters}})
    return {"adapters": adapters, "rows": rows}


def text_matrix(matrix: dict) -> str:
    """A plain-text rendering for the terminal and the README."""
    adapters = matrix["adapters"]
    width = max(12, *(len(a) for a in adapters))
    head = f"{'':38s}" + "".join(f"{a:>{width + 2}s}" for a in adapters)
    lines = [head]
    for row in matrix["rows"]:
        vals = []
        for a in adapters:
            cell = row["cells"][a]
            v = cell["observed"] or "-"
            mark = "!" if cell["status"] == "disagrees" else ""
            vals.append(f"{(v[:width - 1] + mark):>{width + 2}s}")
        lines.append(f"{row['row'][:38]:38s}" + "".join(vals))
    return "\n".join(lines)
