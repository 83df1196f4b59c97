"""python -m reports compare BASELINE.json CURRENT.json | merge SHARD.json ... -o DIR | render RESULTS.json -o DIR
   | sweep FAMILY VERSION... | timeline FAMILY (reports/sweep.py)"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports import results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="regressions of CURRENT against BASELINE (exit 0 none, 1 some, 2 bad input)")
    cmp_.add_argument("baseline")
    cmp_.add_argument("current")
    mrg = sub.add_parser("merge", help="merge CI matrix shards into one results.json and report.html")
    mrg.add_argument("shards", nargs="+")
    mrg.add_argument("-o", "--out", required=True)
    ren = sub.add_parser("render", help="write report.html from a results.json")
    ren.add_argument("results")
    ren.add_argument("-o", "--out", required=True)
    from reports import sweep
    sweep.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("sweep", "timeline"):
        return sweep.cli(args)
    if args.command == "compare":
        from reports.compare import compare_files
        code, lines = compare_files(args.baseline, args.current)
        print("\n".join(lines), file=sys.stderr if code == 2 else sys.stdout)
        return code
    try:
        if args.command == "merge":
            from reports.merge import merge_to
            out = merge_to(args.shards, args.out)
        else:
            from reports.html import write_html
            out = Path(args.out)
            write_html(results.read(args.results), out / "report.html")
    except results.ResultsError as exc:
        print(f"python -m reports {args.command}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
