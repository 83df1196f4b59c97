"""What the RMSNorm cells (issue 22) cost the main job, warm: each default adapter is started and warmed on
one LayerNorm case first (that start is paid by the main job anyway), then its RMSNorm cases are judged
one by one; and the RMSNorm mutants through their cases.  Single process, seconds of wall time.

    NORMCONF_CACHE_DIR=... python scripts/rms_cell_cost.py
"""
import time

from normconf.adapters import registry
from normconf.golden.cases import CASES
from normconf.judge.expectations import load_all
from normconf.judge.mutants import MUTANTS, kill_record
from normconf.judge.verdict import load_fixture, run_cell

ADAPTERS = ("numpy", "torch", "torch_functional", "flax_linen", "flax_nnx", "keras[tensorflow]", "keras[jax]",
            "keras[torch]", "onnxruntime")


def main():
    expectations = load_all()[0]
    rms = [n for n, c in CASES.items() if c.layer == "rms_norm"]
    for n in CASES:
        load_fixture(n)
    total = 0.0
    for name in ADAPTERS:
        adapter = registry.get(name)
        run_cell(adapter, name, "seed001_ln_16x768", expectations.get(name), None)  # start and warm
        start = time.perf_counter()
        for case in rms:
            run_cell(adapter, name, case, expectations.get(name), None)
        spent = time.perf_counter() - start
        total += spent
        print(f"{name:18s} {len(rms)} RMSNorm cells {spent:.2f} s")
    start = time.perf_counter()
    mutants = [m for m in MUTANTS if "rms_norm" in m.layers]
    for m in mutants:
        kill_record(m)
    spent = time.perf_counter() - start
    print(f"{len(mutants)} RMSNorm mutants through their cases {spent:.2f} s")
    print(f"total {total + spent:.2f} s (single process)")


if __name__ == "__main__":
    main()
