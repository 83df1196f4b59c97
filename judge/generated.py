"""One generated case specification (golden/generated.py) judged on one adapter: the catalog's cell,
with the one-line reproduction a failure prints."""
from __future__ import annotations

from normconf.golden.generated import fixture_of, name_of, reproduction, to_json
from normconf.judge.verdict import run_cell


def judge_spec(adapter, adapter_name: str, spec: dict, expectation, unavailable: str | None) -> dict:
    cell = run_cell(adapter, adapter_name, name_of(spec), expectation, unavailable, fixture=fixture_of(to_json(spec)))
    # a plug-in is named by its module:attribute (or file.py:attribute), which the command can load
    cell["reproduction"] = reproduction(getattr(adapter, "spec", None) or adapter_name, spec)
    return cell
