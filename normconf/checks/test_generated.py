"""Generated cases (golden/generated.py): the same judge as the catalog's cells, on case specifications
drawn across the input space.  test_generated runs the fixed draw of every run (cells in results.json);
test_explore, only with --explore=N, searches N more per adapter with hypothesis's database and
shrinking, and a failure ends with a one-line reproduction."""
import pytest

from normconf.golden.generated import case_specs
from normconf.judge.generated import judge_spec
from normconf.judge.verdict import NOT_RUN, PASSING
from normconf.plugin import generated_specs


def judge(session, adapter_name: str, spec: dict) -> dict:
    return judge_spec(session.adapters[adapter_name], adapter_name, spec, session.expectations.get(adapter_name),
                      session.unavailable(adapter_name))


def test_generated(generated_name, adapter_name, request):
    session = request.config.normconf
    cell = judge(session, adapter_name, generated_specs()[generated_name])
    cell["versions"] = session.adapters[adapter_name].versions() if cell["outcome"] != "not_installed" else {}
    cell["execution_mode"] = getattr(session.adapters[adapter_name], "execution_mode", None)
    request.node.user_properties.append(("normconf_cell", cell))
    request.node.user_properties.append(("generated", (adapter_name, cell["outcome"], cell["reproduction"])))
    if cell["outcome"] in NOT_RUN:
        pytest.skip(f"{cell['outcome']}: {cell['message']}")
    if cell["outcome"] == "xfail":
        pytest.xfail(cell["message"])
    assert cell["outcome"] == "pass", (f"{adapter_name} on {generated_name}: {cell['outcome']}: {cell['message']}\n"
                                       f"reproduce: {cell['reproduction']}")


@pytest.mark.parametrize("space", ("classic", "grouped"))  # grouped: GroupNorm and InstanceNorm (issue 22)
def test_explore(explore_adapter, space, request):
    from hypothesis import HealthCheck, given, settings
    from hypothesis.database import DirectoryBasedExampleDatabase
    session = request.config.normconf

    # the same search everywhere: hypothesis's CI profile (loaded when $CI is set) would derandomize it and drop
    # the database, so a CI job would neither honour --hypothesis-seed nor remember what it found
    @settings(max_examples=request.config.getoption("--explore"), deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=False,
              database=DirectoryBasedExampleDatabase(".hypothesis/examples"))
    @given(case_specs(grouped=space == "grouped"))
    def search(spec):
        cell = judge(session, explore_adapter, spec)
        assert cell["outcome"] in PASSING + NOT_RUN, (f"{cell['outcome']}: {cell['message'][:300]}\n"
                                                      f"reproduce: {cell['reproduction']}")

    search()
