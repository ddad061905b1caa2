"""Screenshot of the holography tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/holo_screenshot.py [--method auto]`): the
simulated drifting sample refocused live by the shipped autofocus model. Writes resources/screenshot-holography.png."""

from __future__ import annotations

import argparse

from shots import ROOT, finish, isolated_home, main_window, open_tab, pump, save


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshot-holography.png"))
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seconds", type=float, default=8.0, help="how long the live view runs before the grab")
    args = ap.parse_args()
    isolated_home("holo-shot")  # fresh QSettings: the demo source and defaults
    app, window = main_window()
    w = open_tab(window, "holography")
    pump(1.0)
    i = w.method_combo.findData(args.method)
    if i < 0:
        i = w.method_combo.findText(args.method)
    if i >= 0:
        w.method_combo.setCurrentIndex(i)
    if not w.running:
        w.start_demo()
    pump(args.seconds)
    ok = save(window, args.out)
    method = w.method_combo.currentText()
    w.stop()
    return finish(app, window, args.out, ok, f"; method {method}")


if __name__ == "__main__":
    raise SystemExit(main())
