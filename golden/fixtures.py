"""Golden fixture files: deterministic NPZ writing, the manifest, and loading that trusts nothing.

An NPZ holds `meta` (JSON as uint8 bytes), the inputs, and `expected.<i>.<output>` per stored variant i
(a documented profile and the numbers the layer was handed), written by golden.npzio (deterministic
bytes, bfloat16 as bit patterns).  Loading never unpickles (allow_pickle=False).  A BatchNorm case whose
batch sizes change from step to step stores its batches, and y_train, joined along the batch axis
(golden/ragged.py); one-shape cases store them stacked, (steps, *shape).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from normconf.golden import npzio
from normconf.golden.cases import Case

SCHEMA_VERSION = 2
GENERATOR_VERSION = "2.0"
# NORMCONF_GOLDEN_DIR points the suite at another fixture directory (the fault-injection tests use it).
PACKAGED = Path(__file__).resolve().parent / "data"


def golden_dir() -> Path:
    """The fixture directory: $NORMCONF_GOLDEN_DIR, read when used, else the package's data/."""
    return Path(os.environ.get("NORMCONF_GOLDEN_DIR") or PACKAGED)
MANIFEST = "manifest.json"


class FixtureError(Exception):
    """A fixture that cannot be trusted; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass
class LoadedFixture:
    path: str
    meta: dict
    inputs: dict[str, np.ndarray]
    expected: list[dict[str, np.ndarray]]

    @property
    def layout(self) -> str:
        """The memory layout x is handed in (golden/layouts.py): C order but where a case says otherwise."""
        return self.meta["case"].get("layout", "c")

    @property
    def case(self) -> Case:
        spec = dict(self.meta["case"])
        for key in ("shape", "axes", "shows", "defaults", "batch_sizes"):
            if key in spec:
                spec[key] = tuple(spec[key])
        return Case(**spec)

    @property
    def variants(self) -> list[dict[str, str]]:
        return self.meta["variants"]

    @property
    def tolerance(self) -> float:
        return self.meta["tolerance"]

    @property
    def tolerances(self) -> dict[str, float]:
        """Output name -> tolerance (the verdict still uses `tolerance`, their maximum)."""
        return self.meta["tolerances"]


def file_name(case_name: str) -> str:
    return f"{case_name}.npz"


def to_bytes(fx) -> bytes:
    """Serialize a generate.Fixture into NPZ bytes.  An expected array bit-identical to one stored
    already (an output a documented profile cannot move) is stored once: meta's `same` names its twin."""
    arrays: dict[str, np.ndarray] = dict(fx.inputs)
    stored, same = {}, {}
    for i, exp in enumerate(fx.expected):
        for k, v in exp.items():
            key, digest = f"expected.{i}.{k}", (v.dtype.str, v.shape, hashlib.sha256(v.tobytes()).hexdigest())
            if digest in stored:
                same[key] = stored[digest]
            else:
                stored[digest] = key
                arrays[key] = v
    arrays["meta"] = npzio.json_array({
        "same": same,
        "schema_version": SCHEMA_VERSION,
        "generator_version": GENERATOR_VERSION,
        "numpy_version": np.__version__,
        "case": fx.case.meta(),
        "variants": fx.variants,
        "outputs": sorted(fx.expected[0]),
        "tolerance": fx.tolerance,
        "conditioning": fx.conditioning,
        "tolerances": fx.tolerances,
        "decisiveness_margin": fx.decisiveness_margin,
    })
    return npzio.dumps(arrays)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(directory: Path | None) -> dict:
    path = Path(directory or golden_dir()) / MANIFEST
    try:
        data = json.loads(path.read_text())
        if not isinstance(data["files"], dict) or not isinstance(data.get("sizes", {}), dict):
            raise TypeError("`files` and `sizes` must be objects")
        return data
    except FileNotFoundError:
        raise FixtureError(path, "manifest missing: run `python -m normconf.golden generate`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FixtureError(path, f"manifest unreadable ({exc})") from None


def read_manifest(directory: Path | None = None) -> dict[str, str]:
    """File name -> SHA-256."""
    return dict(_manifest(directory)["files"])


def read_sizes(directory: Path | None = None) -> dict[str, int]:
    """File name -> size in bytes (empty for a manifest written before sizes were recorded)."""
    return dict(_manifest(directory).get("sizes", {}))


def manifest_text(files: dict[str, bytes]) -> str:
    """The manifest of file name -> content: each file's SHA-256 and size."""
    return json.dumps({"schema_version": SCHEMA_VERSION, "generator_version": GENERATOR_VERSION,
                       "files": {f: sha256(d) for f, d in sorted(files.items())},
                       "sizes": {f: len(d) for f, d in sorted(files.items())}}, indent=1, sort_keys=True) + "\n"


def load(path, expected_sha: str | None = None, expected_size: int | None = None) -> LoadedFixture:
    """Load one fixture; any problem raises FixtureError naming the file (for that case alone).  A file
    larger than the manifest's size is refused before it is read: its hash cannot match anyway, and a
    huge file would be read into memory and hashed first."""
    path = Path(path)
    try:
        if expected_size is not None and path.stat().st_size > expected_size:
            raise FixtureError(path, f"{path.stat().st_size} bytes, the manifest lists {expected_size}: "
                                     "refused unread (tampered or stale fixture)")
        data = path.read_bytes()
    except TimeoutError:  # an OSError too: a cell's deadline, not a problem of the file
        raise
    except OSError as exc:
        raise FixtureError(path, f"cannot read ({exc.strerror or exc})") from None
    if expected_sha is not None and sha256(data) != expected_sha:
        raise FixtureError(path, "SHA-256 differs from the manifest (tampered or stale fixture)")
    return parse(data, path)


def in_memory(fx, label: str) -> LoadedFixture:
    """A generate.Fixture as the suite would load it from disk, without the disk (re-draws); `label`
    stands for its path and must be unique (the judge caches by path)."""
    return parse(to_bytes(fx), f"<in memory: {label}>")


def parse(data: bytes, path) -> LoadedFixture:
    """A fixture from its NPZ bytes; `path` names it in errors."""
    try:
        arrays = npzio.loads(data)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise FixtureError(path, "holds a pickled object array; fixtures are data only") from None
        raise FixtureError(path, f"not a readable NPZ ({exc})") from None
    except TimeoutError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, KeyError) as exc:
        raise FixtureError(path, f"truncated or corrupted NPZ ({type(exc).__name__}: {exc})") from None
    if "meta" not in arrays:
        raise FixtureError(path, "no `meta` entry")
    try:
        meta = npzio.from_json_array(arrays.pop("meta"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FixtureError(path, f"meta is not JSON ({exc})") from None
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise FixtureError(path, f"schema version {version!r}, this normconf reads {SCHEMA_VERSION}: "
                                 "regenerate fixtures or upgrade normconf")
    n = len(meta["variants"])
    expected = [{} for _ in range(n)]
    inputs = {}
    try:
        arrays.update({alias: arrays[original] for alias, original in meta.get("same", {}).items()})
    except (KeyError, AttributeError, TypeError):
        raise FixtureError(path, "meta `same` names an entry the file does not hold") from None
    for key, value in arrays.items():
        kind, _, rest = key.partition(".")
        if kind == "expected":
            idx, _, name = rest.partition(".")
            try:
                expected[int(idx)][name] = value
            except (ValueError, IndexError):
                raise FixtureError(path, f"entry {key!r} names no variant") from None
        else:
            inputs[key] = value
    for i, exp in enumerate(expected):
        missing = set(meta["outputs"]) - set(exp)
        if missing:
            raise FixtureError(path, f"variant {i} lacks expected outputs {sorted(missing)}")
    return LoadedFixture(str(path), meta, inputs, expected)


def load_case(name: str, directory: Path | None = None) -> LoadedFixture:
    """Load by case name, checking the file against the manifest."""
    directory = Path(directory or golden_dir())
    manifest = _manifest(directory)
    fname = file_name(name)
    if fname not in manifest["files"]:
        raise FixtureError(Path(directory) / fname, "not listed in the manifest")
    return load(Path(directory) / fname, manifest["files"][fname], manifest.get("sizes", {}).get(fname))
