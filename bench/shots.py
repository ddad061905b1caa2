"""What the screenshot scripts share: a throw-away user home (fresh settings and zoo), the real main window shown
at a size, a Qt event pump that waits for a time or a condition, and a grab saved to a PNG. Qt is imported only
inside the functions, after `isolated_home` has pointed the app at the temporary folders."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHOTS = ROOT / "resources" / "screenshots"


def isolated_home(prefix: str, config: bool = True) -> Path:
    """A temporary folder that holds VITASCOPE_HOME (models, jobs, data) and, with `config`, XDG_CONFIG_HOME (fresh
    QSettings: a first run with the defaults). Call it before anything of the app is imported."""
    tmp = Path(tempfile.mkdtemp(prefix=f"vitascope-{prefix}-"))
    os.environ["VITASCOPE_HOME"] = str(tmp / "home")
    if config:
        os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    return tmp


def application() -> Any:
    """The QApplication (created on first use)."""
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(sys.argv[:1])


def pump(seconds: float = 0.0, until: Callable[[], bool] | None = None, timeout: float = 180.0,
         what: str = "the window") -> None:
    """Run the Qt event loop for `seconds`, or until `until()` is true (TimeoutError after `timeout` seconds)."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.monotonic() + (timeout if until is not None else seconds)
    while time.monotonic() < end:
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()
        if until is not None and until():
            return
    if until is not None:
        raise TimeoutError(f"{what} did not get ready in {timeout:.0f} s")


def main_window(width: int = 1400, height: int = 880) -> tuple[Any, Any]:
    """(app, window): the real main window, shown at width × height."""
    app = application()
    from app.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(width, height)
    window.show()
    return app, window


def open_tab(window: Any, plugin_id: str) -> Any:
    """Make the plug-in's tab current and return its widget."""
    ids = [t.id for t in window.plugin_tabs]
    if plugin_id not in ids:
        raise SystemExit(f"no {plugin_id!r} tab (tabs: {', '.join(ids)}); is the plug-in installed and loadable?")
    window.tabs.setCurrentIndex(ids.index(plugin_id))
    return window.plugin_tabs[ids.index(plugin_id)].widget


def save(widget: Any, path: str | Path) -> bool:
    """Grab `widget` (a window) into the PNG at `path`, creating its folder; True when written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return bool(widget.grab().save(str(path)))


def close(app: Any, window: Any) -> None:
    window.close()
    app.processEvents()


def finish(app: Any, window: Any, out: str | Path, ok: bool, note: str = "") -> int:
    """Say whether the shots in `out` were written (then `note`), close the window; the exit code for main."""
    print(f"{out}: {'written' if ok else 'FAILED'}{note}")
    close(app, window)
    return 0 if ok else 1
