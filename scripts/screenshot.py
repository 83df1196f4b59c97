"""Render report.html in headless Chromium, as a person at a 1400 px wide window sees it.

    python scripts/screenshot.py [REPORT.html] [-o DIR]

writes DIR/report-first-screen.png (1400 x 900) and DIR/report-full-page.png (1400 x the page's height).
The README embeds docs/report-first-screen.png: `python scripts/screenshot.py reports/out/report.html -o docs`.

measure() is what the self-tests use: it copies the page, appends a measuring script to the copy (the
report itself has none), and reads back, through --dump-dom, the page's scroll width and height, the
matrix's right edge and the rendered background colour of every matrix cell.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH, HEIGHT = 1400, 900
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
MEASURE = """<script>
(function () {
  var root = document.documentElement, matrix = document.getElementById('matrix'), rows = {};
  matrix.querySelectorAll('tr[data-row]').forEach(function (tr) {
    var cells = {};
    tr.querySelectorAll('td[data-label]').forEach(function (td) {
      cells[td.getAttribute('data-adapter')] = [td.getAttribute('data-label'), getComputedStyle(td).backgroundColor];
    });
    rows[tr.getAttribute('data-row')] = cells;
  });
  var box = matrix.getBoundingClientRect();
  document.body.setAttribute('data-measure', JSON.stringify({scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth, height: root.scrollHeight, matrixRight: box.right, rows: rows}));
})();
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], profile: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise RuntimeError("chromium not found (Debian: apt-get install chromium)")
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


def measure(report: Path, width: int = WIDTH, height: int = HEIGHT) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "measured.html"
        page.write_text(Path(report).read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
                        encoding="utf-8")
        proc = _run([f"--window-size={width},{height}", "--dump-dom", page.as_uri()], Path(tmp) / "profile")
    marker = 'data-measure="'
    if marker not in proc.stdout:
        raise RuntimeError(f"chromium returned no measurement: {proc.stderr[-2000:]}")
    import html
    return json.loads(html.unescape(proc.stdout.split(marker, 1)[1].split('"', 1)[0]))


def screenshot(report: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc = _run([f"--window-size={width},{height}", f"--screenshot={png}", Path(report).resolve().as_uri()],
                    Path(tmp) / "profile")
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot: {proc.stderr[-2000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", default="reports/out/report.html")
    parser.add_argument("-o", "--out", default="reports/out")
    parser.add_argument("--width", type=int, default=WIDTH)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = measure(Path(args.report), args.width)
    screenshot(Path(args.report), out / "report-first-screen.png", args.width, HEIGHT)
    screenshot(Path(args.report), out / "report-full-page.png", args.width, m["height"])
    fits = m["scrollWidth"] <= m["clientWidth"]
    print(f"wrote {out / 'report-first-screen.png'} and {out / 'report-full-page.png'} ({args.width} x {m['height']}); "
          f"page {'fits' if fits else 'does NOT fit'}: scroll width {m['scrollWidth']} of {m['clientWidth']} px, "
          f"matrix right edge {m['matrixRight']:.0f} px")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
