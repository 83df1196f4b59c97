"""Which cases catch which mutants (judge/mutants.py), and by how many tolerances: the README's table.

    python scripts/mutant_table.py            # markdown table on stdout
    python scripts/mutant_table.py --all      # every catching case, not only the three largest margins

A margin is the caught cell's error in tolerances of its fixture (or, for a rounding-bias failure, the mean
signed error in thresholds); '-' when the case caught it without a number (a raise, a wrong shape or dtype).
A mutant "rests on a single case" when only one case catches it by at least 3; "only by generated cases" when
no catalog case catches it, only the default draw of generated cases (golden/generated.py).  A script that prints figures,
not a timed test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from normconf.judge.mutants import MUTANTS, kill_record, unavailable  # noqa: E402

DECISIVE = 3.0


def rows() -> list[dict]:
    return [kill_record(m) for m in MUTANTS if not unavailable(m)]


def _margin(row, case) -> str:
    m = row["margins"].get(case)
    return "-" if m is None else f"{m:.3g}" if m < 1e6 else f"{m:.0e}"


def _size(row, case) -> float:
    """A catch's margin for ranking; one without a finite error (a raise, NaN, a wrong dtype) is decisive."""
    m = row["margins"].get(case)
    return float("inf") if m is None else m


def table(records, show_all=False) -> str:
    out = ["| mutant | caught by (tolerances) | cases >= 3 | rests on one case | only by generated cases |",
           "|---|---|---|---|---|"]
    for row in records:
        ranked = sorted(row["caught_by"], key=lambda c: -_size(row, c))
        strong = [c for c in row["caught_by"] if _size(row, c) >= DECISIVE]
        shown = ranked if show_all else ranked[:3]
        more = "" if show_all or len(ranked) <= 3 else f", +{len(ranked) - 3} more"
        caught = ", ".join(f"{c} ({_margin(row, c)})" for c in shown) + more
        out.append(f"| {row['mutant']} | {caught or 'SURVIVED'} | {len(strong)} | {'yes' if len(strong) == 1 else ''} "
                   f"| {'yes' if row.get('only_generated') else ''} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="list every catching case")
    args = parser.parse_args(argv)
    records = rows()
    print(table(records, args.all))
    single = [r["mutant"] for r in records if sum(_size(r, c) >= DECISIVE for c in r["caught_by"]) == 1]
    print(f"\n{sum(r['killed'] for r in records)} of {len(records)} mutants killed; resting on a single case: "
          f"{', '.join(single) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
