"""The conformance matrix: conventions, measured defaults and behaviours as rows, adapters as columns.

A convention cell aggregates the cases that show the convention (judge/identify.py): it names a
variant only when they all name that one; several named variants are "mixed"; one named variant beside
cases that match no variant is "unclear".  Either way the counts are in the cell (`counts`, and the
`detail` text beside the label), never only on hover; cases that do not show the convention are left
out, and so are cases where it is unclear under a known deviation (an xfail: the documented loss of
precision hides it there), listed as `unclear_known_deviation`.  A default cell is the measurement of its probe, with its uncertainty; where the probe could not
show a convention its estimate depends on, the run's reading of that convention from the adapter's
other cases of the layer picks the estimate, and a default that is no usable value says what was seen
in words and is unclear.
"""
from __future__ import annotations

import re
from collections import Counter

from normconf.judge import measure
from normconf.judge.measure import nonfinite_text, short_decimal

CONVENTION_ROWS = ("norm_variance", "running_variance", "momentum_form", "eps_placement",
                   "initial_running_stats", "eval_statistics", "training_statistics")
CLASSIC_LAYERS = ("layer_norm", "batch_norm", "batch_norm_eval")  # the cases CONVENTION_ROWS read
# The newer layers, a block of rows each after the classic rows: (row title, kind, convention or measured
# key, the layers read; for a behaviour: the case, how to read it).  Rows no adapter ran are left out.  A default the framework does not have (its probe raises, as documented) says so.
_GN, _IN, _IN_TRACKED = ("group_norm",), ("instance_norm", "instance_norm_tracked"), ("instance_norm_tracked",)
LAYER_ROWS = (
    ("GroupNorm norm_variance", "convention", "norm_variance", _GN),
    ("GroupNorm eps_placement", "convention", "eps_placement", _GN),
    ("GroupNorm group_mapping", "convention", "group_mapping", _GN),
    ("default eps (GroupNorm)", "default", "default_eps", _GN),
    ("default groups (GroupNorm)", "default", "default_groups", _GN),
    ("default channel axis (GroupNorm)", "default", "default_feature_axis", _GN),
    ("mean offset 1e3 x std (GroupNorm)", "behaviour", "stress_gn_offset_1e3", "accuracy"),  # (case, reading)
    ("InstanceNorm norm_variance", "convention", "norm_variance", _IN),
    ("InstanceNorm eps_placement", "convention", "eps_placement", _IN),
    ("default eps (InstanceNorm)", "default", "default_eps", ("instance_norm",)),
    ("InstanceNorm running variance (tracked)", "convention", "running_variance", _IN_TRACKED),
    ("InstanceNorm eval statistics (tracked)", "convention", "instance_eval_statistics", _IN_TRACKED),
)
MEASURED_ROWS = (  # (row title, measured key, layer)
    ("default eps (LayerNorm)", "default_eps", "layer_norm"),
    ("default eps (BatchNorm)", "default_eps", "batch_norm"),
    ("default momentum (BatchNorm, weight on the new batch)", "default_momentum", "batch_norm"),
    ("default feature axis (BatchNorm)", "default_feature_axis", "batch_norm"),
)
OWN_FORM_ROW = "default momentum (BatchNorm, the framework's own form)"
FACTOR_ROW = "running-variance factor"
# Behaviour rows: (title, case, how to read the cell)
BEHAVIOUR_ROWS = (
    ("BatchNorm channels-last input", "bn2d_nhwc", "layout"),
    ("cumulative average (momentum=None)", "bn_cumulative", {"pass": "supported", "unsupported": "not available"}),
    ("one value per channel (training)", "stress_bn_one_value_per_channel", None),
    ("LayerNorm over non-trailing axes", "ln_noncontiguous_1_3", {"pass": "supported", "unsupported": "trailing only"}),
    ("LayerNorm per-feature-axis affine", "ln_affine_per_feature", {"pass": "supported", "unsupported": "per element only"}),
    ("mean offset 1e4 x std (LayerNorm)", "stress_ln_offset_1e4", "accuracy"),
    ("mean offset 1e4 x std (BatchNorm)", "stress_bn_offset_1e4", "accuracy"),
    ("float64 kept float64 (BatchNorm)", "dtype_bn_float64", "float64"),
    # what framework upgrades change (reports/history/): half precision per layer, and its running statistics
    ("float16 LayerNorm", "dtype_ln_float16", "half"),
    ("bfloat16 LayerNorm", "dtype_ln_bfloat16", "half"),
    ("float16 BatchNorm", "dtype_bn_float16", "half"),
    ("bfloat16 BatchNorm", "dtype_bn_bfloat16", "half"),
    ("running statistics stored in (float16 BatchNorm)", "dtype_bn_float16", "stored"),
)
# RMSNorm's rows, together under the LayerNorm and BatchNorm ones: its conventions read from its own
# cases only, its default eps per input dtype (torch's eps=None depends on it), its half-precision outputs.
RMS_CONVENTION_ROWS = (  # (row title, convention)
    ("RMSNorm eps placement", "eps_placement"),
    ("RMSNorm weight form (w or 1 + w)", "rms_weight_form"),
    ("RMSNorm divides by (mean square or variance)", "rms_statistic"),
    ("RMSNorm float16/bfloat16 casting", "rms_casting"),
    ("RMSNorm output dtype (bfloat16 x, float32 weight)", "rms_output_dtype"),
)
RMS_DEFAULT_ROWS = (  # (row title, the probe case)
    ("default eps (RMSNorm, float32)", "rms_probe_default_eps"),
    ("default eps (RMSNorm, bfloat16)", "rms_probe_default_eps_bfloat16"),
    ("default eps (RMSNorm, float16)", "rms_probe_default_eps_float16"),
)
RMS_BEHAVIOUR_ROWS = (
    ("float16 RMSNorm", "rms_float16", "half"),
    ("bfloat16 RMSNorm", "rms_bfloat16", "half"),
)
# Every cell has `observed` (the full reading), and for rendering `label` (what the cell's colour stands for:
# equal labels, equal colours) and `detail` (numbers beside it: uncertainty, error, NaN counts).
UNFIT = "coarser than bfloat16"  # judge/verdict.py precision_of: no arithmetic explains the error
LAYOUT_TWIN = "bn2d_nchw"  # the channels-first case of the layout row's bn2d_nhwc
NOT_RUN = {"observed": None, "label": None, "detail": None, "expected": None, "status": "not-run", "cases": []}
STATUS_OF_OUTCOME = {"pass": "agrees", "xfail": "known", "unsupported": "no-doc"}


