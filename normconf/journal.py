"""A conformance run's lock and journal, both in its report directory; they keep faults from losing
results or mixing two runs.

- The lock (.normconf-run.lock, the owner's pid and start time) is taken by the controller before any
  cell runs.  A second run into the same folder while the owner lives is refused at once (exit 2, one
  line naming the owner's pid): two writers would lose each other's cells.  A lock whose pid is gone is
  the mark of a run that died (os._exit, a kill, a stuck plug-in stopped under -n 0).
- The journal (.normconf-journal.jsonl) is one JSON line per event, appended and flushed as it happens:
  the run's header, each cell's start and each cell and mutant record.  A process that dies loses
  nothing written before.  An xdist worker writes one thing to it: the timeout record of a plug-in that
  swallowed its deadline, just before the worker stops itself (judge/verdict.py deadline).
- The next run into the folder, finding a dead owner's lock, turns its journal into that run's partial
  report first (partial/ where a complete report is kept): the cells it finished, and the one that was
  running when it died, named as crashed.  A run that ends normally removes both files.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCK = ".normconf-run.lock"
JOURNAL = ".normconf-journal.jsonl"
ENV = "NORMCONF_JOURNAL"  # the journal's path, for workers (set by the controller, inherited)


class RunInUse(Exception):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def acquire(report_dir: Path) -> dict | None:
    """Take the folder's lock.  Returns the dead previous owner's lock contents (its journal is to be
    recovered), else None.  Raises RunInUse naming a live owner; OSError where the folder is unwritable
    (the caller's to report)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    lock = report_dir / LOCK
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    previous = None
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(lock)
            since = time.strftime("%H:%M:%S", time.localtime(owner.get("started", 0)))
            if owner.get("host") not in (None, socket.gethostname()):  # a shared folder: its pid cannot be asked
                raise RunInUse(f"report directory {report_dir} is in use by a normconf run on {owner['host']} (pid "
                               f"{owner.get('pid')}, since {since}); if that run is gone, delete {lock}")
            if owner.get("pid") and _alive(owner["pid"]):
                raise RunInUse(f"report directory {report_dir} is in use by another normconf run (pid "
                               f"{owner['pid']}, since {since}): wait for it, or give another --report-dir")
            lock.unlink(missing_ok=True)  # its owner died: the caller recovers its journal
            previous = owner
            continue
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        return previous
    raise RunInUse(f"report directory {report_dir}: another run keeps taking its lock ({lock})")


def _read_lock(lock: Path) -> dict:
    try:
        owner = json.loads(lock.read_text())
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}  # half-written by a run that died while creating it: a dead owner


def release(report_dir: Path) -> None:
    (report_dir / JOURNAL).unlink(missing_ok=True)
    lock = report_dir / LOCK
    if _read_lock(lock).get("pid") == os.getpid():
        lock.unlink(missing_ok=True)


def append(record: dict, path: str | Path | None = None) -> None:
    """One line, flushed (not fsynced: a dead process's writes survive; a dead machine is not a case)."""
    path = path or os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")
    except OSError:
        pass  # an unwritable report directory is reported once, when the report is written


def read(path: Path) -> list[dict]:
    """The journal's records; a line cut short by the process's death is left out."""
    out = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def final_cell(path: Path, nodeid: str) -> dict | None:
    """The record a worker left for `nodeid` before stopping itself (a swallowed deadline), if any."""
    return next((r["cell"] for r in reversed(read(path)) if r.get("final") == nodeid), None)
