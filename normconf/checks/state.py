"""Isolation: a cell must leave the frameworks' process-wide state as it found it.  Registered by the
plugin for normconf runs (a plugin object, not a conftest: an installed package's conftest is not always
loaded, and this must never apply to another project's tests)."""
import sys

import pytest


def global_state() -> dict:
    """The process-wide settings a normalization call could flip, for frameworks already imported."""
    state = {}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        state.update(torch_default_dtype=str(torch.get_default_dtype()), torch_threads=torch.get_num_threads(),
                     torch_grad=torch.is_grad_enabled(), torch_deterministic=torch.are_deterministic_algorithms_enabled())
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        state.update(jax_x64=bool(jax.config.jax_enable_x64), jax_matmul=str(jax.config.jax_default_matmul_precision))
    return state


class StateGuard:
    @pytest.fixture(autouse=True)
    def no_leaked_global_state(self, request):
        if not {"adapter_name", "mutant"} & set(request.fixturenames):  # normconf's checks only
            yield
            return
        before = global_state()
        yield
        after = global_state()
        changed = {k: (before.get(k), after[k]) for k in after if k in before and before[k] != after[k]}
        if changed:
            for key, value in request.node.user_properties:
                if key == "normconf_cell":
                    value.update(outcome="error", message=f"leaked global state {changed}; " + value["message"])
            pytest.fail(f"the cell changed process-wide framework state: {changed}")