def _convention_cell(cells, adapter, convention, layers=CLASSIC_LAYERS) -> dict:
    named, unclear, explained, expected, cite = Counter(), [], [], set(), None
    cells = [c for c in cells if c.get("layer") in layers]
    for c in cells:
        entry = c.get("conventions", {}).get(convention) if c["adapter"] == adapter else None
        if entry is None:
            continue
        if entry["state"] == "named":
            named[entry["observed"]] += 1
            expected.add(entry["expected"])
            cite = cite or entry.get("cite")
        elif entry["state"] == "unclear" and c["outcome"] == "xfail":
            explained.append(c["case"])  # a known deviation (lost precision) hides it there: not evidence
        elif entry["state"] == "unclear":
            unclear.append(c["case"])
    cases = sorted(c["case"] for c in cells if c["adapter"] == adapter
                   and c.get("conventions", {}).get(convention, {}).get("state") == "named")
    counts = {**dict(named.most_common()), **({"unclear": len(unclear)} if unclear else {})}
    if not named:
        return {**NOT_RUN, "observed": f"unclear: {count_text(counts)}" if unclear else None,
                "label": "unclear" if unclear else None, "detail": count_text(counts) if unclear else None,
                "status": "unclear" if unclear else "not-run", "unclear": sorted(unclear), "counts": counts}
    doc = next(iter(expected)) if len(expected) == 1 else None
    if len(named) == 1 and not unclear:
        observed = label = next(iter(named))
        status, detail = "no-doc" if doc is None else ("agrees" if observed == doc else "disagrees"), None
    else:  # the cases that show it do not agree: say how many said what
        label = status = "mixed" if len(named) > 1 else "unclear"
        detail = count_text(counts)
        observed = f"{label}: {detail}"
    return {"observed": observed, "label": label, "detail": detail, "expected": doc, "status": status,
            "cases": cases, "cite": cite, "unclear": sorted(unclear), "counts": counts,
            "unclear_known_deviation": sorted(explained)}


def count_text(counts: dict) -> str:
    """"batch x1, unclear x33": how many cases named each variant, and how many matched none."""
    return ", ".join(f"{v} x{n}" for v, n in ordered_counts(counts))


