"""Screenshots of the text-search tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/clip_screenshot.py --model FOLDER`):
resources/screenshots/textsearch-text.png (a text query over the indexed COCO validation photos) and
textsearch-combined.png (a weighted query with an example image and a negative term)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="CLIP model folder to install for the shot")
    ap.add_argument("--images", default=None, help="folder to index (default: the COCO validation photos)")
    ap.add_argument("--text", default="a man riding a wave on top of a surfboard")
    ap.add_argument("--example", default=None, help="image for the combined query (default: first indexed)")
    ap.add_argument("--out-dir", default=str(ROOT / "resources" / "screenshots"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vitascope-clip-shot-"))
    os.environ["VITASCOPE_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    model = Path(args.model)
    shutil.copytree(model, tmp / "home" / "models" / model.name)
    images = Path(args.images) if args.images else tmp / "coco-val"
    if not args.images:
        import json

        images.mkdir()
        for name in dict.fromkeys(r["image"] for r in json.loads((COCO / "captions_val.json").read_text())):
            os.symlink(COCO / "images" / name, images / name)

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
    window.tabs.setCurrentIndex(ids.index("textsearch"))
    w = window.plugin_tabs[ids.index("textsearch")].widget
    w.start_index([str(images)])
    end = time.monotonic() + 600
    while w._job is not None and time.monotonic() < end:
        wait(0.2)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w.query.setText(args.text)
    w.run_search()
    wait(1.0)
    ok = window.grab().save(str(out / "textsearch-text.png"))
    example = args.example or sorted(images.iterdir())[0]
    w.query.setText(f'"2:{args.text}" + {example} - night')
    w.run_search()
    wait(1.0)
    ok &= window.grab().save(str(out / "textsearch-combined.png"))
    print(f"{out}: {'written' if ok else 'FAILED'}; model {w.model_box.currentText()}; {w.status.text()}")
    window.close()
    app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
