"""The jitted JAX adapters against their eager variants on every golden case (tests/self/jit_agreement.py):
the same verdicts, the same dtypes, and on passing cells outputs within one tolerance of each other.
How far apart they are is a finding: it is printed at the end of the run ("jit vs eager" section)."""
import pytest

from tests.self.jit_agreement import PAIRS, compare_pair, summary


@pytest.mark.parametrize("jit_name", list(PAIRS))
def test_jit_and_eager_agree(jit_name, request):
    from normconf.adapters.registry import get
    for name in (jit_name, PAIRS[jit_name]):
        reason = get(name).availability()
        if reason:
            pytest.skip(f"{name}: {reason}")
    rows = compare_pair(jit_name)
    request.node.user_properties.append(("jit_agreement", summary(jit_name, rows)))
    changed = {r["case"]: (r["jit"], r["eager"]) for r in rows if r["jit"] != r["eager"]}
    assert not changed, f"jit changed verdicts: {changed}"
    assert all(r["dtypes_equal"] is not False for r in rows)
    apart = {r["case"]: r["tolerances"] for r in rows if r["jit"]["outcome"] == "pass" and (r["tolerances"] or 0) > 1}
    assert not apart, f"passing cells whose jitted and eager outputs differ by more than one tolerance: {apart}"