def ordered_counts(counts: dict) -> list[tuple[str, int]]:
    """Most cases first, unclear last: one order whatever order the dict arrives in (results.json sorts keys)."""
    return sorted(counts.items(), key=lambda vn: (vn[0] == "unclear", -vn[1], vn[0]))


def _measured_cell(cells, adapter, key, layer) -> dict:
    for c in cells:
        if c["adapter"] == adapter and c.get("layer") == layer and key in c.get("measured", {}):
            m = _resolved(c["measured"][key], cells, adapter, layer)
            waived = _waived_reading(c, key)
            if waived:  # the known deviation is why the probe missed: its number is no fact about the default
                return {"observed": waived, "label": "not measurable", "detail": waived, "value": None,
                        "uncertainty": None, "name": None, "expected": m.get("expected"), "status": "unclear",
                        "cases": [c["case"]], "unclear": [c["case"]], "cite": m.get("cite")}
            if m.get("state") == "unclear":  # no usable number: what was seen, in words
                return {"observed": m["display"], "label": "unclear", "detail": m["display"], "value": None,
                        "uncertainty": None, "name": None, "expected": m.get("expected"), "status": "unclear",
                        "cases": [c["case"]], "unclear": [c["case"]], "cite": m.get("cite")}
            return {"observed": m["display"], "label": m["name"] or m["display"], "detail": _plus_minus(m),
                    "value": m["value"], "uncertainty": m["uncertainty"], "name": m["name"],
                    "expected": m.get("expected"), "status": m.get("status", "no-doc"), "cases": [c["case"]],
                    "cite": m.get("cite")}
    return dict(NOT_RUN)


def _waived_reading(cell: dict, key: str) -> str | None:
    """"not measurable: <deviation>" when the probe cell is a known deviation (xfail) whose waived failures
    include this default's own (issue 18): the deviation's cause (torch[onnx] exports training BatchNorm as an
    inference node) is what the probe measured, so the number would claim more than the evidence."""
    if cell["outcome"] != "xfail" or not any(
            f["kind"] in ("default", "unclear") and f["message"].startswith(f"{key}:") for f in cell.get("failures", [])):
        return None
    return f"not measurable: {cell.get('rule') or 'known deviation'}, {known_reason(cell) or 'a known deviation'}"


def known_reason(cell: dict, limit: int = 140) -> str:
    """The first clause of the reason an xfail cell's rule gives (verdict._deviation appends "[known: ...]"):
    up to its measurements, or its first parenthesis where a clause of 40 characters stands before it, at most
    `limit` characters."""
    reason = cell["message"].rpartition("[known")[2].partition(": ")[2].rstrip("]") if cell.get("rule") else ""
    short = re.split(r": | \((?:measured|the |a )", reason)[0]
    if len(short.split(" (")[0]) >= 40:
        short = short.split(" (")[0]
    return short if len(short) <= limit else short[:limit - 1].rstrip() + "…"


def _resolved(m: dict, cells, adapter, layer) -> dict:
    """A measurement read under several variants of conventions its probe does not show: the reading
    under the variants the adapter's other cases of the layer name (all agreeing), else as it is."""
    readings = m.get("alternatives")
    if not readings:
        return m
    given = {c: _run_reading(cells, adapter, layer, c) for c in readings[0]["given"]}
    chosen = next((r for r in readings if r["given"] == given), None)
    if chosen is None:
        return m
    found = measure.default_measurement("default_eps", chosen["value"], chosen["uncertainty"])
    if found["state"] == "named":
        found["display"] += ", with " + ", ".join(f"{c} {v}" for c, v in given.items()) + " from the run's other cases"
    status = ("unclear" if found["state"] == "unclear" else "no-doc" if m.get("expected") is None
              else "agrees" if measure.agrees(found, float(m["expected"])) else "disagrees")
    return {**m, **found, "status": status}


def _run_reading(cells, adapter, layer, convention) -> str | None:
    """The variant every case of this adapter and layer that shows the convention names (None: no such
    case, or they do not all name one variant)."""
    seen = {(e["state"], e["observed"]) for c in cells if c["adapter"] == adapter and c.get("layer") == layer
            for e in [c.get("conventions", {}).get(convention)] if e and e["state"] in ("named", "unclear")}
    return next(iter(seen))[1] if len(seen) == 1 and next(iter(seen))[0] == "named" else None


