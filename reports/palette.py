"""How a matrix cell looks: its background (what it observed) and its mark (what the documentation says).

Colours are categorical, per row: the distinct labels of a row get distinct colours from Paul Tol's
colour-blind-safe "light" scheme, made for cells with black text (https://personal.sron.nl/~pault/,
pale grey left out: it reads as "not run").  Any two are at least MIN_DISTANCE apart in RGB.  Labels
are assigned in a stable order: the cells that agree with their documentation first, then column
order, so a documented, accurate value takes the calm first colours (light cyan, mint) and
never the warm ones.  A row where every cell shows the same value stays white.  A row with more distinct labels than colours reuses them (never in practice:
a row has one label per adapter at most, and the built-ins show at most three).

The documentation status is a mark and a word, never a colour alone.
"""
from __future__ import annotations

import itertools
import math

PALETTE = ("#99DDFF", "#44BB99", "#EEDD88", "#77AADD", "#BBCC33", "#FFAABB", "#EE8866", "#AAAA00")
SAME = "#FFFFFF"  # a row whose cells all show one value
MIN_DISTANCE = 60.0  # Euclidean RGB distance (0-255 per channel); Tol light's closest pair is 63.6

# status -> (mark, words); the HTML and the terminal legend read from here
MARKS = {
    "agrees": ("✓", "as documented"),
    "disagrees": ("✗", "differs from the documentation"),
    "known": ("⚠", "known deviation (a strict xfail)"),
    "mixed": ("?", "mixed: cases disagree"),
    "unclear": ("?", "unclear: matches no variant"),
    "not-shown": ("·", "not shown by any case"),
    "no-doc": ("○", "nothing documented to compare with"),
    "not-run": ("–", "not run"),
}


def label_of(cell: dict) -> str | None:
    """What a cell's colour stands for (older results files have only `observed`)."""
    if cell.get("status") == "not-run":
        return None
    return cell.get("label", cell.get("observed"))


def row_colours(row: dict, adapters: list[str]) -> dict[str, str]:
    """label -> background colour for one matrix row."""
    cells = [row["cells"][a] for a in adapters if a in row["cells"]]
    ordered = [label_of(c) for c in cells if c.get("status") == "agrees"] + [label_of(c) for c in cells]
    labels = list(dict.fromkeys(label for label in ordered if label))
    if len(labels) == 1:  # every adapter alike: no colour, so colour marks where frameworks differ
        return {labels[0]: SAME}
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def distance(a: str, b: str) -> float:
    return math.dist(rgb(a), rgb(b))


def smallest_distance(colours) -> float | None:
    """The closest pair among distinct colours (None for fewer than two)."""
    pairs = list(itertools.combinations(set(colours), 2))
    return min(distance(a, b) for a, b in pairs) if pairs else None
