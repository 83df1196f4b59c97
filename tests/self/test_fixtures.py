"""The committed fixtures: decisive, complete, loaded safely."""
import json
import zipfile

import numpy as np
import pytest

from normconf.golden import fixtures
from normconf.golden.cases import CASES, Case
from normconf.golden.generate import NotDecisive, build_fixture
from normconf.golden.tolerance import DECISIVENESS_MARGIN

LOADED = {name: fixtures.load_case(name) for name in CASES}


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.shows))
def test_every_convention_case_is_decisive(name):
    margin = LOADED[name].meta["decisiveness_margin"]
    assert margin is not None and margin >= DECISIVENESS_MARGIN


def test_catalog_covers_the_issue():
    cases = CASES.values()
    assert len(CASES) >= 40
    assert {c.dtype for c in cases} == {"float32", "float64", "float16", "bfloat16"}
    assert {1e-5, 1e-3, 1e-6, 0.5} <= {c.eps for c in cases}
    assert {0.1, 0.5, 0.0, 1.0, None} <= {c.momentum for c in cases if c.layer == "batch_norm"}
    assert max(c.reduction_size for c in cases) >= 100_000
    assert {len(c.shape) for c in cases if c.layer == "batch_norm"} >= {2, 3, 4, 5}
    assert {c.axes[0] for c in cases if c.layer == "batch_norm"} >= {1, -1}
    assert {1e2, 1e3, 1e4} <= {c.loc / c.scale for c in cases if c.family == "stress"}
    assert any(c.affine for c in cases) and any(not c.affine for c in cases)
    assert all(c.steps >= 3 for c in cases if c.family == "layout" and c.layer == "batch_norm")


def test_catalog_reaches_the_bug_classes_of_issue_13():
    cases = list(CASES.values())
    for layer in ("layer_norm", "batch_norm"):
        long = {c.distribution for c in cases if c.layer == layer and c.reduction_size >= 100_000}
        assert {"grid", "drift"} <= long, layer  # non-periodic and drifting
        for dtype in ("float16", "bfloat16"):
            mine = [c for c in cases if c.layer == layer and c.dtype == dtype]
            assert any(abs(c.loc) >= 100 * c.scale for c in mine), (layer, dtype)
            assert any(c.scale ** 2 > np.finfo(np.float16).max for c in mine), (layer, dtype)
    assert any(c.steps >= 8 for c in cases if c.layer == "batch_norm" and c.momentum is not None)
    assert any(c.steps >= 8 for c in cases if c.layer == "batch_norm" and c.momentum is None)
    nchw = [c.shape for c in cases if c.layer == "batch_norm" and len(c.shape) == 4 and c.axes[0] % 4 == 1]
    assert any(len(set(s)) == 4 for s in nchw)
    assert any(s[2] == 1 and s[3] > 1 for s in nchw) and any(s[3] == 1 and s[2] > 1 for s in nchw)
    chw = [c.shape for c in cases if c.layer == "layer_norm" and len(c.shape) == 4]
    assert any(len(set(s)) == 4 for s in chw) and any(s[2] == 1 for s in chw) and any(s[3] == 1 for s in chw)
    two_d = [c.shape for c in cases if c.layer == "layer_norm" and len(c.shape) == 2 and c.affine]
    assert any(r > k for r, k in two_d) and any(r < k for r, k in two_d)


def test_inputs_are_exactly_representable_in_their_dtype():
    for name, fx in LOADED.items():
        assert str(fx.inputs["x"].dtype) == CASES[name].dtype, name


def test_nondecisive_case_is_refused():
    # momentum 0 keeps the running variance at 1: biased and unbiased cannot be told apart.
    case = Case("refused", "batch_norm", (8, 2), (1,), momentum=0.0, shows=("running_variance",))
    with pytest.raises(NotDecisive, match="refused"):
        build_fixture(case)


def test_duplicate_and_unknown_names_are_rejected():
    from normconf.golden.cases import _registry
    with pytest.raises(ValueError, match="duplicate case name 'a'"):
        _registry([Case("a", "layer_norm", (2, 2), (1,)), Case("a", "layer_norm", (2, 2), (1,))])
    with pytest.raises(ValueError, match="unknown convention 'wobble'"):
        Case("b", "layer_norm", (2, 2), (1,), shows=("wobble",))


def _copy(tmp_path, name="bn1d_nc"):
    src = fixtures.golden_dir() / fixtures.file_name(name)
    dst = tmp_path / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def test_truncated_fixture_names_file(tmp_path):
    p = _copy(tmp_path)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(fixtures.FixtureError, match="bn1d_nc.npz: truncated or corrupted"):
        fixtures.load(p)


def test_tampered_fixture_fails_hash(tmp_path):
    p = _copy(tmp_path)
    good = fixtures.sha256(p.read_bytes())
    data = bytearray(p.read_bytes())
    data[-100] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(fixtures.FixtureError, match="SHA-256 differs"):
        fixtures.load(p, good)


def test_pickled_object_array_is_refused(tmp_path):
    p = tmp_path / "evil.npz"
    with zipfile.ZipFile(p, "w") as zf:
        with zf.open("x.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(fixtures.FixtureError, match="evil.npz: holds a pickled object array"):
        fixtures.load(p)


def test_newer_schema_is_refused(tmp_path):
    p = _copy(tmp_path)
    fx = fixtures.load(p)
    meta = dict(fx.meta, schema_version=fixtures.SCHEMA_VERSION + 1)
    with zipfile.ZipFile(p, "w") as zf:
        with zf.open("meta.npy", "w") as f:
            np.lib.format.write_array(f, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with pytest.raises(fixtures.FixtureError, match=rf"schema version {fixtures.SCHEMA_VERSION + 1}, this normconf "
                                                     rf"reads {fixtures.SCHEMA_VERSION}"):
        fixtures.load(p)


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(fixtures.FixtureError, match="manifest missing"):
        fixtures.read_manifest(tmp_path)