def _plus_minus(m: dict) -> str | None:
    return None if m["value"] is None else f"{m['value']:.4g} ± {m['uncertainty']:.1g}"


def _own_form_cell(weight: dict, form: dict) -> dict:
    """The measured default momentum as the framework's own argument reads it (the measured form)."""
    if weight.get("label") == "not measurable":
        return dict(weight)
    if weight.get("value") is None or form.get("observed") not in ("weight_on_new", "weight_on_old"):
        return dict(NOT_RUN)
    value = weight["value"] if form["observed"] == "weight_on_new" else 1.0 - weight["value"]
    name = short_decimal(value, weight["uncertainty"]) or f"{value:.4g}"
    return {**weight, "observed": f"{name} ({form['observed']})", "label": name, "detail": form["observed"],
            "value": value, "expected": None, "status": weight["status"]}


def _factor_cell(cells, adapter) -> dict:
    names, unnamed, cases = Counter(), [], []
    for c in cells:
        m = c.get("measured", {}).get("running_variance_factor") if c["adapter"] == adapter else None
        if c.get("layer") != "batch_norm":
            continue  # the BatchNorm row (InstanceNorm's own: "InstanceNorm running variance (tracked)")
        accurate = ((c.get("accuracy") or {}).get("error") or float("inf")) <= 1
        if m is None or not accurate or c.get("conventions", {}).get("running_variance", {}).get("state") != "named":
            continue  # an inaccurate cell's factor is an accuracy figure, shown there
        cases.append(c["case"])
        if m["name"]:
            names[m["name"]] += 1
        elif m["value"] is not None:
            unnamed.append(f"{m['value']:.5g} at N={m['n']} ({c['case']})")
    if not cases:
        return dict(NOT_RUN)
    parts = [name for name, _ in names.most_common()] + unnamed[:2]
    return {"observed": "; ".join(parts), "label": "; ".join(parts), "detail": None, "expected": None,
            "status": "no-doc" if not unnamed else "disagrees", "cases": sorted(cases)}


def nonfinite_summary(cell: dict) -> str | None:
    """'y_train: 24 NaN of 96; y_eval: 8 NaN of 32', for cells that returned NaN or inf where numbers were due."""
    bad = [(o, n) for o, n in sorted((cell.get("nonfinite") or {}).items()) if n.get("unexpected")]
    return "; ".join(nonfinite_text(o, n) for o, n in bad) or None


def _behaviour_cell(cells, adapter, case, reading) -> dict:
    cell = next((c for c in cells if c["adapter"] == adapter and c["case"] == case), None)
    if cell is None or cell["outcome"] in ("not_installed", "missing"):
        return dict(NOT_RUN)
    status = STATUS_OF_OUTCOME.get(cell["outcome"], "disagrees")
    if cell["outcome"] == "unsupported" and not (isinstance(reading, dict) and "unsupported" in reading):
        return {**NOT_RUN, "observed": "not supported", "label": "not supported", "status": "no-doc",
                "cases": [case]}
    if reading == "layout":
        label = "axis argument" if (cell.get("layout") or "").startswith("native") else "moved to channels-first"
        twin = next((c for c in cells if c["adapter"] == adapter and c["case"] == LAYOUT_TWIN), None)
        if status == "disagrees" and twin is not None and _failing(cell) <= _failing(twin):
            status = "agrees"  # it fails only as its channels-first twin does: the layout is handled right
        return {"observed": label, "label": label, "detail": None, "expected": None, "status": status,
                "cases": [case], "kind": "layout"}
    detail = None
    if reading == "accuracy":
        label, detail = _accuracy_reading(cell)
    elif reading == "float64":
        label, detail = _float64_reading(cell)
        status = "agrees" if label == "yes" else "unclear" if label == "not determined" else status
    elif reading == "half":
        label, detail = _half_reading(cell)
        status = "unclear" if detail and "precision not determined" in detail else status
    elif reading == "stored":
        label = cell.get("output_dtypes", {}).get("running_mean") or cell["outcome"]
    elif reading is None:
        label = cell.get("behaviour") or cell["outcome"]
    else:
        label = reading.get(cell["outcome"], cell["outcome"])
    observed = label if detail is None else f"{label}: {detail}"
    return {"observed": observed, "label": label, "detail": detail, "expected": None, "status": status,
            "cases": [case]}


