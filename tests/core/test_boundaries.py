"""The house rules: app/core and every plug-in engine import neither Qt nor torch (checked by importing them with
those packages blocked), only app/train imports torch, only app/gui and a plug-in's widget.py (and its widget_*.py
parts) import Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QT = {"PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6"}
TORCH = {"torch", "torchvision", "timm", "onnxscript"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _sources() -> list[Path]:
    return [p for d in ("app", "plugins") for p in (ROOT / d).rglob("*.py")]


def test_only_train_imports_torch():
    offenders = [str(p.relative_to(ROOT)) for p in _sources()
                 if _imports(p) & TORCH and "app/train" not in p.as_posix()]
    assert offenders == []


def test_only_gui_and_widgets_import_qt():
    offenders = [str(p.relative_to(ROOT)) for p in _sources()
                 if _imports(p) & QT and "app/gui" not in p.as_posix()
                 and not (p.name == "widget.py" or p.name.startswith("widget_"))]
    assert offenders == []


def _is_widget(p: Path) -> bool:
    return p.name == "widget.py" or p.name.startswith("widget_")


def test_plugins_reach_the_app_only_through_core():
    """Plug-ins may use app.core (the Host contract and shared readers), never app.gui or app.train at import;
    the one exception is app.gui.sdk, the widget toolkit, in a plug-in's widget files."""
    offenders = []
    for p in (ROOT / "plugins").rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.col_offset == 0:
                if node.module == "app.gui.sdk" and _is_widget(p):
                    continue
                if node.module.startswith(("app.gui", "app.cli", "app.models_cli")):
                    offenders.append(f"{p.relative_to(ROOT)}: {node.module}")
    assert offenders == []


def test_every_widget_builds_on_the_sdk():
    """Each plug-in's widget.py imports app.gui.sdk (its toolkit) and only that module of app.gui."""
    widgets = sorted((ROOT / "plugins").glob("*/widget.py"))
    assert len(widgets) >= 3
    for p in widgets:
        tree = ast.parse(p.read_text(encoding="utf-8"))
        gui = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
               and n.module.startswith("app.gui")}
        assert gui == {"app.gui.sdk"}, f"{p.relative_to(ROOT)}: {sorted(gui)}"


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'blocked import of {{name}}')
sys.meta_path.insert(0, Block())
import importlib, pkgutil
import app.core
mods = [m.name for m in pkgutil.walk_packages(app.core.__path__, 'app.core.')]
import plugins
for info in pkgutil.iter_modules(plugins.__path__):
    mods += [f'plugins.{{info.name}}', f'plugins.{{info.name}}.engine']
mods += ['app.cli', 'app.models_cli']
for m in mods:
    try:
        importlib.import_module(m)
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith('.engine'):
            continue
        raise
import app.cli
app.cli.build_parser()  # the frozen app builds every subcommand without torch
print('imported', len(mods))
"""


def test_core_and_engines_import_with_qt_and_torch_blocked():
    code = BLOCKER.format(blocked=sorted(QT | TORCH))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "imported" in r.stdout


def _module_names() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for p in _sources():
        parts = p.relative_to(ROOT).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(m) for b in node.body for m in ast.walk(b))
    return skip


def _project_imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (function-level too; `if TYPE_CHECKING:` aside).
    `from pkg import x` counts pkg.x when that is a module, else pkg (its __init__ runs)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            cands = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for c in cands:
            while c and c not in mods:
                c = c.rpartition(".")[0]
            if c and c != name:
                out.add(c)
    return out


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    sccs.append(sorted(comp))
    return sccs


def test_cycle_finder_finds_a_cycle_through_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_dependency_graph_sees_function_level_and_relative_imports():
    mods = _module_names()
    graph = {m: _project_imports(m, p, mods) for m, p in mods.items()}
    assert "app.core.entries" in graph["app.train.worker"]  # a top-level import
    assert "app.core.registry" in graph["app.core.entries"]  # an import inside a function
    assert "app.train.loop" in graph["app.train.pipeline"]  # `from . import loop`


def test_no_import_cycles_in_app_and_plugins():
    """No module of app/ or plugins/ reaches itself through imports, counting imports inside functions: a cycle
    held together by a function-level import breaks start-up as soon as someone moves that import to the top."""
    mods = _module_names()
    graph = {m: _project_imports(m, p, mods) for m, p in mods.items()}
    assert import_cycles(graph) == []
