"""The house rules: app/core and every plug-in engine import neither Qt nor torch (checked by importing them with
those packages blocked), only app/train imports torch, only app/gui and a plug-in's widget.py (and its widget_*.py
parts) import Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.import_graph import import_cycles, import_graph, sources

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


def test_only_train_imports_torch():
    offenders = [str(p.relative_to(ROOT)) for p in sources()
                 if _imports(p) & TORCH and "app/train" not in p.as_posix()]
    assert offenders == []


def test_only_gui_and_widgets_import_qt():
    offenders = [str(p.relative_to(ROOT)) for p in sources()
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


def test_cycle_finder_finds_a_cycle_through_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_dependency_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "app.core.entries" in graph["app.train.worker"]  # a top-level import
    assert "app.core.registry" in graph["app.core.entries"]  # an import inside a function
    assert "app.train.loop" in graph["app.train.pipeline"]  # `from . import loop`


def test_no_import_cycles_in_app_and_plugins():
    """No module of app/ or plugins/ reaches itself through imports, counting imports inside functions: a cycle
    held together by a function-level import breaks start-up as soon as someone moves that import to the top."""
    graph = import_graph()
    assert import_cycles(graph) == []
