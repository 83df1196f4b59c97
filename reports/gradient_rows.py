"""The gradient matrix rows read per adapter (issue 23 item 4), for the report's gradient block
(reports/gradient_html.py) and the porting guide's gradient advice: each row's outcome (the worst of its
cells, results.json `gradients.rows`), the worst gradient with its case, the known deviation that explains
it, and the gradient conventions identified (through the batch statistics or not).

A reading is one of: within tolerance, misses (its worst output in tolerances and case), unsupported,
not run.  Two adapters' gradients differ on a row when their readings' classes differ: one within
tolerance and the other missing, or either unsupported while the other ran."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from normconf.golden.gradient_cases import GRADIENT_CASES, GRADIENT_CONVENTIONS
from normconf.judge.gradients import ROWS
from normconf.reports.gradient_compare import worst
from normconf.reports.matrix import known_reason

GOOD = ("pass", "xpass")


@dataclass
class Reading:
    outcome: str                       # the row's worst outcome; "not run" where the adapter has no cell
    cases: list[str] = field(default_factory=list)
    worst_output: str | None = None
    worst_error: float | None = None   # in tolerances; inf for a non-finite or missing output
    worst_case: str | None = None
    deviations: list[str] = field(default_factory=list)  # "rule: reason" of the known deviations on the row
    conventions: list[str] = field(default_factory=list)  # the gradient conventions identified on the row

    @property
    def kind(self) -> str:
        """within, misses, unsupported or not run: what two adapters are compared by."""
        if self.outcome in GOOD:
            return "within"
        if self.outcome in ("unsupported", "not_installed", "not run"):
            return "unsupported" if self.outcome == "unsupported" else "not run"
        return "misses"

    def text(self, conventions: bool = True) -> str:
        """In words; `conventions`: with the gradient conventions identified (the porting guide leaves them
        out where both sides identified the same)."""
        shown = self.conventions if conventions else []
        if self.kind == "within":
            return "; ".join(["within tolerance" + (f" (worst {self.worst_error:.2g}x, {self.worst_output})"
                                                    if self.worst_error is not None else ""), *shown])
        if self.kind != "misses":
            return self.kind
        size = ("no figure" if self.worst_error is None  # an error or a raise: nothing was compared
                else "non-finite" if self.worst_error == float("inf") else f"{self.worst_error:.3g}x the tolerance")
        words = f"misses: {self.worst_output} {size} at {self.worst_case}" if self.worst_output else self.outcome
        return "; ".join([words, *shown, *(f"known deviation {d}" for d in self.deviations)])


def _known(cell: dict) -> str | None:
    """'flax.toml#deviation[7]: use_fast_variance=True by default' for an xfail cell."""
    if not cell.get("rule"):
        return None
    reason = known_reason(cell)
    return f"{cell['rule']}: {reason}" if reason else cell["rule"]


def readings(gradients: dict, adapters: list[str]) -> dict[str, dict[str, Reading]]:
    """row key (basic, dtype, ...) -> adapter -> its reading, every row of ROWS and every listed adapter."""
    out = {row: {a: Reading("not run") for a in adapters} for row in ROWS}
    for cell in gradients.get("cells", []):
        case = GRADIENT_CASES.get(cell["case"])
        if case is None or cell["adapter"] not in adapters or case.row not in out:
            continue
        r = out[case.row][cell["adapter"]]
        r.outcome = gradients["rows"].get(cell["adapter"], {}).get(case.row, cell["outcome"])
        r.cases.append(cell["case"])
        output, error = worst(cell)
        if error is not None and (r.worst_error is None or error > r.worst_error):
            r.worst_output, r.worst_error, r.worst_case = output, error, cell["case"]
        known = _known(cell)
        if known and known not in r.deviations:
            r.deviations.append(known)
        for convention, variant in cell.get("conventions", {}).items():
            text = f"{convention}: {variant}" + ("" if variant == GRADIENT_CONVENTIONS.get(convention, (variant,))[0]
                                                 else " (undocumented)")
            if variant != "neither" and text not in r.conventions:
                r.conventions.append(text)
    return out


def groups(table: dict, adapters: list[str]) -> list[list[str]]:
    """Adapters whose every row reads the same kind (torch and torch_functional): one side of the advice."""
    by: dict[tuple, list[str]] = {}
    for a in adapters:
        by.setdefault(tuple((table[row][a].kind, *sorted(table[row][a].conventions)) for row in ROWS), []).append(a)
    return list(by.values())


def differences(gradients: dict, adapters: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(side a, side b, row title, [a's reading, b's reading]) for each pair of groups and row where their
    gradients differ (their readings' kinds or identified gradient conventions differ; not run is no
    difference).  A side names its adapters; its reading is its first adapter's, with the figures."""
    table = readings(gradients, adapters)
    out = []
    for ga, gb in itertools.combinations(groups(table, adapters), 2):
        for row, title in ROWS.items():
            ra, rb = table[row][ga[0]], table[row][gb[0]]
            other = set(ra.conventions) != set(rb.conventions)
            if (ra.kind != rb.kind or other) and "not run" not in (ra.kind, rb.kind):
                out.append((", ".join(ga), ", ".join(gb), title, [ra.text(other), rb.text(other)]))
    return out


def porting_lines(gradients: dict, adapters: list[str]) -> list[str]:
    """The porting guide's gradient advice: one line per pair of groups and row where they differ."""
    return [f"{title}: {a} {ta}; {b} {tb}" for a, b, title, (ta, tb) in differences(gradients, adapters)]