def _failing(cell) -> set[tuple[str, str]]:
    """(kind, what) of each failure: ("convention", "running_variance"), ("accuracy", "misses ...")."""
    return {(f["kind"], f["message"].split(":")[0].split(" ")[0]) for f in cell.get("failures", [])}


def _accuracy_reading(cell) -> tuple[str, str | None]:
    if cell["outcome"] in ("unsupported", "error", "bad_output", "timeout", "crashed"):
        return cell["outcome"], None
    nan = nonfinite_summary(cell)
    error = (cell.get("accuracy") or {}).get("error")
    if error is not None and error <= 1 and not nan:
        return "accurate", None
    parts = [f"{error:.2g}x tolerance"] * (error is not None) + [nan] * bool(nan)
    return "inaccurate", "; ".join(parts) or None


def _half_reading(cell) -> tuple[str, str | None]:
    """A float16/bfloat16 layer: computed (with its error if inaccurate), raises, or upcast output."""
    if cell.get("behaviour") == "raises":
        return "raises", cell["message"].split(":")[0]
    dtypes = {d for o, d in cell.get("output_dtypes", {}).items() if o.startswith("y")}
    if dtypes and dtypes != {cell["dtype"]}:
        return f"{'/'.join(sorted(dtypes))} output", None
    if cell["outcome"] in ("error", "timeout", "crashed"):
        return cell["outcome"], None
    error = (cell.get("accuracy") or {}).get("error")
    if error is not None and error <= 1:
        return "computed", None
    return "computed", "inaccurate" if error is None else f"{error:.2g}x tolerance{_own_profile_note(cell)}"


def _own_profile_note(cell) -> str:
    """Why a float16/bfloat16 layer misses its reference profile, judged like the float64 row against the
    profile that fits best: a convention the case cannot name (within tolerance of its own profile), or
    not determined (no profile fits).  Empty where the miss is precision, or for older results files."""
    outputs = cell["accuracy"].get("outputs", {})
    if any("own_error" not in a for a in outputs.values()):
        return ""
    unfit = sorted(o for o, a in outputs.items() if a["own_precision"] == UNFIT)
    if unfit:
        return f"; precision not determined: no profile fits {', '.join(unfit)}"
    if all(a["own_error"] is not None and a["own_error"] <= 1 for a in outputs.values()):
        profile = cell["accuracy"].get("profile") or {}
        other = [f"{c} {v['nearest']}" for c, v in cell.get("conventions", {}).items()  # those that matter here
                 if v.get("nearest") not in (None, profile.get(c)) and (v.get("margin") or 0) > 1]
        return f"; a convention, not precision: within tolerance of its own profile ({', '.join(other) or 'nearest'})"
    return ""


def _float64_reading(cell) -> tuple[str, str | None]:
    """Precision judged against the implementation's own profile (the one that fits best), so a convention
    nobody listed is not read as lost precision: where no profile fits, the precision is not determined."""
    acc = cell.get("accuracy")
    if not acc:
        return cell["outcome"], None
    precision = {o: a.get("own_precision", a["precision"]) for o, a in acc["outputs"].items()}
    unfit = sorted(o for o, p in precision.items() if p == UNFIT)
    if unfit:
        return "not determined", f"no profile fits {', '.join(unfit)}"
    coarse = [(o, a) for o, a in sorted(acc["outputs"].items()) if a["dtype"] != "float64" or precision[o] != "float64"]
    if not coarse:
        return "yes", None
    o, a = coarse[0]
    return "no", f"{o} {a['dtype']}" if a["dtype"] != "float64" else f"{o} in {precision[o]} precision"


