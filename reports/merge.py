"""Merge the results shards of a CI matrix (one job per framework) into one results file and report."""
from __future__ import annotations

from pathlib import Path

from normconf.reports import output, results


def _run(cells: list[dict], adapters: list[str], shards: list[dict]) -> dict:
    """The merged run is whole when the shards together cover every built-in adapter and every case,
    the mutant checks ran in one of them, and none was interrupted."""
    from normconf.adapters.registry import BUILTINS
    from normconf.golden.cases import CASES
    partial = []
    absent = [a for a in BUILTINS if a not in adapters]
    if absent:
        partial.append(f"no shard ran {', '.join(absent)}")
    left_out = len(CASES) * len(adapters) - len(cells)
    if left_out > 0:
        partial.append(f"{left_out} of {len(CASES) * len(adapters)} cells in no shard")
    if not any(s.get("mutant_kill_table") for s in shards):
        partial.append("no shard ran the mutant checks")
    stopped = [r for s in shards for r in s.get("run", {}).get("reasons", []) if r.startswith("interrupted")]
    return results.run_status(partial, "; ".join(r.split(": ", 1)[1] for r in stopped) or None)


def merge(paths: list) -> dict:
    shards = [results.read(p) for p in paths]
    cells, adapters, versions, seen = [], [], {}, {}
    stale, errors, wall, mutants = [], [], 0.0, {}
    for path, shard in zip(paths, shards):
        for a in shard["adapters"]:
            if a not in adapters:
                adapters.append(a)
        versions.update(shard["versions"])
        for cell in shard["cells"]:
            key = f"{cell['case']}@{cell['adapter']}"
            if key in seen:
                if cell["outcome"] in ("not_installed", "missing"):
                    continue  # the shard that ran the adapter wins over one that could not
                if seen[key][1]["outcome"] not in ("not_installed", "missing"):
                    raise results.ResultsError(f"{path}: cell {key} is also in {seen[key][0]}: one adapter per shard")
                cells.remove(seen[key][1])
            seen[key] = (path, cell)
            cells.append(cell)
        stale += [s for s in shard.get("stale_expectations", []) if s not in stale]
        errors += [s for s in shard.get("expectation_errors", []) if s not in errors]
        wall = max(wall, shard.get("timings", {}).get("wall_s", 0.0))
        mutants.update({row["mutant"]: row for row in shard.get("mutant_kill_table", [])})
    return results.assemble(cells, adapters=adapters, versions=versions,
                            timings={"wall_s": wall, "shards": [str(p) for p in paths]},
                            stale=stale, expectation_errors=errors, extra=results.mutant_section(list(mutants.values())),
                            run=_run(cells, adapters, shards))


def merge_to(paths: list, out_dir) -> Path:
    output.write_report(merge(paths), Path(out_dir))
    return Path(out_dir)
