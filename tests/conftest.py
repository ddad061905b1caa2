"""Shared test set-up: headless Qt, and a private VITASCOPE_HOME per test (QSettings isolation and shown plug-in
widgets that are always shut down, on request)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication; no display in CI


@pytest.fixture(autouse=True)
def vitascope_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """User data (models, settings, jobs) go to a fresh folder, never to the real ~/.local/share/vitascope."""
    home = tmp_path / "vitascope-home"
    monkeypatch.setenv("VITASCOPE_HOME", str(home))
    return home


@pytest.fixture
def isolated_settings(tmp_path: Path):
    """QSettings (INI and native format) read and write under tmp_path; Qt is imported only by tests using it."""
    from PySide6.QtCore import QSettings

    folder = str(tmp_path / "qsettings")
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, folder + "-system")
    return Path(folder)


@pytest.fixture(autouse=True)
def _gc_on_the_qt_thread(request: pytest.FixtureRequest):
    """Qt tests collect garbage on the Qt thread only, as the app does (app/gui/gc_pin.py); others keep the default."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    from app.gui.gc_pin import pin_gc_to_qt_thread

    pinned = pin_gc_to_qt_thread(request.getfixturevalue("qapp"))
    yield
    pinned.stop()


@pytest.fixture
def show_widget(qtbot):
    """show(widget, width, height): the plug-in widget shown at that size in a window qtbot tracks; every widget
    shown is shut down at teardown."""
    shown = []

    def show(w, width: int, height: int):
        qtbot.addWidget(w)
        w.resize(width, height)
        w.show()
        shown.append(w)
        return w

    yield show
    for w in shown:
        w.shutdown()
