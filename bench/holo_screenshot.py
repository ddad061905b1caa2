"""Screenshot of the holography tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/holo_screenshot.py [--method auto]`): the
simulated drifting sample refocused live by the shipped autofocus model. Writes resources/screenshot-holography.png."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshot-holography.png"))
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seconds", type=float, default=8.0, help="how long the live view runs before the grab")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vitascope-holo-shot-"))
    os.environ["VITASCOPE_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")  # fresh QSettings: the demo source and defaults

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.resize(1400, 880)
    window.show()

    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()

    ids = [t.id for t in window.plugin_tabs]
    window.tabs.setCurrentIndex(ids.index("holography"))
    w = window.plugin_tabs[ids.index("holography")].widget
    wait(1.0)
    i = w.method_combo.findData(args.method)
    if i < 0:
        i = w.method_combo.findText(args.method)
    if i >= 0:
        w.method_combo.setCurrentIndex(i)
    if not w.running:
        w.start_demo()
    wait(args.seconds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    print(f"{out}: {'written' if ok else 'FAILED'}; method {w.method_combo.currentText()}")
    w.stop()
    window.close()
    app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
