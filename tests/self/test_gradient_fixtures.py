"""Gradient fixtures and cells (issue 23): the committed files are what the generator builds, tampering is
refused in one line naming the file, every case decides what it shows, and an
adapter or plug-in without the gradient operations is unsupported, not failed."""
import shutil

import pytest

from normconf.adapters.registry import PluginAdapter
from normconf.golden import gradient_fixtures as gf
from normconf.golden.fixtures import FixtureError
from normconf.golden.gradient_cases import GRADIENT_CASES, GradCase
from normconf.golden.tolerance import DECISIVENESS_MARGIN
from normconf.judge.gradients import run_gradient_cell


def test_committed_gradient_fixtures_are_current():
    assert gf.problems() == []


def test_every_case_decides_what_it_shows():
    for name in GRADIENT_CASES:
        fx = gf.load_case(name)
        assert set(fx.margins) == set(fx.case.shows) and min(fx.margins.values()) >= DECISIVENESS_MARGIN


def test_a_tampered_fixture_is_refused_naming_the_file(tmp_path):
    shutil.copytree(gf.gradient_dir(), tmp_path / gf.SUBDIR)
    path = tmp_path / gf.SUBDIR / "grad_bn_float32.npz"
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FixtureError, match="grad_bn_float32.npz: SHA-256 differs"):
        gf.load_case("grad_bn_float32", tmp_path)


def test_a_bad_case_is_one_line_naming_it():
    with pytest.raises(ValueError, match="gradient case 'x': layer 'no_such_norm'"):
        GradCase("x", "no_such_norm", (2, 3), (-1,))


class _ForwardOnly:
    name = "forward_only"

    def layer_norm(self, x, axes, gamma, beta, eps, affine_axes):
        return {"y": x}


def test_without_the_operation_the_cell_is_unsupported():
    for adapter in (_ForwardOnly(), PluginAdapter(_ForwardOnly(), "here:_ForwardOnly")):
        for case in ("grad_ln_float64", "grad_rms_float32"):
            cell = run_gradient_cell(adapter, "forward_only", case, None, None)
            assert cell["outcome"] == "unsupported", cell
