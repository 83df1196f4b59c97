"""Expectations with version ranges (issue 20, item 3): `since` / `until` on a rule or a documented entry,
validated on load; outside its range an entry does not apply."""
import numpy as np
import pytest

from normconf.adapters.registry import get
from normconf.judge.expectations import ExpectationError, from_data, load_all
from normconf.judge.verdict import run_cell

DOC = {"variant": "biased", "cite": "somewhere"}


def _versions(**found):
    return lambda package: found.get(package, "not installed")


@pytest.mark.parametrize("bounds, flax, holds", [
    ({"since": "flax 0.12.1"}, "0.12.1", True),
    ({"since": "flax 0.12.1"}, "0.12.0", False),
    ({"until": "flax 0.12.1"}, "0.12.0", True),
    ({"until": "flax 0.12.1"}, "0.12.1", False),
    ({"since": "flax 0.10", "until": "flax 0.12.1"}, "0.11.2", True),
    ({"since": "flax 0.10", "until": "flax 0.12.1"}, "0.8.4", False),
    ({"since": "flax 0.10"}, "not installed", False),  # a range says nothing about a missing package
    ({}, "0.1", True),
])
def test_rule_applies_only_inside_its_range(bounds, flax, holds):
    rule = from_data({"adapters": ["a"], "deviation": [{"cases": ["c*"], "match": "x", "reason": "r", **bounds}]},
                     "t.toml").deviations[0]
    assert rule.applies("a", "case", version_of=_versions(flax=flax)) is holds
    assert rule.names("a", "case")  # the globs still name it, whatever the version


def test_documented_entry_outside_its_range_is_undocumented():
    exp = from_data({"adapters": ["a"], "documented": {
        "norm_variance": {**DOC, "until": "keras 3.1"},
        "default_eps@layer_norm": {"variant": 1e-6, "cite": "c", "since": "keras 3.1"}}}, "t.toml")
    old, new = _versions(keras="3.0.0"), _versions(keras="3.15.1")
    assert exp.documented_variant("norm_variance", "batch_norm", version_of=old)["variant"] == "biased"
    assert exp.documented_variant("norm_variance", "batch_norm", version_of=new) is None
    assert exp.documented_variant("default_eps", "layer_norm", version_of=old) is None
    assert exp.documented_variant("default_eps", "layer_norm", version_of=new)["variant"] == 1e-6


@pytest.mark.parametrize("bounds, problem", [
    ({"since": "flux 0.12.1"}, "[[deviation]] #1: `since` names unknown package 'flux'"),
    ({"until": "flax 0.12.x"}, "[[deviation]] #1: `until` has bad version '0.12.x'"),
    ({"since": "flax"}, "[[deviation]] #1: `since` must be \"package version\""),
    ({"since": 3}, "[[deviation]] #1: `since` must be \"package version\""),
    ({"since": "flax 0.12", "until": "jax 0.5"}, "name different packages ['flax', 'jax']"),
    ({"since": "flax 0.12", "until": "flax 0.12.0"}, "empty range"),
])
def test_bad_range_is_an_error_naming_file_and_entry(bounds, problem):
    with pytest.raises(ExpectationError) as err:
        from_data({"adapters": ["a"], "deviation": [{"cases": ["c"], "match": "x", "reason": "r", **bounds}]},
                  "t.toml")
    assert str(err.value).startswith("t.toml: ") and problem in str(err.value)


def test_bad_range_on_a_documented_entry_names_it():
    with pytest.raises(ExpectationError, match=r"t.toml: \[documented\] norm_variance: `until` names unknown"):
        from_data({"adapters": ["a"], "documented": {"norm_variance": {**DOC, "until": "tf 2.16"}}}, "t.toml")


@pytest.mark.parametrize("bounds, outcome", [
    ({"since": "numpy 1.0"}, "xpass"),      # the installed numpy is inside: the deviation applies, went away
    ({"until": "numpy 1.0"}, "pass"),       # outside: the deviation does not apply
    ({"since": f"numpy {np.lib.NumpyVersion(np.__version__).major + 1}"}, "pass"),
])
def test_a_cell_is_judged_with_the_rules_in_force_for_the_installed_versions(bounds, outcome):
    numpy = load_all()[0]["numpy"]
    exp = from_data({"adapters": ["numpy"],
                     "documented": {k: {"variant": v["variant"], "cite": v["cite"]} for k, v in numpy.documented.items()},
                     "deviation": [{"cases": ["bn1d_nc"], "match": "x", "reason": "why", **bounds}]}, "t.toml")
    assert run_cell(get("numpy"), "numpy", "bn1d_nc", exp, None)["outcome"] == outcome


def test_the_packaged_ranges_load_and_the_floors_fall_outside_todays_deviations():
    exps, errors = load_all()
    assert errors == []
    floor = _versions(flax="0.8.4", jax="0.4.26", keras="3.0.0", torch="1.13.0")
    today = _versions(flax="0.12.8", jax="0.10.2", keras="3.15.1", torch="2.13.0")
    nnx_float32 = next(r for r in exps["flax_nnx"].deviations if r.match == ("has dtype float32",))
    assert not nnx_float32.applies("flax_nnx", "dtype_bn_float16", version_of=floor)
    assert nnx_float32.applies("flax_nnx", "dtype_bn_float16", version_of=today)
    ln_offset = [r for r in exps["flax_linen"].deviations if r.applies("flax_linen", "stress_ln_offset_1e4", version_of=today)]
    assert ln_offset and not any(r.applies("flax_linen", "stress_ln_offset_1e4", version_of=floor)
                                 for r in exps["flax_linen"].deviations)
    one_pass = [r for r in exps["keras[jax]"].deviations if r.applies("keras[jax]", "stress_ln_offset_1e4", version_of=floor)]
    assert one_pass and not any(r.applies("keras[jax]", "stress_ln_offset_1e4", version_of=today)
                                for r in exps["keras[jax]"].deviations)
