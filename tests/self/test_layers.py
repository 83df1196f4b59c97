"""The import structure: one root (normconf), layers that only import downwards (golden -> adapters ->
judge -> reports, with the plugin, the command and the API on top), no import cycles, nothing in the
product importing the tests, and a docstring for every module.  Read from the source with ast, every
import counted, including those inside functions."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# folder -> the package it installs as (pyproject.toml's package-dir)
PACKAGES = {"normconf": "normconf", "golden": "normconf.golden", "adapters": "normconf.adapters",
            "judge": "normconf.judge", "reports": "normconf.reports", "normconf/checks": "normconf.checks"}
LAYERS = ["normconf.golden", "normconf.adapters", "normconf.judge", "normconf.reports"]  # bottom first


def product_modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


def imports(path: Path, modules: dict) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {m: imports(p, modules) for m, p in modules.items()}


def layer(module: str) -> int:
    for rank, package in enumerate(LAYERS):
        if module == package or module.startswith(package + "."):
            return rank
    return len(LAYERS) if module.startswith("normconf") else -1  # the top: plugin, command, API, checks


def test_layers_import_only_downwards():
    upward = [f"{m} -> {d}" for m, deps in graph().items() for d in deps
              if d.startswith("normconf") and layer(d) > layer(m)]
    assert upward == []


def test_nothing_in_the_product_imports_the_tests_or_the_old_names():
    bad = [f"{m} -> {d}" for m, deps in graph().items() for d in deps
           if d.split(".")[0] in ("tests", "conftest", "golden", "adapters", "judge", "reports")]
    assert bad == []


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_says_what_it_is_for():
    missing = [m for m, p in product_modules().items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []
