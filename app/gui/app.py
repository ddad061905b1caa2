"""`run_gui`: create the QApplication, build the main window and run it (or a timed smoke run)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.core import paths

if TYPE_CHECKING:
    from app.core.registry import Registry
    from app.core.zoo import Zoo

log = logging.getLogger(__name__)


def _choose_platform() -> None:
    """Headless machines get the offscreen platform; a real display keeps Qt's default."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        log.info("no DISPLAY or WAYLAND_DISPLAY: using the offscreen Qt platform (no window will be visible)")


def _wait(seconds: float) -> None:
    """Keep the event loop running for `seconds`."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _save_screenshot(window, path: str) -> bool:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        log.error("screenshot %s: cannot create its folder (%s)", target, e.strerror or e)
        return False
    if not window.grab().save(str(target)):
        log.error("screenshot %s: could not be written", target)
        return False
    log.info("screenshot written to %s", target)
    return True


def run_gui(smoke: bool = False, screenshot: str | None = None, smoke_seconds: float = 2.0,
            registry: Registry | None = None, zoo: Zoo | None = None) -> int:
    """Run the GUI. Smoke mode opens every plug-in tab, starts its demo, runs ~`smoke_seconds`, saves the
    screenshot if asked and exits: 0, or 1 if a plug-in widget failed to build or to start its demo, or the
    screenshot could not be written. `registry` and `zoo` replace the discovered ones (tests)."""
    _choose_platform()
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Vitascope")
    app.setApplicationName("Vitascope")
    from .gc_pin import pin_gc_to_qt_thread

    pin_gc_to_qt_thread(app)
    from PySide6.QtGui import QIcon

    app.setWindowIcon(QIcon(str(paths.resources_dir() / "icons" / "vitascope.svg")))

    from .main_window import MainWindow

    t0 = time.monotonic()
    window = MainWindow(registry=registry, zoo=zoo, smoke=smoke)
    window.show()
    if not smoke:
        return app.exec()

    code = 0
    built_badly = [t.id for t in window.plugin_tabs if t.error]
    if built_badly:
        log.error("smoke: plug-in(s) failed to build: %s", ", ".join(built_badly))
        code = 1
    if window.start_demos():
        code = 1
    window.zoo_browser.verify_selected()  # exercises the jobs path and checks the shown model
    if window.plugin_tabs:
        window.tabs.setCurrentIndex(0)
    _wait(smoke_seconds)
    if screenshot and not _save_screenshot(window, screenshot):
        code = 1
    window.close()
    app.processEvents()
    log.info("smoke run finished in %.1f s with exit code %d", time.monotonic() - t0, code)
    return code
