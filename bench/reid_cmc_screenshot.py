"""Screenshot of the retrieval tab's re-ID view with its CMC curve, in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/reid_cmc_screenshot.py [--size 1024x700]`):
resources/screenshots/retrieval-cmc.png — a synthetic re-ID gallery indexed and queried with re-ID borders on, and
the evaluation of a labelled `folders` layout (one sub-folder per identity) plotted as CMC rank 1..20 with mAP."""

from __future__ import annotations

import argparse
from pathlib import Path

from shots import SHOTS, finish, isolated_home, main_window, open_tab, pump, save


def write_folders(root: Path, n_ids: int, views: int, seed: int) -> Path:
    import cv2

    from plugins.retrieval.synthetic import make_split

    x, y, _ = make_split(n_ids, views, seed, 96)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        d = root / f"id{int(label):03d}"
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", default=str(SHOTS))
    ap.add_argument("--size", default="1024x700", help="window size WxH")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    tmp = isolated_home("reid-cmc-shot")
    from plugins.retrieval.synthetic import write_market_layout

    app, window = main_window(width, height)
    w = open_tab(window, "retrieval")
    root = write_market_layout(tmp / "specimens", n_ids=30, seed=20261203, views=6)
    w.add_folder(str(root / "bounding_box_test"))
    w.start_index()
    pump(until=lambda: not w.job_running("index"), timeout=120, what="indexing")
    w.reid.setChecked(True)
    w.query_file(str(sorted((root / "query").iterdir())[5]))
    w.evaluate_folder(write_folders(tmp / "labelled", n_ids=30, views=5, seed=20261204))
    pump(until=lambda: w.evaluation is not None and not w.job_running("evaluate"), timeout=120, what="evaluation")
    w.cmc.setFocus()
    for _ in range(4):
        w.cmc.marker = min(w.cmc.marker + 1, len(w.cmc.values) - 1)
    pump(0.5)
    out = Path(args.out_dir)
    ok = save(window, out / "retrieval-cmc.png")
    return finish(app, window, out, ok, f"; model {w.model_box.currentText()}; {w.status.text()}")


if __name__ == "__main__":
    raise SystemExit(main())
