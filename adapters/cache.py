"""normconf's cache directory: what a run pays for that the next run can reuse.  That is JAX's compiled
programs (jax/: flax and keras[jax] compile one program per case; loading it back takes milliseconds),
the items' last durations (durations.json: normconf/scheduling.py), and the version-history timelines
(history/: reports/history.py, keyed by the history files' bytes and the code that computes them).

NORMCONF_CACHE_DIR picks the directory (default $XDG_CACHE_HOME/normconf, else ~/.cache/normconf);
NORMCONF_CACHE_DIR=off turns caching off.  Deleting the directory at any time is safe: the next run
compiles again and refills it.  Entries are keyed by JAX's own cache key (program, jax/jaxlib version,
platform, compile options), so an upgrade never reads a stale program.

The cache is only an optimisation: a run never fails for it.  The controller tries the directory once
before any cell runs (unusable_cache_warning); one that cannot be created or written (read-only, full,
a file in the way, a read-only $HOME) is one warning line naming it, and the whole run (workers and
Keras children inherit the environment) goes without a cache.  Later read or write failures cost only
the time, and writers remove their temporary files on every path.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path | None:
    value = os.environ.get("NORMCONF_CACHE_DIR", "")
    if value == "off":
        return None
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "normconf"


def enable_jax_cache() -> None:
    """Point JAX's persistent compilation cache at <cache dir>/jax (idempotent; call before the first
    compilation of the process).  JAX's defaults only keep programs that took at least a second to compile,
    which none of ours do, so both thresholds are lifted."""
    import jax
    directory = cache_dir()
    if directory is None or jax.config.jax_compilation_cache_dir:  # off, or already set (by us or the user)
        return
    jax.config.update("jax_compilation_cache_dir", str(directory / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size floor, and no override


def _write_problem(directory: Path) -> str | None:
    """Why `directory` cannot hold cache entries, or None: it is created and a small file written to it
    and removed (on a full disk the write fails; the file never stays)."""
    probe = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(b"normconf cache probe\n" * 64)
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        if probe is not None:
            Path(probe).unlink(missing_ok=True)


def unusable_cache_warning() -> str | None:
    """The warning line for a cache directory this run cannot use, after turning caching off for this
    process and every one it starts (NORMCONF_CACHE_DIR=off); None when the cache is usable or off."""
    directory = cache_dir()
    problem = _write_problem(directory) if directory is not None else None
    if problem is None:
        return None
    os.environ["NORMCONF_CACHE_DIR"] = "off"
    return f"cache directory {directory} is unusable ({problem}): this run goes without a cache (slower, same verdicts)"
