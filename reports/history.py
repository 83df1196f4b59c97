"""What changed when: the results of one family at successive versions (reports/history/<family>/),
reduced to the versions at which each matrix row and each cell changed.

timeline(runs) takes results dicts ordered by version; a run's label is its `sweep.version` (written by
reports/sweep.py), else its creation time.  The wording of render() is a placeholder for the
regression check's own (issue 10).
"""
from __future__ import annotations

import json
from pathlib import Path

from adapters.compat import version_tuple


def label(run: dict) -> str:
    return str(run.get("sweep", {}).get("version") or run.get("created", "?"))


def _changes(values: list[tuple[str, object]]) -> list[dict]:
    """[(version, value)] -> one entry per version where the value differs from the previous run's."""
    out = []
    for (_, before), (version, after) in zip(values, values[1:]):
        if before != after:
            out.append({"version": version, "before": before, "after": after})
    return out


def timeline(runs: list[dict]) -> dict:
    """For every matrix row (per adapter), every cell (case@adapter) and every package the adapters
    report (results["versions"], so a companion's upgrade is seen beside its effect): the first value
    and its changes."""
    rows, cells, packages = {}, {}, {}
    for run in runs:
        version = label(run)
        for module_versions in run.get("versions", {}).values():
            for module, found in module_versions.items():
                packages.setdefault(module, {})[version] = found
        for row in run.get("matrix", {}).get("rows", []):
            for adapter, cell in row["cells"].items():
                rows.setdefault((row["row"], adapter), {})[version] = cell.get("observed")
        for cell in run.get("cells", []):
            cells.setdefault(f"{cell['case']}@{cell['adapter']}", {})[version] = cell["outcome"]
    versions = [label(r) for r in runs]

    def entries(table, key_name):
        out = []
        for key, by_version in table.items():
            values = [(v, by_version.get(v)) for v in versions]
            changes = _changes(values)
            if changes:
                out.append({**key_name(key), "first": {"version": versions[0], "value": values[0][1]},
                            "changes": changes})
        return out

    return {"versions": versions,
            "packages": entries(packages, lambda k: {"package": k}),
            "rows": entries(rows, lambda k: {"row": k[0], "adapter": k[1]}),
            "cells": entries(cells, lambda k: {"cell": k})}


def render(tl: dict) -> list[str]:
    """Plain lines, one per change, in version order."""
    order = {v: i for i, v in enumerate(tl["versions"])}
    found = [(ch["version"], f"installed {e['package']}", ch) for e in tl["packages"] for ch in e["changes"]]
    found += [(ch["version"], f"{e['adapter']} {e['row']}", ch) for e in tl["rows"] for ch in e["changes"]]
    found += [(ch["version"], e["cell"], ch) for e in tl["cells"] for ch in e["changes"]]
    found.sort(key=lambda f: order[f[0]])
    lines = [f"{v}: {what}: {ch['before']} -> {ch['after']}" for v, what, ch in found]
    return [f"versions: {' -> '.join(tl['versions'])}"] + (lines or ["nothing changed"])


def paths(directory) -> list[Path]:
    """The results files of one family's history folder (<version>.json), oldest version first."""
    return sorted(Path(directory).glob("*.json"), key=lambda p: version_tuple(p.stem))


def load(directory) -> list[dict]:
    return [json.loads(p.read_text()) for p in paths(directory)]
