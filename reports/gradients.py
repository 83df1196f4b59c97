"""The gradient section of results.json (issue 23): every gradient cell, and per adapter the outcome of each
matrix row (golden/gradient_cases.py `row`: gradient through the statistics, dtype, dgamma/dbeta accumulation,
accuracy at large offsets, eval-mode gradient) with the gradient conventions it identified."""
from __future__ import annotations

from collections import defaultdict

from normconf.golden.gradient_cases import GRADIENT_CASES

# how a row reads when its cells differ: the worst outcome wins
_ORDER = ("fail", "error", "timeout", "xpass", "xfail", "pass", "unsupported", "not_installed")


def gradient_section(cells: list[dict]) -> dict:
    if not cells:
        return {}
    rows: dict = defaultdict(dict)
    conventions: dict = defaultdict(dict)
    for cell in sorted(cells, key=lambda c: (c["adapter"], c["case"])):
        case = GRADIENT_CASES.get(cell["case"])
        row = case.row if case else "unknown"
        now = rows[cell["adapter"]].get(row)
        if now is None or _ORDER.index(cell["outcome"]) < _ORDER.index(now):
            rows[cell["adapter"]][row] = cell["outcome"]
        for convention, variant in cell.get("conventions", {}).items():
            seen = conventions[cell["adapter"]].setdefault(convention, [])
            if variant not in seen:
                seen.append(variant)
    return {"gradients": {"cells": sorted(cells, key=lambda c: (c["adapter"], c["case"])),
                          "rows": dict(rows), "conventions": dict(conventions)}}
