"""python -m reports compare BASELINE.json CURRENT.json | merge SHARD.json ... -o DIR | render RESULTS.json -o DIR
   | sweep FAMILY VERSION... | timeline FAMILY (reports/sweep.py)

Exit codes: 0 done (compare: no regression), 1 compare found regressions, 2 an input is missing or
malformed, nothing could be compared, or the output cannot be written: one line on stderr naming the
file and the problem.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports import results


class OutputError(Exception):
    pass


def _out_dir(path: str) -> Path:
    """-o is a directory (created if needed) that report.html and results.json go into."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory (-o names the directory the report goes into)")
    return out


def _compare(args) -> int:
    from reports.changes import text_lines, verdict
    from reports.compare import compare, exit_code
    baseline, current = results.read(args.baseline), results.read(args.current)
    comparison = compare(baseline, current)
    comparison["baseline"]["path"] = args.baseline
    code = exit_code(comparison)
    print("\n".join(text_lines(comparison) + [verdict(comparison)]), file=sys.stderr if code == 2 else sys.stdout)
    return code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="changes of CURRENT against BASELINE (exit 0 no regression, 1 some, 2 bad input)")
    cmp_.add_argument("baseline")
    cmp_.add_argument("current")
    mrg = sub.add_parser("merge", help="merge CI matrix shards into one results.json and report.html in DIR")
    mrg.add_argument("shards", nargs="+")
    mrg.add_argument("-o", "--out", required=True, metavar="DIR")
    ren = sub.add_parser("render", help="write report.html into DIR from a results.json")
    ren.add_argument("results")
    ren.add_argument("-o", "--out", required=True, metavar="DIR")
    from reports import sweep
    sweep.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("sweep", "timeline"):
        return sweep.cli(args)
    try:
        if args.command == "compare":
            return _compare(args)
        out = _out_dir(args.out)
        if args.command == "merge":
            from reports.merge import merge
            data = merge(args.shards)
            written = results.write_report(data, out)
        else:
            from reports.html import render
            data = results.read(args.results)
            results.write_text(out / "report.html", render(data))
            written = [out / "report.html"]
    except (results.ResultsError, OutputError) as exc:
        print(f"python -m reports {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"python -m reports {args.command}: cannot write {exc.filename or args.out}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
