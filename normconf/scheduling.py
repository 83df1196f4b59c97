"""xdist scheduling by framework start-up (normconf/plugin.py installs it for `-n N` with the default --dist load).

A cell costs milliseconds, but the first cell of a framework in a process pays its start-up: 1 to 4 s to
import torch or jax or to start a Keras child process.  xdist's "load" scheduling deals cells out in
collection order, so every worker ends up starting every framework.  This one deals out *units*, all the
cells that share one start-up, whole: a worker that asks for work gets the largest unit nobody has taken
(longest processing time first; the units without a start-up, the numpy adapter's, last), and a worker
with nothing left takes over the tail of the unit with the most work remaining, when that work is worth a
second start-up.  Costs are each item's duration in the
last run (durations.json in the cache directory, adapters/cache.py), else rough figures for a warm cache
on a 2-core machine; they only steer the order, never a result.

Crash handling is LoadScheduling's: xdist reports the cell a dead worker was running as crashed, its other
cells go back to their unit, and the unit is free for any worker, or the dead one's replacement, to take.
"""
from __future__ import annotations

import json
from collections import deque

from normconf.adapters.cache import cache_dir

try:
    from xdist.scheduler import LoadScheduling
except ImportError:  # no xdist, nothing to schedule: the durations are still recorded for a later run
    LoadScheduling = object

# Start-up seconds per start-up key (the adapter's module, or a child process's adapter name).
STARTUP_S = {"normconf.adapters.torch_adapter": 1.5, "normconf.adapters.flax_adapter": 1.3, "keras[tensorflow]": 4.2,
             "keras[jax]": 2.0, "keras[jax][eager]": 2.0, "keras[torch]": 4.0, "normconf.adapters.numpy_adapter": 0.0,
             "normconf.adapters.torch_compile_adapter": 20.0,  # inductor's import and first compile
             "normconf.adapters.torch_onnx_adapter": 3.0, "keras[tensorflow][xla]": 4.2,
             "keras[tensorflow][function]": 4.2}  # torch[onnx]: onnxruntime; the exporter's ~20 s only when cold
# Seconds per cell once started.
CELL_S = {"flax_linen": 0.03, "flax_nnx": 0.03, "keras[jax]": 0.035, "keras[tensorflow]": 0.02,
          "flax_linen[eager]": 0.07, "flax_nnx[eager]": 0.07, "keras[jax][eager]": 0.08, "torch[compile]": 1.5,
          "torch[onnx]": 0.1, "keras[tensorflow][xla]": 0.12, "keras[tensorflow][function]": 0.1}  # warm, measured -n 0
MUTANT_S = 0.17  # one mutant through every case
OTHER_S = 1.0  # any other test (self-tests): seconds, each its own unit
QUEUED_S, MAX_QUEUED = 0.1, 8  # how far ahead a worker is fed


def _filler(key: str) -> bool:
    """A unit with no start-up of its own (the numpy adapter's cells and mutants: what their first item
    costs more is the case's candidate profiles, which every unit shares).  It is dealt last and split
    item by item, so the workers run out of work together."""
    return STARTUP_S.get(key, 1.0) == 0.0


def startup_key(adapter) -> str:
    """What a process must load before it can run the adapter: its child process, or its module."""
    from normconf.adapters.remote import RemoteAdapter
    return adapter.name if isinstance(adapter, RemoteAdapter) else type(adapter).__module__


def classify(nodeid: str, adapters: dict, mutants: dict) -> tuple[str, float, float]:
    """(start-up key, start-up seconds, cell seconds) of one test item.  `mutants` maps a mutant's name
    to the framework module it wraps (None: the numpy adapter)."""
    from normconf.reports.results import split_nodeid
    cell = split_nodeid(nodeid) or gradient_cell(nodeid)
    if cell and cell[1] in adapters:
        key = startup_key(adapters[cell[1]])
        return key, STARTUP_S.get(key, 1.0), CELL_S.get(cell[1], 0.005)
    if "::test_mutant_is_caught[" in nodeid:
        wraps = mutants.get(nodeid.rsplit("[", 1)[1][:-1])
        key = f"normconf.adapters.{wraps}_adapter" if wraps else "normconf.adapters.numpy_adapter"
        return key, STARTUP_S.get(key, 1.0), MUTANT_S
    return nodeid, 0.0, OTHER_S  # anything else: a unit of its own, fed two at a time as load scheduling does


def scheduled(nodeid: str) -> bool:
    from normconf.reports.results import CELL_TESTS
    return any(m in nodeid for m in (*CELL_TESTS, GRADIENT_TEST)) or "::test_mutant_is_caught[" in nodeid


GRADIENT_TEST = "::test_gradients["  # gradient cells (issue 23): scheduled with their adapter's other cells


def gradient_cell(nodeid: str) -> tuple[str, str] | None:
    """test_gradients[<case>@<adapter>] -> (case, adapter)."""
    if GRADIENT_TEST not in nodeid or not nodeid.endswith("]"):
        return None
    case, sep, adapter = nodeid.split(GRADIENT_TEST, 1)[1][:-1].rpartition("@")
    return (case, adapter) if sep else None


def read_durations() -> dict[str, float]:
    directory = cache_dir()
    try:
        data = json.loads((directory / "durations.json").read_text()) if directory else {}
        return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and v >= 0}
    except (OSError, ValueError, AttributeError):
        return {}  # none yet, or unreadable: the rough figures


