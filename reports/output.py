"""A run's report on disk: results.json and report.html, side by side, each written atomically.
(Kept apart from results.py, which the HTML renderer reads: no import cycle.)"""
from __future__ import annotations

from pathlib import Path

from normconf.reports import results
from normconf.reports.html import render


def write_report(data: dict, directory: Path) -> list[Path]:
    """results.json and report.html in `directory`, each written atomically."""
    directory = Path(directory)
    results.write(data, directory / "results.json")
    results.write_text(directory / "report.html", render(data))
    return [directory / "results.json", directory / "report.html"]
