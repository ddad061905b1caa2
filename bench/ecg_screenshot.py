"""Screenshot of the ECG review tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/ecg_screenshot.py`): the demo ECGs screened by the
shipped model, one selected with its heat map on. Writes resources/screenshots/ecg-review.png."""

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
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshots" / "ecg-review.png"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vitascope-ecg-shot-"))
    os.environ["VITASCOPE_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")  # fresh QSettings: a first run, demo ECGs loaded

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.resize(1400, 880)
    window.show()

    def wait(seconds: float = 0.0, until=None, timeout: float = 120.0) -> None:
        end = time.monotonic() + (timeout if until else seconds)
        while time.monotonic() < end:
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()
            if until is not None and until():
                return
        if until is not None:
            raise TimeoutError("the ECG tab did not get ready")

    ids = [t.id for t in window.plugin_tabs]
    tab = window.plugin_tabs[ids.index("ecg")]
    window.tabs.setCurrentIndex(ids.index("ecg"))
    w = tab.widget
    wait(until=lambda: w.worklist is not None and len(w.worklist) >= 4)
    w.screen_all()
    wait(until=lambda: all(it.status != "new" for it in w.worklist.items()))
    items = w.worklist.items()
    target = next((it for it in items if it.label == "myocardial_infarction"), items[0])
    w.select_item(target.id)
    wait(1.0)
    w.heatmap_check.setChecked(True)
    wait(1.0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    print(f"{out}: {'written' if ok else 'FAILED'}; items: " + ", ".join(f"{Path(it.path).name}={it.label}"
                                                                      for it in w.worklist.items()))
    window.close()
    app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
