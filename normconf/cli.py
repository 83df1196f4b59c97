"""normconf run [PYTEST OPTIONS] | golden generate|check | compare BASELINE.json CURRENT.json
   | merge SHARD.json ... -o DIR | render RESULTS.json -o DIR | table RESULTS.json | sweep FAMILY VERSION...
   | timeline FAMILY | generated ADAPTER SPEC   (also python -m normconf ...; each command has --help)

run: the conformance suite (pytest on normconf.checks with normconf's options: --frameworks, --adapter,
--report-dir, --baseline, ...; any pytest option too, e.g. -n auto).  The report goes to --report-dir,
by default ./normconf-out (reports/out in normconf's checkout).

Exit codes: 0 done (compare: no regression), 1 compare found regressions, 2 an input is missing or
malformed, nothing could be compared, or the output cannot be written: one line on stderr naming the
file and the problem.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from normconf.reports import output, results


class OutputError(Exception):
    pass


def _out_dir(path: str) -> Path:
    """-o is a directory (created if needed) that report.html and results.json go into."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory (-o names the directory the report goes into)")
    return out


def _compare(args) -> int:
    from normconf.reports.changes import text_lines, verdict
    from normconf.reports.compare import compare, exit_code
    baseline, current = results.read(args.baseline), results.read(args.current)
    comparison = compare(baseline, current)
    comparison["baseline"]["path"] = args.baseline
    code = exit_code(comparison)
    print("\n".join(text_lines(comparison) + [verdict(comparison)]), file=sys.stderr if code == 2 else sys.stdout)
    return code


REGRESSIONS_NOTE = "its specification in regressions.json beside it; commit both and the manifest"


def _generated(args) -> int:
    """Judge one generated case specification (the JSON a failure's reproduction line holds)."""
    import json

    from normconf.adapters.registry import get, load_spec
    from normconf.golden.generated import to_case
    from normconf.judge.expectations import ExpectationError, declared_expectation, load_all, undocumented
    from normconf.judge.generated import judge_spec
    from normconf.judge.verdict import NOT_RUN, PASSING
    try:
        spec = json.loads(args.spec)
        to_case(spec)
        adapter = load_spec(args.adapter) if ":" in args.adapter else get(args.adapter)
        expectation = load_all()[0].get(adapter.name) or (declared_expectation(adapter) if ":" in args.adapter
                                                          else None) or undocumented(adapter.name)
    except (ValueError, TypeError, KeyError, ExpectationError) as exc:
        print(f"normconf generated: {args.adapter} {args.spec!r}: {exc}", file=sys.stderr)
        return 2
    cell = judge_spec(adapter, adapter.name, spec, expectation, adapter.availability())
    print(f"{cell['case']}@{args.adapter}: {cell['outcome']}: {cell['message']}")
    if args.save is not None:
        from normconf.golden.generate import NotDecisive
        from normconf.golden.generated import save
        try:
            print(f"saved as case {args.save}: {save(spec, args.save)} (and {REGRESSIONS_NOTE})")
        except (ValueError, NotDecisive, OSError) as exc:
            print(f"normconf generated: {exc}", file=sys.stderr)
            return 2
    return 0 if cell["outcome"] in PASSING + NOT_RUN else 1


def run(argv: list[str]) -> int:
    """The suite: pytest on the installed checks, rooted in the current directory (pytest's cache and the
    default report folder land here, not in site-packages)."""
    import pytest

    from normconf.plugin import CHECKS
    if any(a in ("-h", "--help") for a in argv):
        print("usage: normconf run [--frameworks=A,B] [--adapter=FILE.py:ATTR] [--report-dir=DIR] "
              "[--baseline=FILE] [PYTEST OPTIONS]\n\nThe conformance suite; normconf's options are listed under "
              "'normconf' in `pytest --help`.")
        return 0
    rootdir = [] if any(a.startswith("--rootdir") for a in argv) else [f"--rootdir={Path.cwd()}"]
    # an editable install's checks sit in normconf's checkout, whose ini would send the report there: a run
    # from anywhere else writes to the current directory, as from a wheel
    checkout = CHECKS.parent.parent
    inside = Path.cwd() == checkout or checkout in Path.cwd().parents
    report = [] if inside or any(a.startswith("--report-dir") for a in argv) else ["--report-dir=normconf-out"]
    return int(pytest.main([str(CHECKS), "--normconf", *rootdir, *report, *argv]))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "run":
        return run(argv[1:])
    if argv and argv[0] == "golden":
        from normconf.golden.__main__ import main as golden_main
        return golden_main(argv[1:], prog="normconf golden")
    if argv and argv[0] == "table":
        from normconf.reports.table import main as table_main
        return table_main(argv[1:], prog="normconf table")
    parser = argparse.ArgumentParser(prog="normconf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="the conformance suite (pytest options pass through)", add_help=False)
    sub.add_parser("golden", help="generate | check the golden fixtures", add_help=False)
    sub.add_parser("table", help="the matrix of a results.json as text (--readme FILE rewrites its table)",
                   add_help=False)
    cmp_ = sub.add_parser("compare", help="changes of CURRENT against BASELINE (exit 0 no regression, 1 some, 2 bad input)")
    cmp_.add_argument("baseline")
    cmp_.add_argument("current")
    mrg = sub.add_parser("merge", help="merge CI matrix shards into one results.json and report.html in DIR")
    mrg.add_argument("shards", nargs="+")
    mrg.add_argument("-o", "--out", required=True, metavar="DIR")
    ren = sub.add_parser("render", help="write report.html into DIR from a results.json")
    ren.add_argument("results")
    ren.add_argument("-o", "--out", required=True, metavar="DIR")
    gen = sub.add_parser("generated", help="judge one generated case specification (a failure's reproduction)")
    gen.add_argument("adapter", help="a built-in adapter's name, or a plug-in's module:attribute or file.py:attribute")
    gen.add_argument("spec", help="the specification as JSON")
    gen.add_argument("--save", metavar="NAME", help="also make it a case of the catalog named NAME: its fixture in "
                     "the golden directory, its specification in regressions.json there")
    from normconf import sweep
    sweep.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command == "sweep" and args.bisect:
        from normconf.bisect import bisect
        return bisect(args.family, args.bisect, offline=args.offline, out=Path(args.out), workers=args.workers)
    if args.command in ("sweep", "timeline"):
        return sweep.cli(args)
    if args.command == "generated":
        return _generated(args)
    try:
        if args.command == "compare":
            return _compare(args)
        out = _out_dir(args.out)
        if args.command == "merge":
            from normconf.reports.merge import merge
            data = merge(args.shards)
            written = output.write_report(data, out)
        else:
            from normconf.reports.html import render
            data = results.read(args.results)
            results.write_text(out / "report.html", render(data))
            written = [out / "report.html"]
    except (results.ResultsError, OutputError) as exc:
        print(f"normconf {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"normconf {args.command}: cannot write {exc.filename or args.out}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
