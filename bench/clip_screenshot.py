"""Screenshots of the text-search tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/clip_screenshot.py --model FOLDER`):
resources/screenshots/textsearch-text.png (a text query over the indexed COCO validation photos) and
textsearch-combined.png (a weighted query with an example image and a negative term)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from shots import ROOT, SHOTS, finish, isolated_home, main_window, open_tab, pump, save

COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="CLIP model folder to install for the shot")
    ap.add_argument("--images", default=None, help="folder to index (default: the COCO validation photos)")
    ap.add_argument("--text", default="a man riding a wave on top of a surfboard")
    ap.add_argument("--example", default=None, help="image for the combined query (default: first indexed)")
    ap.add_argument("--out-dir", default=str(SHOTS))
    args = ap.parse_args()
    tmp = isolated_home("clip-shot")
    model = Path(args.model)
    shutil.copytree(model, tmp / "home" / "models" / model.name)
    images = Path(args.images) if args.images else tmp / "coco-val"
    if not args.images:
        images.mkdir()
        for name in dict.fromkeys(r["image"] for r in json.loads((COCO / "captions_val.json").read_text())):
            os.symlink(COCO / "images" / name, images / name)

    app, window = main_window()
    w = open_tab(window, "textsearch")
    w.start_index([str(images)])
    pump(until=lambda: not w.job_running("index"), timeout=600, what="indexing")
    out = Path(args.out_dir)
    w.query.setText(args.text)
    w.run_search()
    pump(1.0)
    ok = save(window, out / "textsearch-text.png")
    example = args.example or sorted(images.iterdir())[0]
    w.query.setText(f'"2:{args.text}" + {example} - night')
    w.run_search()
    pump(1.0)
    ok &= save(window, out / "textsearch-combined.png")
    return finish(app, window, out, ok, f"; model {w.model_box.currentText()}; {w.status.text()}")


if __name__ == "__main__":
    raise SystemExit(main())
