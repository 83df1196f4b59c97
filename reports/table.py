"""The conformance matrix as plain text: the terminal summary and the README's table (one renderer).

At most `width` columns and nothing cut: long values are abbreviated (listed in the legend) or wrapped
onto a second line at a space, long row titles wrap, and adapters that do not fit go into another
block with the row titles repeated.  The numbers behind an inaccurate or unclear cell go into notes
under the table.

    normconf.table RESULTS.json                # print it
    normconf.table RESULTS.json --readme README.md   # rewrite the README's table in place
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from normconf.reports.matrix import ordered_counts
from normconf.reports.palette import label_of

WIDTH = 120
GAP = 2
TITLE_MAX = 30
CELL_MAX = 12
SHORT_ADAPTERS = {"torch_functional": "torch_fn", "flax_linen": "linen", "flax_nnx": "nnx",
                  "keras[tensorflow]": "keras[tf]"}
SHORT_TITLES = {"default momentum (BatchNorm, weight on the new batch)": "default momentum (on_new)",
                "default momentum (BatchNorm, the framework's own form)": "default momentum (own form)",
                "cumulative average (momentum=None)": "momentum=None (cumulative)",
                "one value per channel (training)": "one value per channel (train)"}
WORDS = {  # label -> abbreviation, each listed in the legend when used
    "weight_on_new": "on_new", "weight_on_old": "on_old", "cumulative_average": "cumulative",
    "inside_sqrt": "in_sqrt", "added_to_std": "+std", "running_updated": "run_after", "running_previous": "run_before",
    "moved to channels-first": "movedim", "axis argument": "axis arg", "supported": "yes", "not available": "no",
    "trailing only": "no", "per element only": "no", "zeros (beta)": "beta", "N/(N-1) (unbiased)": "N/(N-1)",
    "1 (biased)": "1", "not supported": "n/a",
    "float32_cast_once": "f32_once", "cast_before_weight": "cast_1st", "one_plus_w": "1+w", "mean_square": "mean_sq",
    "promoted": "promoted",
}
MARK_LEGEND = ("marks: ! differs from the documentation, CAPITALS a known deviation (strict xfail), - not run; "
               "no mark: as documented or nothing documented; mixed: the cases disagree, unclear: matches no variant "
               "(see the notes). LN LayerNorm, BN BatchNorm.")
NOTED = ("known", "disagrees", "mixed", "unclear")


def _title(row: dict) -> str:
    title = row["row"]
    return SHORT_TITLES.get(title, title.replace("LayerNorm", "LN").replace("BatchNorm", "BN"))


def _short(label: str, used: dict) -> str:
    short = WORDS.get(label, label)
    if short != label:
        used.setdefault(short, []).append(label)
    return short


def _text(cell: dict, used: dict) -> str:
    label = label_of(cell)
    if label is None:
        return "-"
    short = _short(label, used)
    status = cell.get("status")
    if status in ("mixed", "unclear") and cell.get("counts"):  # how many cases said what, in the cell itself
        short += " (" + ", ".join(f"{_short(v, used)} {n}" for v, n in ordered_counts(cell["counts"])) + ")"
    return short.upper() if status == "known" else short + "!" if status == "disagrees" else short


def _wrap(text: str, width: int) -> list[str]:
    # break at spaces only: a word longer than the column widens the column, it is never cut
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def _blocks(title_w: int, widths: list[int], width: int, gap: int) -> list[list[int]]:
    """Column indices per block: as many columns as fit beside the row titles."""
    blocks, current, used = [], [], title_w
    for i, w in enumerate(widths):
        if current and used + gap + w > width:
            blocks.append(current)
            current, used = [], title_w
        current.append(i)
        used += gap + w
    return blocks + [current]


def _grid(titles, heads, columns, width) -> list[str]:
    """Rows of wrapped cells, columns split into blocks that fit `width` (a narrower gap first, if that
    saves a block)."""
    title_w = max(len(line) for t in titles for line in t)
    widths = [max(len(h), *(len(line) for cell in col for line in cell)) for h, col in zip(heads, columns)]
    gap = GAP if len(_blocks(title_w, widths, width, GAP)) <= len(_blocks(title_w, widths, width, 1)) else 1
    out = []
    for block in _blocks(title_w, widths, width, gap):
        if out:
            out.append("")
        out.append(" " * title_w + "".join(" " * gap + heads[i].ljust(widths[i]) for i in block).rstrip())
        for r, title in enumerate(titles):
            height = max(len(title), *(len(columns[i][r]) for i in block))
            for k in range(height):
                line = (title[k] if k < len(title) else "").ljust(title_w)
                line += "".join(" " * gap + (columns[i][r][k] if k < len(columns[i][r]) else "").ljust(widths[i])
                                for i in block)
                out.append(line.rstrip())
    return out


def _notes(matrix: dict, heads: dict) -> list[str]:
    """Per row, the details of the cells that are not as documented: error, NaN counts, mixed cases."""
    out = []
    for row in matrix["rows"]:
        by_detail: dict[str, list[str]] = {}
        for a in matrix["adapters"]:
            cell = row["cells"][a]
            if cell.get("status") in NOTED:
                detail = cell.get("detail") or ("unclear in " + ", ".join(cell["unclear"]) if cell.get("unclear")
                                                else None)
                if detail:
                    by_detail.setdefault(detail, []).append(heads[a])
        if by_detail:
            out.append(f"{_title(row)}: " + "; ".join(f"{', '.join(ads)}: {d}" for d, ads in by_detail.items()))
    return out


def text_matrix(matrix: dict, width: int = WIDTH) -> str:
    """The matrix, its legend and its notes, every line at most `width` characters."""
    adapters = matrix["adapters"]
    heads = {a: SHORT_ADAPTERS.get(a, a) for a in adapters}
    used: dict[str, list[str]] = {}
    titles = [_wrap(_title(r), TITLE_MAX) for r in matrix["rows"]]
    columns = [[_wrap(_text(r["cells"][a], used), CELL_MAX) for r in matrix["rows"]] for a in adapters]
    lines = _grid(titles, [heads[a] for a in adapters], columns, width)
    legend = [MARK_LEGEND]
    if used:
        legend.append("abbreviations: " + ", ".join(f"{s} = {' / '.join(dict.fromkeys(longs))}"
                                                    for s, longs in used.items()) + ".")
    shortened = [f"{heads[a]} = {a}" for a in adapters if heads[a] != a]
    if shortened:
        legend.append("columns: " + ", ".join(shortened) + ".")
    notes = _notes(matrix, heads)
    if notes:
        legend.append("notes:")
    wrapped = [w for text in legend for w in textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False,
                                                            break_on_hyphens=False)]
    wrapped += [w for text in notes for w in textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ",
                                                           break_long_words=False, break_on_hyphens=False)]
    return "\n".join(lines + [""] + wrapped)


def text_gradients(data: dict, width: int = WIDTH) -> str:
    """The gradient rows (issue 23) under the matrix: per adapter "ok" within tolerance, else the worst
    gradient in tolerances (CAPITALS under a known deviation, as in the matrix); "" when none were recorded."""
    from normconf.judge.gradients import ROWS
    from normconf.reports.gradient_rows import readings
    gradients = data.get("gradients") or {}
    adapters = [a for a in data["adapters"] if a in gradients.get("rows", {})]
    if not adapters:
        return ""
    table = readings(gradients, adapters)

    def cell(r) -> str:
        if r.kind != "misses":
            return {"within": "ok", "unsupported": "n/a", "not run": "-"}[r.kind]
        name = r.worst_output.upper() if r.outcome == "xfail" else r.worst_output
        return f"{name} {'nonfinite' if r.worst_error == float('inf') else f'{r.worst_error:.2g}x'}"
    columns = [[_wrap(cell(table[row][a]), CELL_MAX) for row in ROWS] for a in adapters]
    lines = _grid([_wrap(t, TITLE_MAX) for t in ROWS.values()],
                  [SHORT_ADAPTERS.get(a, a) for a in adapters], columns, width)
    return "\n".join(["gradients (backward pass):", *lines, "gradients: ok within tolerance, else the worst output in tolerances "
                               "(CAPITALS: a known deviation); cells in report.html"])


# -- the README's table is this text, regenerated from the committed baseline --------------------------
BEGIN = "<!-- table: normconf table reports/baselines/pinned.json --readme README.md -->"
END = "<!-- end of table -->"


def readme_block(matrix: dict) -> str:
    return f"{BEGIN}\n```\n{text_matrix(matrix)}\n```\n{END}"


def readme_table(readme: str) -> str:
    """The block between the markers, as the README holds it."""
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[start:end]


def rewrite_readme(readme_path: Path, matrix: dict) -> bool:
    """Replace the README's table with the rendered one; True when it changed."""
    text = readme_path.read_text(encoding="utf-8")
    new = text.replace(readme_table(text), readme_block(matrix))
    if new != text:
        readme_path.write_text(new, encoding="utf-8")
    return new != text


def matrix_of(path) -> dict:
    """The matrix of a results file as this code builds it from the cells, so a baseline written before a
    change of the matrix still renders as a current run would (ResultsError for an unusable file)."""
    from normconf.reports.matrix import build_matrix
    from normconf.reports.results import read
    data = read(path)
    return build_matrix(data["cells"], data["adapters"])


def main(argv=None, prog="python -m normconf.reports.table") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a results.json (or the committed baseline)")
    parser.add_argument("--readme", help="rewrite the table between the markers in this README")
    args = parser.parse_args(argv)
    from normconf.reports.results import ResultsError, read
    try:
        matrix = matrix_of(args.results)
        gradients = "" if args.readme else text_gradients(read(args.results))
    except ResultsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.readme:
        changed = rewrite_readme(Path(args.readme), matrix)
        print(f"{args.readme}: table {'rewritten' if changed else 'already current'}")
    else:
        print(text_matrix(matrix) + (f"\n\n{gradients}" if gradients else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
