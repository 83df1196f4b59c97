"""The JSON results of a run: schema, assembly from cell records, reading with clear errors."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from golden.cases import CASES
from reports.matrix import build_matrix, momentum_form_warnings

SCHEMA_VERSION = 2
OUTCOMES = ("pass", "fail", "xfail", "xpass", "unsupported", "not_installed", "error", "bad_output", "timeout",
            "crashed", "missing")


class ResultsError(Exception):
    """A results file that cannot be used; names the file and the problem."""


def split_nodeid(nodeid: str) -> tuple[str, str] | None:
    """test_golden[<case>@<adapter>] -> (case, adapter)."""
    if "::test_golden[" not in nodeid or not nodeid.endswith("]"):
        return None
    case, sep, adapter = nodeid.split("::test_golden[", 1)[1][:-1].rpartition("@")
    return (case, adapter) if sep else None


def assemble(cells: list[dict], *, adapters: list[str], versions: dict, timings: dict, stale: list[str],
             expectation_errors: list[str], adapter_info: dict | None = None, warnings: list[str] = (),
             extra: dict | None = None) -> dict:
    """`adapter_info`: per adapter, what it declares (momentum_form, execution mode, why it runs in a
    child process); the matrix's measurements are checked against it."""
    cells = sorted(cells, key=lambda c: (c["adapter"], c["case"]))
    summary = {o: 0 for o in OUTCOMES}
    for c in cells:
        summary[c["outcome"]] = summary.get(c["outcome"], 0) + 1
    # how far the nearest rival of a named convention was, over every cell: the decisiveness the run saw
    margins = [(v["margin"], c["case"], c["adapter"]) for c in cells for v in c.get("conventions", {}).values()
               if v.get("state") == "named" and v.get("margin") is not None]
    adapter_info = adapter_info or {}
    matrix = build_matrix(cells, adapters)
    from golden import fixtures  # the decisiveness the fixtures promise, next to what the run saw
    fixture_margins = []
    for name in CASES:
        try:
            m = fixtures.load_case(name).meta["decisiveness_margin"]
        except fixtures.FixtureError:
            continue
        if m is not None:
            fixture_margins.append((m, name))
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": {"system": platform.platform(), "python": platform.python_version(),
                     "machine": platform.machine()},
        "adapters": adapters,
        "versions": versions,
        "summary": summary,
        "cells": cells,
        "matrix": matrix,
        "adapter_info": adapter_info,
        "warnings": list(warnings) + momentum_form_warnings(
            matrix, {a: i.get("momentum_form") for a, i in adapter_info.items()}),
        "decisiveness": {
            "smallest_fixture_margin": min(fixture_margins)[0] if fixture_margins else None,
            "smallest_fixture_margin_case": min(fixture_margins)[1] if fixture_margins else None,
            "smallest_observed_margin": min(margins)[0] if margins else None,
            "smallest_observed_margin_cell": f"{min(margins)[1]}@{min(margins)[2]}" if margins else None,
        },
        "stale_expectations": stale,
        "expectation_errors": expectation_errors,
        "timings": timings,
        **(extra or {}),
    }


def mutant_section(rows: list[dict]) -> dict:
    """The kill table of the mutant checks (tests/self/mutants.py), when they ran."""
    if not rows:
        return {}
    rows = sorted(rows, key=lambda r: r["mutant"])
    return {"mutant_kill_table": rows,
            "mutant_summary": {"total": len(rows), "killed": sum(r["killed"] for r in rows),
                               "survivors": [r["mutant"] for r in rows if not r["killed"]]}}


def write(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "cells" not in data:
        raise ResultsError(f"{path}: not a normconf results file (no `cells`)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"{path}: schema version {data.get('schema_version')!r}, this normconf reads {SCHEMA_VERSION}")
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or not {"case", "adapter", "outcome"} <= set(cell):
            raise ResultsError(f"{path}: cell #{i} lacks case/adapter/outcome")
    return data
