"""Golden fixture files: deterministic NPZ writing, the manifest, and loading that trusts nothing.

An NPZ holds `meta` (JSON as uint8 bytes), the inputs, and `expected.<i>.<output>` /
`intermediate.<i>.<name>` per variant combination i, written by golden.npzio (deterministic bytes,
bfloat16 as bit patterns).  Loading never unpickles (allow_pickle=False).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden import npzio
from golden.cases import Case

SCHEMA_VERSION = 1
GENERATOR_VERSION = "1.0"
# NORMCONF_GOLDEN_DIR points the suite at another fixture directory (the fault-injection tests use it).
GOLDEN_DIR = Path(os.environ.get("NORMCONF_GOLDEN_DIR") or Path(__file__).resolve().parent / "data")
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
    intermediates: list[dict[str, np.ndarray]]

    @property
    def case(self) -> Case:
        spec = dict(self.meta["case"])
        for key in ("shape", "axes", "conventions"):
            spec[key] = tuple(spec[key])
        return Case(**spec)

    @property
    def variants(self) -> list[dict[str, str]]:
        return self.meta["variants"]

    @property
    def tolerance(self) -> float:
        return self.meta["tolerance"]


def file_name(case_name: str) -> str:
    return f"{case_name}.npz"


def to_bytes(fx) -> bytes:
    """Serialize a generate.Fixture into NPZ bytes."""
    arrays: dict[str, np.ndarray] = dict(fx.inputs)
    for i, (exp, inter) in enumerate(zip(fx.expected, fx.intermediates)):
        arrays.update({f"expected.{i}.{k}": v for k, v in exp.items()})
        arrays.update({f"intermediate.{i}.{k}": v for k, v in inter.items()})
    arrays["meta"] = npzio.json_array({
        "schema_version": SCHEMA_VERSION,
        "generator_version": GENERATOR_VERSION,
        "numpy_version": np.__version__,
        "case": dataclasses.asdict(fx.case),
        "variants": fx.variants,
        "outputs": sorted(fx.expected[0]),
        "tolerance": fx.tolerance,
        "decisiveness_margin": fx.decisiveness_margin,
    })
    return npzio.dumps(arrays)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(directory: Path = GOLDEN_DIR) -> dict[str, str]:
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text())
        return dict(data["files"])
    except FileNotFoundError:
        raise FixtureError(path, "manifest missing: run `python -m golden generate`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FixtureError(path, f"manifest unreadable ({exc})") from None


def manifest_text(hashes: dict[str, str]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, "generator_version": GENERATOR_VERSION,
                       "files": dict(sorted(hashes.items()))}, indent=1, sort_keys=True) + "\n"


def load(path, expected_sha: str | None = None) -> LoadedFixture:
    """Load one fixture; any problem raises FixtureError naming the file (for that case alone)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FixtureError(path, f"cannot read ({exc.strerror or exc})") from None
    if expected_sha is not None and sha256(data) != expected_sha:
        raise FixtureError(path, "SHA-256 differs from the manifest (tampered or stale fixture)")
    try:
        arrays = npzio.loads(data)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise FixtureError(path, "holds a pickled object array; fixtures are data only") from None
        raise FixtureError(path, f"not a readable NPZ ({exc})") from None
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
    intermediates = [{} for _ in range(n)]
    inputs = {}
    for key, value in arrays.items():
        kind, _, rest = key.partition(".")
        if kind in ("expected", "intermediate"):
            idx, _, name = rest.partition(".")
            target = expected if kind == "expected" else intermediates
            try:
                target[int(idx)][name] = value
            except (ValueError, IndexError):
                raise FixtureError(path, f"entry {key!r} names no variant") from None
        else:
            inputs[key] = value
    for i, exp in enumerate(expected):
        missing = set(meta["outputs"]) - set(exp)
        if missing:
            raise FixtureError(path, f"variant {i} lacks expected outputs {sorted(missing)}")
    return LoadedFixture(str(path), meta, inputs, expected, intermediates)


def load_case(name: str, directory: Path = GOLDEN_DIR) -> LoadedFixture:
    """Load by case name, checking the file against the manifest.  A process decodes each file once
    (every adapter and mutant loads every case): later loads still read and hash the bytes, and get a copy
    of what was decoded from bytes with that very hash."""
    manifest = read_manifest(directory)
    fname = file_name(name)
    if fname not in manifest:
        raise FixtureError(Path(directory) / fname, "not listed in the manifest")
    path, sha = Path(directory) / fname, manifest[fname]
    cached = _decoded.get((str(path), sha))
    if cached is None or _sha_of(path) != sha:
        cached = _decoded[(str(path), sha)] = load(path, sha)
    return copy.deepcopy(cached)  # a copy: an adapter that writes into its inputs cannot touch later cells


_decoded: dict[tuple[str, str], LoadedFixture] = {}


def _sha_of(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes())
    except OSError:
        return None  # load() says what is wrong
