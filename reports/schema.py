"""What a results file must hold before anything reads it (compare, merge, render, --baseline).

Every reader goes through reports.results.read, which checks the file against SCHEMA below: a file
that passes can be indexed without KeyError or TypeError.  A problem is one line naming the place:
`cells[12] (bn1d_nc@torch).accuracy.error: a string, expected a number or null`.
"""
from __future__ import annotations

OUTCOMES = ("pass", "fail", "xfail", "xpass", "unsupported", "not_installed", "error", "bad_output", "timeout",
            "crashed", "missing")
STATES = ("named", "not_shown", "unclear")


class SchemaError(Exception):
    """Where in the data, and what is wrong there."""


# -- the spec language: a type (or tuple of types), Opt(spec), ListOf(spec), MapOf(spec), OneOf(values),
#    or a dict of key -> spec (the keys are required unless wrapped in Opt)
class Opt:
    def __init__(self, spec):
        self.spec = spec


class ListOf:
    def __init__(self, spec):
        self.spec = spec


class MapOf:
    def __init__(self, spec):
        self.spec = spec


class OneOf:
    def __init__(self, *values):
        self.values = values


NUM = (int, float)
SCALAR = (str, int, float, bool, type(None))
NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null",
         list: "a list", dict: "an object"}

FAILURE = {"kind": str, "message": str}
CONVENTION = {"observed": Opt(str), "state": OneOf(*STATES), "nearest": Opt(str), "margin": Opt(NUM),
              "expected": SCALAR, "cite": Opt(str), "status": str}
MEASURED = {"value": Opt(NUM), "uncertainty": Opt(NUM), "name": Opt(str), "display": str, "status": Opt(str),
            "expected": SCALAR}
OUTPUT = {"error": Opt(NUM), "dtype": str, "precision": str}
ACCURACY = {"error": Opt(NUM), "worst_output": Opt(str), "outputs": MapOf(OUTPUT), "profile": MapOf(str),
            "max_abs": Opt(NUM), "max_rel": Opt(NUM), "max_ulp": Opt(NUM)}
NONFINITE = {"nan": int, "inf": int, "size": int, "unexpected": int}
CELL = {"case": str, "adapter": str, "outcome": OneOf(*OUTCOMES), "message": str, "failures": ListOf(FAILURE),
        "layer": Opt(str), "family": Opt(str), "dtype": Opt(str), "tolerance": Opt(NUM),
        "conventions": MapOf(CONVENTION), "measured": MapOf(MEASURED), "accuracy": Opt(ACCURACY),
        "nonfinite": MapOf(NONFINITE), "behaviour": Opt(str), "layout": Opt(str), "rule": Opt(str),
        "seconds": Opt(NUM), "versions": Opt(MapOf(str)), "output_dtypes": Opt(MapOf(str)),
        "graph": Opt(str)}
MATRIX_CELL = {"observed": Opt(str), "status": str, "expected": SCALAR, "cases": Opt(ListOf(str))}
MATRIX_ROW = {"row": str, "kind": str, "key": Opt(str), "cells": MapOf(MATRIX_CELL)}
MUTANT = {"mutant": str, "bug": Opt(str), "killed": bool, "named": Opt(bool), "caught_by": ListOf(str),
          "named_by": ListOf(str), "margins": MapOf(NUM), "outcomes": MapOf(str), "crashed": Opt(bool),
          "only_generated": Opt(bool)}
RUN = {"complete": bool, "partial": bool, "interrupted": bool, "reasons": ListOf(str)}
LABELS = ("regressed", "improved", "changed", "new")
COMPARISON = {  # reports/compare.py
    "baseline": {"created": Opt(str), "path": Opt(str)}, "compared": int,
    "versions": ListOf({"package": str, "before": Opt(str), "after": Opt(str), "adapters": ListOf(str)}),
    "platform": {"before": Opt(str), "after": Opt(str)},
    "entries": ListOf({"label": OneOf(*LABELS), "adapter": str, "kind": str, "what": str,
                       "cells": ListOf({"case": str, "detail": str})}),
    "counts": {label: int for label in LABELS},
    "not_run": {"cells": int, "adapters": MapOf(int), "whole": ListOf(str)},
    "gradients": Opt({"recorded": {"before": bool, "after": bool}}),
}
GRADIENT_CELL = {"case": str, "adapter": str, "outcome": OneOf(*OUTCOMES), "message": str, "ratios": MapOf(Opt(NUM)),
                 "conventions": MapOf(str), "output_dtypes": MapOf(str), "rule": Opt(str), "seconds": Opt(NUM)}
GRADIENTS = {"cells": ListOf(GRADIENT_CELL), "rows": MapOf(MapOf(str)),  # reports/gradients.py
             "conventions": MapOf(MapOf(ListOf(str)))}
