"""Regression diff between two results files (a baseline and the current run).

A regression: a cell whose outcome got worse (pass -> anything else, or anything -> error-like), whose
observed variant of a convention changed, whose accuracy got worse by more than its tolerance, or that
vanished from an adapter that still ran.  Exit codes: 0 nothing regressed, 1 something did, 2 the
inputs are missing, unreadable or not comparable.
"""
from __future__ import annotations

from reports import results

GOOD = ("pass", "xfail")


def _key(cell) -> str:
    return f"{cell['case']}@{cell['adapter']}"


def compare(baseline: dict, current: dict) -> tuple[list[str], list[str]]:
    """(regressions, other changes), one line each, naming the cell."""
    base = {_key(c): c for c in baseline["cells"]}
    cur = {_key(c): c for c in current["cells"]}
    ran = {c["adapter"] for c in current["cells"]}
    regressions, changes = [], []
    for key, b in sorted(base.items()):
        c = cur.get(key)
        if c is None:
            (regressions if b["adapter"] in ran else changes).append(
                f"{key}: in the baseline, absent now" + ("" if b["adapter"] in ran else " (adapter not run)"))
            continue
        if b["outcome"] != c["outcome"]:
            line = f"{key}: outcome {b['outcome']} -> {c['outcome']}: {c.get('message', '')[:200]}"
            worse = b["outcome"] in GOOD and c["outcome"] not in GOOD or c["outcome"] in ("error", "crashed", "missing", "timeout")
            (regressions if worse else changes).append(line)
        for conv, entry in sorted(c.get("conventions", {}).items()):
            was = b.get("conventions", {}).get(conv, {}).get("observed")
            if was is not None and was != entry["observed"]:
                regressions.append(f"{key}: {conv} observed {was} -> {entry['observed']}")
        be, ce = (b.get("accuracy") or {}).get("error"), (c.get("accuracy") or {}).get("error")
        if be is not None and ce is not None and ce - be > 1:
            regressions.append(f"{key}: error grew from {be:.3g}x to {ce:.3g}x tolerance")
    for key in sorted(set(cur) - set(base)):
        changes.append(f"{key}: new cell ({cur[key]['outcome']})")
    return regressions, changes


def compare_files(baseline_path, current_path) -> tuple[int, list[str]]:
    try:
        baseline = results.read(baseline_path)
        current = results.read(current_path)
    except results.ResultsError as exc:
        return 2, [f"cannot compare: {exc}"]
    if not {c["adapter"] for c in baseline["cells"]} & {c["adapter"] for c in current["cells"]}:
        return 2, [f"cannot compare: {baseline_path} and {current_path} share no adapter"]
    regressions, changes = compare(baseline, current)
    versions = [f"versions: {a}: {baseline['versions'].get(a)} -> {current['versions'].get(a)}"
                for a in current["versions"] if baseline["versions"].get(a) != current["versions"].get(a)]
    lines = versions + [f"REGRESSION {r}" for r in regressions] + [f"changed {c}" for c in changes]
    lines.append(f"{len(regressions)} regression(s), {len(changes)} other change(s)")
    return (1 if regressions else 0), lines
