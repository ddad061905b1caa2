"""Screenshot of the holography tab in the real main window (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/holo_screenshot.py [--method auto] [--size 1024x700]
[--record]`): the simulated drifting sample refocused live, with the focus readout, z range, background and optics
as the stream uses them (`--record`: while recording, with the disk rate).
Writes resources/screenshot-holography.png."""

from __future__ import annotations

import argparse

from shots import ROOT, finish, isolated_home, main_window, open_tab, pump, save


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshot-holography.png"))
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seconds", type=float, default=8.0, help="how long the live view runs before the grab")
    ap.add_argument("--size", default="1400x880", help="window size WxH (1024x700: the smallest supported)")
    ap.add_argument("--record", action="store_true", help="record to a temporary file during the grab (shows "
                    "the disk rate and free space)")
    args = ap.parse_args()
    tmp = isolated_home("holo-shot")  # fresh QSettings: the demo source and defaults
    width, height = (int(v) for v in args.size.lower().split("x"))
    app, window = main_window(width, height)
    w = open_tab(window, "holography")
    pump(1.0)
    i = w.method_combo.findData(args.method)
    if i < 0:
        i = w.method_combo.findText(args.method)
    if i >= 0:
        w.method_combo.setCurrentIndex(i)
    if not w.running:
        w.start_demo()
    if args.record:
        pump(1.0)
        w.start_recording(tmp / "shot.h5")
    pump(args.seconds)
    w.tick()
    pump(0.3)
    ok = save(window, args.out)
    method = w.method_combo.currentText()
    w.stop()
    return finish(app, window, args.out, ok, f"; method {method}")


if __name__ == "__main__":
    raise SystemExit(main())
