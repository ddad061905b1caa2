"""Screenshots of the retrieval tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/retrieval_screenshot.py`):
resources/screenshots/retrieval-query.png (a query image and its ranked, scored results over indexed folders of
synthetic specimens) and retrieval-reid.png (the same query with re-ID borders: green = same identity)."""

from __future__ import annotations

import argparse
from pathlib import Path

from shots import SHOTS, finish, isolated_home, main_window, open_tab, pump, save


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", default=str(SHOTS))
    args = ap.parse_args()
    tmp = isolated_home("retrieval-shot")
    from plugins.retrieval.synthetic import write_market_layout

    app, window = main_window()
    w = open_tab(window, "retrieval")
    root = write_market_layout(tmp / "specimens", n_ids=40, seed=20261203, views=6)
    w.add_folder(str(root / "bounding_box_test"))
    w.start_index()
    pump(until=lambda: not w.job_running("index"), timeout=120, what="indexing")
    query = sorted((root / "query").iterdir())[5]
    w.query_file(str(query))
    pump(1.0)
    out = Path(args.out_dir)
    ok = save(window, out / "retrieval-query.png")
    w.reid.setChecked(True)
    pump(0.5)
    ok &= save(window, out / "retrieval-reid.png")
    return finish(app, window, out, ok, f"; model {w.model_box.currentText()}; {w.status.text()}")


if __name__ == "__main__":
    raise SystemExit(main())
