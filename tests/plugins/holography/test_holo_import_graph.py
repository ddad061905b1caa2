"""The holography plug-in's modules form no import cycle, counting imports inside functions too (a `from . import x`
depends on the package's __init__, which imports cli, which imports the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[3] / "plugins" / "holography"
NAME = "plugins.holography"


def _module(p: Path) -> str:
    return NAME if p.name == "__init__.py" else f"{NAME}.{p.stem}"


def _graph() -> dict[str, set[str]]:
    mods = {_module(p): p for p in PKG.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, p in mods.items():
        out: set[str] = set()
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level == 1:
                    base = f"{NAME}.{base}" if base else NAME
                cands = [base, *(f"{base}.{a.name}" for a in n.names)]
            elif isinstance(n, ast.Import):
                cands = [a.name for a in n.names]
            else:
                continue
            for c in cands:
                while c and c not in mods:
                    c = c.rpartition(".")[0]
                if c and c != name:
                    out.add(c)
        graph[name] = out
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def test_no_module_of_the_plugin_imports_itself_back():
    graph = _graph()
    assert {f"{NAME}.cli", f"{NAME}.throughput", NAME} <= set(graph)
    cyclic = sorted(m for m in graph if m in _reaches(graph, m))
    assert cyclic == [], f"modules on an import cycle: {cyclic}"