def write_durations(durations: dict[str, float]) -> str | None:
    """Merge this run's item durations into the cache (atomically: runs may finish side by side).  A
    failure to write is returned as a warning line naming the directory, never raised: the cache is an
    optimisation."""
    from normconf.reports.results import write_text
    directory = cache_dir()
    if directory is None or not durations:
        return None
    merged = {**read_durations(), **{k: round(v, 4) for k, v in durations.items()}}
    try:
        write_text(directory / "durations.json", json.dumps(merged, sort_keys=True))
    except OSError as exc:
        return f"cannot write the cache directory {directory} ({exc.strerror or exc}): durations not kept"
    return None


class Unit:
    """Items sharing one start-up, not yet sent to a worker, and the worker that owns them.  startup_s,
    what a second worker would pay first, is the costliest item's duration: the one that started it."""

    def __init__(self, key: str, startup_s: float = 0.0, owner=None):
        self.key, self.startup_s, self.owner = key, startup_s, owner
        self.queue: deque[int] = deque()

    def remaining_s(self, cost: dict) -> float:
        return sum(cost[i] for i in self.queue)


class StartupScheduling(LoadScheduling):
    def __init__(self, config, log=None, adapters: dict | None = None, durations: dict | None = None,
                 mutants: dict | None = None):
        super().__init__(config, log)
        self.adapters, self.durations, self.mutants = adapters or {}, durations or {}, mutants or {}
        self.units: list[Unit] = []
        self.home: dict[int, Unit] = {}     # item index -> the unit it goes back to after a crash
        self.cost: dict[int, float] = {}
        self.current: dict = {}             # node -> the unit it is working through
        self.started: dict = {}             # node -> start-up keys it has paid for

    # -- bookkeeping the base class keeps in self.pending --
    def _unsent(self) -> bool:
        return any(u.queue for u in self.units)

    @property
    def tests_finished(self) -> bool:
        return (self.collection_is_completed and not self._unsent()
                and all(len(p) < 2 for p in self.node2pending.values()))

    @property
    def has_pending(self) -> bool:
        return self._unsent() or any(self.node2pending.values())

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            by_key: dict[str, Unit] = {}
            for index, nodeid in enumerate(self.collection):
                key, startup_s, cell_s = classify(nodeid, self.adapters, self.mutants)
                if key not in by_key:  # the unit's first item pays its start-up
                    by_key[key], cell_s = Unit(key), startup_s + cell_s
                by_key[key].queue.append(index)
                self.home[index], self.cost[index] = by_key[key], self.durations.get(nodeid, cell_s)
            self.units = list(by_key.values())
            for unit in self.units:
                unit.startup_s = max(self.cost[i] for i in unit.queue) if not _filler(unit.key) else 0.0
        for node in self.nodes:
            self.check_schedule(node)

    def check_schedule(self, node, duration: float = 0) -> None:
        """Keep a worker QUEUED_S of work ahead (at least 2 items: it holds its last one back until it
        knows the next, at most MAX_QUEUED), so it never waits for the controller between cells."""
        if node.shutting_down:
            return
        queue = list(self.node2pending[node])
        while len(queue) < MAX_QUEUED and (len(queue) < 2 or sum(self.cost[i] for i in queue) < QUEUED_S):
            index = self._next(node)
            if index is None:
                break
            queue.append(index)
        batch = queue[len(self.node2pending[node]):]
        if batch:
            self.node2pending[node].extend(batch)
            node.send_runtest_some(batch)
        elif len(queue) < 2:  # nothing worth taking: finish the items it holds
            node.shutdown()

    def _next(self, node) -> int | None:
        unit = self.current.get(node)
        if unit is None or not unit.queue:
            unit = self._claim(node)
        return unit.queue.popleft() if unit is not None else None

    def _claim(self, node) -> Unit | None:
        free = [u for u in self.units if u.owner is None and u.queue]
        if free:  # units with a start-up first, longest first; filler last, so the workers finish together
            unit = max(free, key=lambda u: (not _filler(u.key), u.remaining_s(self.cost)))
        else:
            unit = self._steal(node)
            if unit is None:
                return None
        unit.owner = node
        self.current[node] = unit
        self.started.setdefault(node, set()).add(unit.key)
        return unit

    def _steal(self, node) -> Unit | None:
        """Split the tail off the unit with the most work left, when it outweighs this worker's start-up:
        taking x of R seconds finishes both at max(R - x, S + x), best at x = (R - S) / 2."""
        best, gain = None, 0.0
        for unit in self.units:
            startup = 0.0 if unit.key in self.started.get(node, ()) else unit.startup_s
            left = unit.remaining_s(self.cost) - startup
            if unit.owner is not node and len(unit.queue) > 1 and left > gain:
                best, gain = unit, left
        if best is None:
            return None
        part = Unit(best.key, best.startup_s)
        taken = 0.0
        while len(best.queue) > 1 and taken < gain / 2:
            index = best.queue.pop()
            part.queue.appendleft(index)
            self.home[index] = part
            taken += self.cost[index]
        self.units.append(part)
        return part

    def remove_node(self, node) -> str | None:
        """A worker finished or died: its units are free again; a dead worker's running item is returned
        (xdist reports it as crashed) and its other items go back to the front of their units."""
        pending = self.node2pending.pop(node)
        self.current.pop(node, None)
        self.started.pop(node, None)
        for unit in self.units:
            if unit.owner is node:
                unit.owner = None
        if not pending:
            return None
        crashitem = self.collection[pending.pop(0)]
        for index in reversed(pending):
            self.home[index].queue.appendleft(index)
        for other in self.nodes:
            self.check_schedule(other)
        return crashitem

    def mark_test_pending(self, item: str) -> None:
        index = self.collection.index(item)
        self.home[index].queue.appendleft(index)
        for node in self.nodes:
            self.check_schedule(node)