DECISIVENESS = {"smallest_fixture_margin": Opt(NUM), "smallest_fixture_margin_case": Opt(str),
                "smallest_observed_margin": Opt(NUM), "smallest_observed_margin_cell": Opt(str)}
SCHEMA = {
    "schema_version": int, "created": Opt(str), "platform": MapOf(str), "adapters": ListOf(str),
    "versions": MapOf(MapOf(str)), "summary": MapOf(int), "cells": ListOf(CELL),
    "matrix": {"adapters": ListOf(str), "rows": ListOf(MATRIX_ROW)},
    "adapter_info": Opt(MapOf(dict)), "warnings": Opt(ListOf(str)), "decisiveness": Opt(DECISIVENESS),
    "stale_expectations": Opt(ListOf(str)), "expectation_errors": Opt(ListOf(str)), "timings": Opt(dict),
    "mutant_kill_table": Opt(ListOf(MUTANT)),
    "mutant_summary": Opt({"total": int, "killed": int, "survivors": ListOf(str)}),
    "run": Opt(RUN), "comparison": Opt(COMPARISON),
    "gradients": Opt(GRADIENTS),
}


def _type_name(value) -> str:
    return NAMES.get(type(value), type(value).__name__)


def _expected(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    if set(NUM) <= set(types):  # "an integer or a number" says nothing more than "a number"
        types = tuple(t for t in types if t is not int)
    return " or ".join(NAMES.get(t, t.__name__) for t in types)


def check(value, spec, where: str = "", nullable: bool = False) -> None:
    """Raise SchemaError naming the first place where `value` does not fit `spec`."""
    at = f"{where}: " if where else ""
    null = " or null" if nullable else ""
    if isinstance(spec, Opt):
        if value is not None:
            check(value, spec.spec, where, nullable=True)
    elif isinstance(spec, OneOf):
        if value not in spec.values:
            raise SchemaError(f"{at}{value!r} is not one of {', '.join(map(str, spec.values))}")
    elif isinstance(spec, (ListOf, MapOf)):
        kind = list if isinstance(spec, ListOf) else dict
        if not isinstance(value, kind):
            raise SchemaError(f"{at}{_type_name(value)}, expected {NAMES[kind]}{null}")
        items = enumerate(value) if kind is list else value.items()
        for key, item in items:
            check(item, spec.spec, f"{where}[{key}]" if kind is list else f"{where}.{key}" if where else str(key))
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            raise SchemaError(f"{at}{_type_name(value)}, expected an object{null}")
        for key, sub in spec.items():
            if key not in value:
                if not isinstance(sub, Opt):
                    raise SchemaError(f"{at}missing key {key!r}")
                continue
            check(value[key], sub, f"{where}.{key}" if where else key)
    else:  # a type or a tuple of types; bool is an int to Python, never to a results file
        types = spec if isinstance(spec, tuple) else (spec,)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise SchemaError(f"{at}{_type_name(value)}, expected {_expected(types)}{null}")


def validate(data, supported_version: int) -> None:
    """The whole file: its version first (an older file fails on that, not on a missing key), then the
    shape, then what ties the parts together (each cell's adapter is listed, no cell twice)."""
    if not isinstance(data, dict):
        raise SchemaError(f"{_type_name(data)} at the top, expected an object (a normconf results file)")
    if "cells" not in data and "schema_version" not in data:
        raise SchemaError("not a normconf results file (no `schema_version`, no `cells`)")
    version = data.get("schema_version")
    if version != supported_version:
        raise SchemaError(f"schema version {version!r}, this normconf reads {supported_version}: "
                          "regenerate it with this normconf (python -m pytest -n auto)")
    cells = data.get("cells")
    if isinstance(cells, list):  # name the cell, not only its index
        for i, cell in enumerate(cells):
            label = f" ({cell.get('case')}@{cell.get('adapter')})" if isinstance(cell, dict) else ""
            check(cell, CELL, f"cells[{i}]{label}")
    check(data, SCHEMA)
    for i, row in enumerate(data["matrix"]["rows"]):  # the report indexes every column of every row
        absent = [a for a in data["matrix"]["adapters"] if a not in row["cells"]]
        if absent:
            raise SchemaError(f"matrix.rows[{i}] ({row['row']}): no cell for {', '.join(absent)}")
        if row["kind"] == "default" and "key" not in row:
            raise SchemaError(f"matrix.rows[{i}] ({row['row']}): missing key 'key'")
    listed, seen = set(data["adapters"]), set()
    for i, cell in enumerate(data["cells"]):
        key = f"{cell['case']}@{cell['adapter']}"
        if cell["adapter"] not in listed:
            raise SchemaError(f"cells[{i}] ({key}): adapter {cell['adapter']!r} is not in `adapters`")
        if key in seen:
            raise SchemaError(f"cells[{i}]: {key} appears twice")
        seen.add(key)