def build_matrix(cells: list[dict], adapters: list[str]) -> dict:
    rows = [{"row": c, "kind": "convention", "cells": {a: _convention_cell(cells, a, c) for a in adapters}}
            for c in CONVENTION_ROWS]
    forms = rows[CONVENTION_ROWS.index("momentum_form")]["cells"]
    for title, key, layer in MEASURED_ROWS:
        rows.append({"row": title, "kind": "default", "key": key,
                     "cells": {a: _measured_cell(cells, a, key, layer) for a in adapters}})
        if key == "default_momentum":
            rows.append({"row": OWN_FORM_ROW, "kind": "derived",
                         "cells": {a: _own_form_cell(rows[-1]["cells"][a], forms[a]) for a in adapters}})
    rows.append({"row": FACTOR_ROW, "kind": "measured", "cells": {a: _factor_cell(cells, a) for a in adapters}})
    for title, case, reading in BEHAVIOUR_ROWS:
        rows.append({"row": title, "kind": "behaviour",
                     "cells": {a: _behaviour_cell(cells, a, case, reading) for a in adapters}})
    rows += rms_rows(cells, adapters)
    # a layer the run did not reach adds no rows (a run of the classic cases reads as before)
    rows += [r for r in (_layer_row(cells, adapters, *spec) for spec in LAYER_ROWS)
             if any(cell["status"] != "not-run" for cell in r["cells"].values())]
    for a in adapters:
        if _documents_nothing(cells, a):  # the legend: no mark where nothing is documented to differ from
            for row in rows:
                if row["cells"][a]["status"] == "disagrees":
                    row["cells"][a] = {**row["cells"][a], "status": "no-doc"}
    return {"adapters": adapters, "rows": rows}


def rms_rows(cells, adapters) -> list[dict]:
    """RMSNorm's conventions, default eps per dtype and half-precision rows (RMS_*_ROWS)."""
    rows = [{"row": title, "kind": "convention", "convention": c, "layer": "rms_norm",
             "cells": {a: _convention_cell(cells, a, c, ("rms_norm",)) for a in adapters}}
            for title, c in RMS_CONVENTION_ROWS]
    for title, case in RMS_DEFAULT_ROWS:
        probe = [c for c in cells if c["case"] == case]
        rows.append({"row": title, "kind": "default", "key": "default_eps", "layer": "rms_norm",
                     "cells": {a: _measured_cell(probe, a, "default_eps", "rms_norm") for a in adapters}})
    rows += [{"row": title, "kind": "behaviour", "cells": {a: _behaviour_cell(cells, a, case, reading)
                                                          for a in adapters}} for title, case, reading in RMS_BEHAVIOUR_ROWS]
    return rows


def _layer_row(cells, adapters, title, kind, key, layers) -> dict:
    if kind == "convention":
        return {"row": title, "kind": kind, "cells": {a: _convention_cell(cells, a, key, layers) for a in adapters}}
    if kind == "behaviour":  # key: the case, layers: how to read it
        return {"row": title, "kind": kind, "cells": {a: _behaviour_cell(cells, a, key, layers) for a in adapters}}
    return {"row": title, "kind": kind, "key": key,
            "cells": {a: _measured_cell(cells, a, key, layers[0]) if _has_measured(cells, a, key, layers[0])
                      else _no_default_cell(cells, a, key, layers[0]) for a in adapters}}


def _has_measured(cells, adapter, key, layer) -> bool:
    return any(c["adapter"] == adapter and c.get("layer") == layer and key in c.get("measured", {}) for c in cells)


def _no_default_cell(cells, adapter, key, layer) -> dict:
    """The probe of a default the layer does not have (torch's GroupNorm num_groups): it raises, as documented."""
    probe = next((c for c in cells if c["adapter"] == adapter and c.get("layer") == layer
                  and c["case"].startswith(f"probe_{key}") and c.get("behaviour") == "raises"), None)
    if probe is None:
        return dict(NOT_RUN)
    status = "agrees" if probe["outcome"] == "pass" else "disagrees"
    return {**NOT_RUN, "observed": "none (raises)", "label": "none (raises)", "status": status, "cases": [probe["case"]]}


def _documents_nothing(cells, adapter) -> bool:
    """No cell of the adapter was judged against anything it documents: no documented convention or
    default, no declared outcome or deviation."""
    mine = [c for c in cells if c["adapter"] == adapter]
    documented = any(e.get("expected") is not None for c in mine
                     for e in (*c.get("conventions", {}).values(), *c.get("measured", {}).values()))
    return bool(mine) and not documented and not any(c.get("rule") for c in mine)


def momentum_form_warnings(matrix: dict, declared: dict[str, str]) -> list[str]:
    """Adapters whose declared momentum_form contradicts the measured one: every momentum the suite
    translated for them was wrong."""
    forms = next(r for r in matrix["rows"] if r["row"] == "momentum_form")["cells"]
    out = []
    for adapter, form in declared.items():
        measured = forms.get(adapter, {}).get("observed")
        if form and measured in ("weight_on_new", "weight_on_old") and measured != form:
            out.append(f"{adapter} declares momentum_form={form}, but the probes measure {measured}: every momentum "
                       f"normconf translated for it was wrong")
    return out
