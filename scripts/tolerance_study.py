"""How much of the tolerance correct implementations use: the study behind golden/tolerance.py's constants.

    python scripts/tolerance_study.py                 # committed fixtures + 5 re-draws per case, everything installed
    python scripts/tolerance_study.py --draws 20 --frameworks torch,flax

Runs the correct reference implementations (adapters/correct.py: two-pass, pairwise, strictly sequential
float32 sums, Welford, blocked Chan merges, running buffers in the input dtype, batch statistics held in the
input dtype) and every installed framework on the committed fixtures and on re-draws (scripts/redraw.py),
each against its documented profile, and prints per implementation and dtype (every error at its output's own
scale, max(max|expected|, floor): golden/tolerance.py, output_floors):
- the median and worst error / tolerance (the criterion: the worst correct one uses at most about half);
- for float32/float64, the K each needs on its own: worst (error - 2 u_out) / (u_stat (sqrt(n) + offset));
- for float16/bfloat16, the worst error per output in units of u_out;
- the rounding bias: worst |mean signed ULP| / threshold (golden/bias.py), next to a truncating mutant's.
A script that prints figures, not a timed test.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys

from redraw import REPO, Draw, adapters_to_run, draw, run_cell  # noqa: F401 (REPO puts the repo on sys.path)

from normconf.golden import fixtures  # noqa: E402
from normconf.golden.cases import CASES  # noqa: E402
from normconf.golden.generate import conditioning  # noqa: E402
from normconf.golden.tolerance import C_BUF, C_OUT, UNIT_ROUNDOFF, K  # noqa: E402

DTYPES = ("float32", "float64", "float16", "bfloat16")


def k_needed(cell, d: Draw) -> float:
    """The K this result needs: its worst (error - 2 u_out) / (u_stat (sqrt(n) + offset))."""
    u_out = UNIT_ROUNDOFF[d.case.dtype]
    u_stat = min(u_out, UNIT_ROUNDOFF["float32"])
    unit = u_stat * (math.sqrt(d.case.reduction_size) + conditioning(d.case, d.inputs))
    errors = [r * d.tolerances[k] for k, r in cell.ratios.items() if not k.endswith(" bias")]
    return max(0.0, (max(errors) - 2 * u_out) / unit)


def collect(chosen, draws: int):
    """rows of (implementation, dtype, source, case, worst ratio, worst output, K needed, per-output u_out)."""
    rows = []
    for name, case in sorted(CASES.items()):
        sources = [("committed", Draw(case, fixtures.load_case(name)))]
        sources += [(f"draw {i}", draw(case, i)) for i in range(1, draws + 1)]
        for source, d in sources:
            for impl, (adapter, expectation) in chosen.items():
                cell = run_cell(adapter, impl, expectation, d, 0)
                if not cell.ratios:
                    continue
                output, ratio = max(((k, v) for k, v in cell.ratios.items() if not k.endswith(" bias")),
                                    key=lambda kv: kv[1])
                bias = max((v for k, v in cell.ratios.items() if k.endswith(" bias")), default=None)
                u_out = UNIT_ROUNDOFF[case.dtype]
                per_output = {k: v * d.tolerances[k] / u_out for k, v in cell.ratios.items() if not k.endswith(" bias")}
                rows.append({"impl": impl, "dtype": case.dtype, "source": source, "case": name, "ratio": ratio,
                             "output": output, "k": k_needed(cell, d), "u_out": per_output, "bias": bias,
                             "status": cell.status})
    return rows


def _summary(values, names) -> str:
    if not values:
        return "-"
    worst = max(range(len(values)), key=values.__getitem__)
    return f"{statistics.median(values):.3f} / {values[worst]:.3f} ({names[worst]})"


def print_table(rows, impls, title, pick, fmt=_summary, dtypes=DTYPES):
    print(f"\n{title}")
    for impl in impls:
        cells = []
        for dtype in dtypes:
            mine = [r for r in rows if r["impl"] == impl and r["dtype"] == dtype and pick(r) is not None]
            cells.append(f"{dtype}: " + fmt([pick(r) for r in mine], [f"{r['case']} {r['source']}" for r in mine]))
        print(f"  {impl:24s} " + " | ".join(cells))


def truncation_bias() -> str:
    """The same bias figure for a mutant that truncates float16/bfloat16 outputs, for comparison."""
    from normconf.judge.expectations import load_all
    from normconf.judge.mutants import MUTANTS_BY_NAME
    adapter = MUTANTS_BY_NAME["output_truncated_toward_zero"].make()
    numpy_expectation = load_all()[0]["numpy"]
    figures = []
    for name, case in sorted(CASES.items()):
        if case.dtype in ("float16", "bfloat16"):
            cell = run_cell(adapter, "numpy", numpy_expectation, Draw(case, fixtures.load_case(name)), 0)
            bias = max((v for k, v in cell.ratios.items() if k.endswith(" bias")), default=None)
            if bias is not None:
                figures.append((bias, name))
    return ", ".join(f"{name} {b:.1f}" for b, name in sorted(figures, reverse=True))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=5, help="re-draws per case besides the committed fixture")
    parser.add_argument("--frameworks", default=None, help="comma-separated adapters or families (default: all)")
    args = parser.parse_args(argv)
    chosen = adapters_to_run(args.frameworks, True)
    try:
        rows = collect(chosen, args.draws)
    finally:
        for adapter, _ in chosen.values():
            if hasattr(adapter, "close"):
                adapter.close()
    rows = [r for r in rows if r["status"] != "known"]   # known deviations are not correct implementations
    impls = list(chosen)
    print(f"K = {K:g}, C_OUT = {C_OUT:g}, C_BUF = {C_BUF:g}; errors at each output's own scale; "
          "known deviations left out")
    for label, pick_source in (("committed fixtures", lambda r: r["source"] == "committed"),
                               (f"re-draws ({args.draws} per case)", lambda r: r["source"] != "committed")):
        sub = [r for r in rows if pick_source(r)]
        print_table(sub, impls, f"error / tolerance, median / worst (case), {label}:", lambda r: r["ratio"])
    print_table(rows, impls, "K needed on its own (float32/float64), median / worst, all draws:",
                lambda r: r["k"], dtypes=("float32", "float64"))
    for output in ("y", "y_train", "running_mean", "running_var", "y_eval"):
        print_table(rows, impls, f"worst error in u_out, {output} (float16/bfloat16), median / worst, all draws:",
                    lambda r, o=output: r["u_out"].get(o), dtypes=("float16", "bfloat16"))
    print_table(rows, impls, "rounding bias |mean| / threshold (float16/bfloat16), median / worst, all draws:",
                lambda r: r["bias"], dtypes=("float16", "bfloat16"))
    print(f"\ntruncating mutant's rounding bias / threshold on the committed fixtures: {truncation_bias()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
