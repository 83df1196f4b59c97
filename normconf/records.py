"""What the controller makes of a test id: a golden cell (reports/results.py split_nodeid) or a mutant
check; and the kill-table row standing in for a mutant check that never reported."""
from __future__ import annotations

MUTANT_TEST = "::test_mutant_is_caught["


def mutant_name(nodeid: str) -> str | None:
    return nodeid.split(MUTANT_TEST, 1)[1][:-1] if MUTANT_TEST in nodeid and nodeid.endswith("]") else None


def crashed_mutant(name: str, message: str) -> dict:
    """A kill-table row for a mutant whose check never finished: shown as crashed, not left out."""
    from normconf.judge.mutants import MUTANTS_BY_NAME
    mutant = MUTANTS_BY_NAME.get(name)
    return {"mutant": name, "bug": getattr(mutant, "bug", None), "breaks": getattr(mutant, "breaks", None),
            "killed": False, "named": False, "crashed": True, "message": message, "caught_by": [],
            "named_by": [], "margins": {}, "outcomes": {}}
