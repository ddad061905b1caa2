"""Screenshots of the retrieval tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/retrieval_screenshot.py`):
resources/screenshots/retrieval-query.png (a query image and its ranked, scored results over indexed folders of
synthetic specimens) and retrieval-reid.png (the same query with re-ID borders: green = same identity)."""

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
    ap.add_argument("--out-dir", default=str(ROOT / "resources" / "screenshots"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vitascope-retrieval-shot-"))
    os.environ["VITASCOPE_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow
    from plugins.retrieval.synthetic import write_market_layout

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
    window.tabs.setCurrentIndex(ids.index("retrieval"))
    w = window.plugin_tabs[ids.index("retrieval")].widget
    root = write_market_layout(tmp / "specimens", n_ids=40, seed=20261203, views=6)
    w.add_folder(str(root / "bounding_box_test"))
    w.start_index()
    end = time.monotonic() + 120
    while w.job is not None and time.monotonic() < end:
        wait(0.2)
    query = sorted((root / "query").iterdir())[5]
    w.query_file(str(query))
    wait(1.0)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out / "retrieval-query.png"))
    w.reid.setChecked(True)
    wait(0.5)
    ok &= window.grab().save(str(out / "retrieval-reid.png"))
    print(f"{out}: {'written' if ok else 'FAILED'}; model {w.model_box.currentText()}; {w.status.text()}")
    window.close()
    app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
