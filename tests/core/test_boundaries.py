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


def test_plugins_reach_the_app_only_through_core():
    """Plug-ins may use app.core (the Host contract and shared readers), never app.gui or app.train at import."""
    offenders = []
    for p in (ROOT / "plugins").rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.col_offset == 0:
                if node.module.startswith(("app.gui", "app.cli", "app.models_cli")):
                    offenders.append(f"{p.relative_to(ROOT)}: {node.module}")
    assert offenders == []


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
