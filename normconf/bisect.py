"""normconf sweep FAMILY --bisect VERSION: who moved a step's readings.  A kept step usually moves the
framework and its companions together (flax with jax and jaxlib, keras with tensorflow, jax and torch); the
step is run again once per package that moved, from the step's starting versions with only that package
moved (as `asv find` does for commits), and the runs are kept under <family>/bisect/<VERSION>/<package>.json,
where the timeline (reports/history.py) reads them to name the package whose move alone shows a change.
"""
from __future__ import annotations

import sys
from pathlib import Path

from normconf import sweep
from normconf.adapters.compat import version_tuple
from normconf.reports import history

# a distribution whose import name differs: the timeline names packages as the adapters report them
IMPORT_NAME = {"tensorflow-cpu": "tensorflow"}


def units(family: str) -> dict[str, str]:
    """What a bisection moves one at a time: distribution name -> the spec it is pinned by.  A companion's
    own companions follow it (jax[cpu] pins jaxlib to jax)."""
    fam = sweep.FAMILIES[family]
    return {sweep.dist_name(fam.package): fam.package, **{sweep.dist_name(c): c for c in fam.companions}}


def bisection_plan(family: str, before: dict, after: dict) -> list[tuple[str, str, list[str]]]:
    """One run per package that moved from `before` to `after` (kept runs): (package, framework version,
    pins) with every other unit held at `before`'s installed version and only that package at `after`'s."""
    was, now = before["sweep"]["installed"], after["sweep"]["installed"]
    framework = sweep.dist_name(sweep.FAMILIES[family].package)
    plan = []
    for moved in (u for u in units(family) if was.get(u) != now.get(u)):
        held = {u: (now if u == moved else was).get(u) for u in units(family)}
        version = held.pop(framework)
        pins = [f"{units(family)[u]}=={v}" for u, v in sorted(held.items()) if v]
        plan.append((moved, version, pins))
    return plan


def bisect(family: str, to_version: str, *, offline: bool = False, out: Path = sweep.HISTORY, workers: int = 2) -> int:
    """Re-run the step that ends at `to_version` once per package that moved, holding the others at the
    step's starting versions (as `asv find` does for commits); kept under out/<family>/bisect/<to>/."""
    folder = Path(out) / family
    runs = {history.label(r): r for r in history.load(folder)}
    order = sorted(runs, key=version_tuple)
    if to_version not in runs or order.index(to_version) == 0:
        print(f"sweep --bisect: {to_version!r} is not a kept version after another in {folder} "
              f"(kept: {', '.join(order) or 'none'})", file=sys.stderr)
        return 2
    before, after = runs[order[order.index(to_version) - 1]], runs[to_version]
    plan = bisection_plan(family, before, after)
    if len(plan) < 2:
        print(f"sweep --bisect: only {', '.join(p for p, _, _ in plan) or 'no package'} moved from "
              f"{history.label(before)} to {to_version}: nothing to bisect")
        return 0
    missed = []
    for package, version, pins in plan:
        print(f"bisect {history.label(before)} -> {to_version}: {package} moved alone ({family} {version}, "
              f"{', '.join(pins)})")
        data = sweep.run_version(family, version, pins, offline=offline, workers=workers)
        if data is None:
            missed.append(package)
            print(f"  {package} moved alone: not installable with {', '.join(pins)} (see above); the timeline "
                  f"says what it could not attribute")
            continue
        data["sweep"]["bisect"] = {"from": history.label(before), "to": to_version, "moved": package}
        sweep.keep_run(data, folder / "bisect" / to_version / f"{IMPORT_NAME.get(package, package)}.json")
    print(f"\ntimeline of {family}:")
    print("\n".join(history.render(history.timeline(history.load(folder), history.load_bisections(folder)))))
    return 1 if missed else 0
