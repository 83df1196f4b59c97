"""The JSON results of a run: schema, assembly from cell records, reading with clear errors."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from normconf.golden.cases import CASES
from normconf.reports.matrix import build_matrix, momentum_form_warnings
from normconf.reports.schema import OUTCOMES, SchemaError, validate

SCHEMA_VERSION = 2


class ResultsError(Exception):
    """A results file that cannot be used; names the file and the problem."""


CELL_TESTS = ("::test_golden[", "::test_generated[")  # the checks whose items are (case, adapter) cells


def split_nodeid(nodeid: str) -> tuple[str, str] | None:
    """test_golden[<case>@<adapter>] (or test_generated[...]) -> (case, adapter)."""
    marker = next((m for m in CELL_TESTS if m in nodeid), None)
    if marker is None or not nodeid.endswith("]"):
        return None
    case, sep, adapter = nodeid.split(marker, 1)[1][:-1].rpartition("@")
    return (case, adapter) if sep else None


def run_status(partial: list[str] = (), interrupted: str | None = None) -> dict:
    """Whether a run covers the whole catalog: `partial` says what the selection left out (-k,
    --frameworks, --lf, deselection), `interrupted` why it stopped early (Ctrl-C, -x, a crash limit)."""
    reasons = list(partial) + ([f"interrupted: {interrupted}"] if interrupted else [])
    return {"complete": not reasons, "partial": bool(partial), "interrupted": bool(interrupted), "reasons": reasons}


def unavailable_adapters(data: dict) -> dict[str, str]:
    """adapter -> why it could not be imported, for each adapter whose every cell is not_installed."""
    reasons: dict[str, str] = {}
    for a in data.get("adapters", []):
        mine = [c for c in data.get("cells", []) if c["adapter"] == a]
        if mine and all(c["outcome"] == "not_installed" for c in mine):
            reasons[a] = mine[0]["message"] or "no reason given"
    return reasons


def nothing_ran(data: dict) -> str | None:
    """Why a run produced no result at all: every selected adapter could not be imported (None otherwise)."""
    reasons = unavailable_adapters(data)
    if not data.get("cells") or set(reasons) != set(data.get("adapters", [])):
        return None
    return "nothing could run: " + "; ".join(f"{a} could not be imported ({why})" for a, why in reasons.items())


def is_complete(data: dict) -> bool:
    return data.get("run", {}).get("complete", True)  # files from before `run` existed were whole runs


def run_label(data: dict) -> str:
    """"" for a complete run, else "partial run" / "interrupted run" for titles and terminal lines."""
    run = data.get("run") or {}
    return "interrupted run" if run.get("interrupted") else "partial run" if run.get("partial") else ""


def assemble(cells: list[dict], *, adapters: list[str], versions: dict, timings: dict, stale: list[str],
             expectation_errors: list[str], adapter_info: dict | None = None, warnings: list[str] = (),
             extra: dict | None = None, run: dict | None = None) -> dict:
    """`adapter_info`: per adapter, what it declares (momentum_form, execution mode, why it runs in a
    child process); the matrix's measurements are checked against it.  `run`: run_status()."""
    cells = sorted(cells, key=lambda c: (c["adapter"], c["case"]))
    summary = {o: 0 for o in OUTCOMES}
    for c in cells:
        summary[c["outcome"]] = summary.get(c["outcome"], 0) + 1
    # how far the nearest rival of a named convention was, over every cell: the decisiveness the run saw
    margins = [(v["margin"], c["case"], c["adapter"]) for c in cells for v in c.get("conventions", {}).values()
               if v.get("state") == "named" and v.get("margin") is not None]
    adapter_info = adapter_info or {}
    matrix = build_matrix(cells, adapters)
    from normconf.golden import fixtures  # the decisiveness the fixtures promise, next to what the run saw
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
        "run": run or run_status(),
        **(extra or {}),
    }


def mutant_section(rows: list[dict]) -> dict:
    """The kill table of the mutant checks (judge/mutants.py), when they ran."""
    if not rows:
        return {}
    rows = sorted(rows, key=lambda r: r["mutant"])
    return {"mutant_kill_table": rows,
            "mutant_summary": {"total": len(rows), "killed": sum(r["killed"] for r in rows),
                               "survivors": [r["mutant"] for r in rows if not r["killed"] and not r.get("crashed")],
                               "crashed": [r["mutant"] for r in rows if r.get("crashed")]}}


def write_text(path: Path, text: str) -> None:
    """Atomically: a reader (or a run interrupted while writing) sees the old file or the new one,
    never half of one.  OSError (read-only directory, no space) is the caller's to report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write(results: dict, path: Path) -> None:
    write_text(path, json.dumps(results, indent=1, sort_keys=True, allow_nan=False) + "\n")


def _no_constants(name):
    raise ValueError(f"{name} is not a number a results file holds")


def read(path) -> dict:
    """A results file, validated (reports/schema.py); any problem is a ResultsError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, expected a results.json file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable ({getattr(exc, 'strerror', None) or exc})") from None
    if not text.strip():
        raise ResultsError(f"{path}: empty file")
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:  # JSONDecodeError included: truncated, not JSON at all, NaN
        raise ResultsError(f"{path}: not JSON ({exc})") from None
    try:
        validate(data, SCHEMA_VERSION)
    except SchemaError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    return data
