"""Meta-tests: the conformance checks catch every mutant, name what it broke, and raise no false alarm."""
import pytest

from normconf.adapters.numpy_adapter import NumpyAdapter
from normconf.golden.cases import CASES
from normconf.golden.generated import draw_specs
from normconf.judge.expectations import load_all
from normconf.judge.mutants import MUTANTS, MUTANTS_BY_NAME, kill_record, unavailable
from normconf.judge.verdict import run_cell

# Issue 13's bug classes: each needs a mutant and a case that catches it by at least DECISIVE tolerances
# (thresholds, for the rounding bias).
BUG_CLASSES = {
    "block-merged statistics over long reductions": ["blocked_unweighted_means", "welford_merge_without_correction",
                                                     "remainder_block_dropped"],
    "a mean or an affine epilogue kept in float16/bfloat16": ["mean_in_input_dtype", "epilogue_in_input_dtype"],
    "squares or the variance rounded to half precision": ["squares_in_input_dtype", "variance_in_input_dtype",
                                                          "raw_squares_in_input_dtype"],
    "a bug on the 5th or a later training step": ["state_lost_every_4_steps", "cumulative_counter_saturates_at_4"],
    "outputs truncated instead of rounded to nearest": ["output_truncated_toward_zero",
                                                        "output_rounded_toward_minus_inf"],
    "bugs that depend on which axis has which size": ["bn_rows_bound_from_w", "bn_h1_path_per_sample_variance",
                                                      "layernorm_squeezed_input", "layernorm_tall_matrix_transposed",
                                                      "layernorm_wide_matrix_unbiased", "bn_channel_axis_by_size"],
    "GroupNorm/InstanceNorm: groups, layout, running statistics (issue 22)": [
        "gn_groups_across_wrong_axis", "gn_interleaved_groups", "in_running_var_biased", "in_eval_instance_statistics",
        "gn_affine_per_group"],
    "statistics across steps whose batch size changes": ["unbiased_factor_from_first_batch",
                                                          "cumulative_average_weighted_by_samples"],
}
DECISIVE = 3.0


def test_catalog_has_at_least_80_mutants():
    assert len(MUTANTS) >= 80
    assert len(MUTANTS_BY_NAME) == len(MUTANTS)
    assert {m for names in BUG_CLASSES.values() for m in names} <= set(MUTANTS_BY_NAME)


def decisive_catches(row) -> list[str]:
    """Cases whose verdict (not a crash) caught the mutant by at least DECISIVE tolerances; a verdict
    without a finite error (NaN, inf, wrong shape or dtype) counts as decisive."""
    return [c for c in row["named_by"] if row["outcomes"][c] != "error"
            and (row["margins"].get(c) is None or row["margins"][c] >= DECISIVE)]


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_and_named(mutant, request):
    if unavailable(mutant):
        pytest.skip(unavailable(mutant))
    left_out = set(request.config.getoption("--without-family"))
    row = kill_record(mutant, [n for n, c in CASES.items() if c.family not in left_out])
    assert row["killed"], f"SURVIVED: {mutant.name} ({mutant.bug}) with families {sorted(left_out)} left out"
    assert row["named"], f"{mutant.name} caught by {row['caught_by']}, none naming {mutant.breaks!r}"
    verdicts = [c for c in row["named_by"] if row["outcomes"][c] != "error"]
    assert mutant.raises or verdicts, f"{mutant.name} was only caught by crashing: {row['outcomes']}"
    if any(mutant.name in names for names in BUG_CLASSES.values()) and not left_out:
        assert decisive_catches(row), f"{mutant.name}: no case catches it by {DECISIVE} tolerances: {row['margins']}"


def test_unmutated_numpy_adapter_raises_no_false_alarm():
    expectation = load_all()[0]["numpy"]
    outcomes = {name: run_cell(NumpyAdapter(), "numpy", name, expectation, None) for name in CASES}
    assert {n: c["message"] for n, c in outcomes.items() if c["outcome"] != "pass"} == {}


def test_removing_the_one_value_per_channel_cases_lets_mutants_survive():
    kept = [n for n, c in CASES.items() if c.family != "one_value_per_channel"]
    drawn = {n: s for n, s in draw_specs().items() if "_one_value_per_channel_" not in n}  # that region left out too
    survivors = sorted(m.name for m in MUTANTS if not unavailable(m) and not kill_record(m, kept, drawn)["killed"])
    assert survivors == ["one_value_returns_input"], survivors
