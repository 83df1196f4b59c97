"""normconf's cache directory: what a run pays for that the next run can reuse.  That is JAX's compiled
programs (jax/: flax and keras[jax] compile one program per case; loading it back takes milliseconds),
the items' last durations (durations.json: normconf/scheduling.py), and the version-history timelines
(history/: reports/history.py, keyed by the history files' bytes and the code that computes them).

NORMCONF_CACHE_DIR picks the directory (default $XDG_CACHE_HOME/normconf, else ~/.cache/normconf);
NORMCONF_CACHE_DIR=off turns caching off.  Deleting the directory at any time is safe: the next run
compiles again and refills it.  Entries are keyed by JAX's own cache key (program, jax/jaxlib version,
platform, compile options), so an upgrade never reads a stale program.
"""
from __future__ import annotations

import os
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
