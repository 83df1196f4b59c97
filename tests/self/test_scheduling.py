"""The xdist scheduler (normconf/scheduling.py) on simulated workers: cells sharing a framework start-up
stay on one worker, every item runs once, and a dead worker's items go to the others or its replacement.
(tests/self/test_suite_runs.py covers real crashes and serial-vs-xdist identity end to end.)"""
from types import SimpleNamespace

import pytest

pytest.importorskip("xdist")

from normconf.adapters.registry import BUILTINS  # noqa: E402
from normconf.golden.cases import CASES  # noqa: E402
from normconf.scheduling import StartupScheduling, classify  # noqa: E402

CELLS = [f"normconf/checks/test_golden.py::test_golden[{case}@{name}]" for name in BUILTINS for case in sorted(CASES)]
MUTANTS = [f"normconf/checks/test_mutants.py::test_mutant_is_caught[m{i}]" for i in range(30)]
WRAPS = {"m0": "torch", "m1": "torch"}  # mutants on torch layers; the others are numpy


class Worker:
    def __init__(self, name):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False

    def send_runtest_some(self, indices):
        pass

    def shutdown(self):
        self.shutting_down = True


def scheduler(collection, workers):
    sched = StartupScheduling(SimpleNamespace(getvalue=lambda name: [f"{len(workers)}*popen"],
                                              getoption=lambda name: None), adapters=BUILTINS, mutants=WRAPS)
    for w in workers:
        sched.add_node(w)
        sched.add_node_collection(w, collection)
    sched.schedule()
    return sched


def run(sched, ran, steps=None):
    """Each worker in turn runs its next item, as xdist's does: only once it knows the item after it, or
    is shutting down; a worker with nothing left leaves.  Stops after `steps` items, or when all is done."""
    while steps is None or steps > 0:
        if sched.tests_finished:
            for w in sched.nodes:
                w.shutdown()
        moved = False
        for w in list(sched.nodes):
            pending = sched.node2pending[w]
            if len(pending) >= 2 or (pending and w.shutting_down):
                ran.setdefault(sched.collection[pending[0]], []).append(w.gateway.id)
                sched.mark_test_complete(w, pending[0])
                moved, steps = True, None if steps is None else steps - 1
            elif w.shutting_down:
                assert sched.remove_node(w) is None
        if not moved and not sched.nodes:
            return ran
        assert moved or any(w.shutting_down for w in sched.nodes), "stalled: nobody can run"
    return ran


def test_each_keras_backend_and_every_item_runs_once_on_one_worker():
    collection = CELLS + MUTANTS
    ran = run(scheduler(collection, [Worker("gw0"), Worker("gw1")]), {})
    assert sorted(ran) == sorted(collection) and all(len(w) == 1 for w in ran.values())
    for name in ("keras[tensorflow]", "keras[torch]"):  # the costliest start-ups: never paid twice
        assert len({ran[c][0] for c in CELLS if c.endswith(f"@{name}]")}) == 1, name
    started = {}  # start-up key -> the workers that paid it
    for nodeid, (worker,) in ran.items():
        key, startup_s, _ = classify(nodeid, BUILTINS, WRAPS)
        if startup_s:
            started.setdefault(key, set()).add(worker)
    assert sum(len(w) for w in started.values()) <= len(started) + 1, started  # one tail split at most


def test_a_dead_workers_items_go_to_its_replacement():
    collection = CELLS + MUTANTS
    gw0, gw1 = Worker("gw0"), Worker("gw1")
    sched = scheduler(collection, [gw0, gw1])
    ran = run(sched, {}, steps=40)
    crashed = sched.remove_node(gw0)
    assert crashed is not None and crashed not in ran
    gw2 = Worker("gw2")
    sched.add_node(gw2)
    sched.add_node_collection(gw2, collection)
    sched.schedule()
    run(sched, ran)
    assert sorted(ran) == sorted(set(collection) - {crashed}) and all(len(w) == 1 for w in ran.values())


def test_items_that_are_not_cells_are_shared_like_load_scheduling():
    collection = [f"tests/self/test_x.py::test_{i}" for i in range(20)]
    ran = run(scheduler(collection, [Worker("gw0"), Worker("gw1")]), {})
    assert sorted(ran) == sorted(collection)
    assert {w for (w,) in ran.values()} == {"gw0", "gw1"}


def test_the_workers_finish_together_on_the_units_without_a_start_up():
    """Simulated clock: each item takes its duration; the numpy adapter's items (no start-up of their own)
    are dealt last and split item by item, so the two workers run out of work within one such item."""
    collection = CELLS + MUTANTS
    durations, started = {}, set()
    for nodeid in collection:
        key, startup_s, cell_s = classify(nodeid, BUILTINS, WRAPS)
        durations[nodeid] = cell_s if key != "normconf.adapters.numpy_adapter" else (0.17 if "mutant" in nodeid else 0.002)
        if key not in started:  # the unit's first item pays its start-up
            started.add(key)
            durations[nodeid] += startup_s
    workers = [Worker("gw0"), Worker("gw1")]
    sched = StartupScheduling(SimpleNamespace(getvalue=lambda name: ["2*popen"], getoption=lambda name: None),
                              adapters=BUILTINS, mutants=WRAPS, durations=durations)
    for w in workers:
        sched.add_node(w)
        sched.add_node_collection(w, collection)
    sched.schedule()
    clock = {w: 0.0 for w in workers}
    while sched.nodes:
        if sched.tests_finished:
            for w in sched.nodes:
                w.shutdown()
        ready = [w for w in sched.nodes if len(sched.node2pending[w]) >= 2
                 or (sched.node2pending[w] and w.shutting_down)]
        if not ready:
            for w in [w for w in sched.nodes if w.shutting_down and not sched.node2pending[w]]:
                sched.remove_node(w)
            continue
        w = min(ready, key=clock.get)
        index = sched.node2pending[w][0]
        clock[w] += durations[sched.collection[index]]
        sched.mark_test_complete(w, index)
    total = sum(durations.values())
    assert abs(clock[workers[0]] - clock[workers[1]]) <= 0.17 + 1e-9, clock
    assert max(clock.values()) <= total / 2 + 0.17, (clock, total)
