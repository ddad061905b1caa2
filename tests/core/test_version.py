"""The version is written once, in pyproject.toml: the CLI reports it from the installed metadata, and a checkout
without metadata reads pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WANT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_cli_reports_the_pyproject_version():
    r = subprocess.run([sys.executable, "-m", "app", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"vitascope {WANT}"


def test_without_installed_metadata_the_version_comes_from_pyproject():
    code = ("import importlib.metadata as m\n"
            "def missing(name):\n    raise m.PackageNotFoundError(name)\n"
            "m.version = missing\n"
            "import app\nprint(app.__version__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == WANT


def test_no_other_module_writes_the_version():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*.py")
                 if f'__version__ = "{WANT}"' in p.read_text(encoding="utf-8")]
    assert offenders == []
