"""The ECG tab in the real main window at 1024×700 and 1400×900 (offscreen, on a 1920×1080 virtual screen, in a
child process so the screen size is real): the decision columns are in the table's viewport, no class name or
probability is clipped, no button or combo box text is elided, the window is not forced wider, and the uncertain
flag and the second opinion show side by side with the model's answer.

Run as a script it is that child: `python tests/gui/test_ecg_layout.py OUT.json WxH...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZES = ((1024, 700), (1400, 900))


def _text_fits(widget) -> bool:
    """The widget's own text is drawn whole: its width plus the style's margins within the widget."""
    from PySide6.QtWidgets import QCheckBox, QComboBox, QStyle, QStyleOptionComboBox

    style, fm = widget.style(), widget.fontMetrics()
    if isinstance(widget, QComboBox):
        opt = QStyleOptionComboBox()
        widget.initStyleOption(opt)
        field = style.subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                     QStyle.SubControl.SC_ComboBoxEditField, widget)
        return fm.horizontalAdvance(widget.currentText()) <= field.width()
    text = widget.text().replace("&", "")
    if isinstance(widget, QCheckBox):
        extra = (style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
                 + style.pixelMetric(QStyle.PixelMetric.PM_CheckBoxLabelSpacing))
    else:
        extra = 2 * style.pixelMetric(QStyle.PixelMetric.PM_ButtonMargin, None, widget)
    return fm.horizontalAdvance(text) + extra <= widget.width()


def _in_sight(widget, page) -> bool:
    """The whole widget lies inside the area that shows the page (the window's scroll area around the tab, if
    there is one), i.e. nothing of it is behind the area's edge."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QAbstractScrollArea

    area, parent = None, page.parentWidget()
    while parent is not None and area is None:
        if isinstance(parent, QAbstractScrollArea):
            area = parent.viewport()
        parent = parent.parentWidget()
    frame = area if area is not None else page.window()
    top_left = widget.mapTo(frame, QPoint(0, 0))
    return frame.rect().contains(QRect(top_left, widget.size()))


def probe(out: Path, sizes: list[tuple[int, int]]) -> None:
    """Open the main window on the ECG tab with screened, flagged and reviewed ECGs; measure it at each size."""
    import time

    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox, QWidget

    from app.core.registry import discover
    from app.core.zoo import Zoo
    from app.gui.main_window import MainWindow
    from plugins.ecg.types import CLASSES, ScreenResult, SecondOpinion
    from plugins.ecg.widget_worklist import COLUMNS, DECISION_COLUMNS

    app = QApplication.instance() or QApplication([])
    window = MainWindow(registry=discover(use_entry_points=False), zoo=Zoo([Path(os.environ["VITASCOPE_HOME"])
                                                                            / "no-models"]), confirm_close=False)
    ids = [t.id for t in window.plugin_tabs]
    window.tabs.setCurrentIndex(ids.index("ecg"))
    w = window.plugin_tabs[ids.index("ecg")].widget
    window.show()

    def spin(until, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if until():
                return
            time.sleep(0.02)
        raise TimeoutError("the ECG tab did not get ready")

    spin(lambda: w.worklist is not None and len(w.worklist) >= 4 and not w.jobs)
    items = w.worklist.items()
    probs = {c: 0.1 for c in CLASSES} | {"abnormal_heartbeat": 0.7}
    opinion = SecondOpinion("history_of_mi", ["pathological Q waves in II, III, aVF"], ["II", "III", "aVF"],
                            "sinus rhythm 64 bpm", {"HR": 64.0, "QRS": 100.0})
    for i, it in enumerate(items):
        w.worklist.set_result(it.id, ScreenResult(it.source, "normal" if i == 2 else CLASSES[i % 4], probs, "m",
                                                  "0" * 64, uncertain=i == 0,
                                                  scope="rhythm-only" if i == 2 else "12-lead",
                                                  reasons=["top class below 0.80"],
                                                  second_opinion=opinion if i == 0 else None,
                                                  disagreement="model: abnormal beat; measurements: old MI"
                                                  if i == 0 else ""))
    w.worklist.decide(items[1].id, "Dr. Bartholomew-Longname", "override", "history_of_mi")
    w.refresh()
    w.select_item(items[0].id)
    keys = [k for _, k in COLUMNS]
    report = []
    for width, height in sizes:
        window.resize(width, height)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        t = w.table
        fm = t.fontMetrics()
        cols = [{"key": keys[c], "hidden": t.isColumnHidden(c), "x": t.columnViewportPosition(c),
                 "width": t.columnWidth(c)} for c in range(len(COLUMNS))]
        cells = [{"text": w.table_model.index(r, c).data() or "", "need": fm.horizontalAdvance(
                  w.table_model.index(r, c).data() or "") + 8, "width": t.columnWidth(c)}
                 for r in range(len(w.table_model.rows)) for c in (1, 2, 3)]
        controls = [c for c in w.findChildren(QWidget) if c.isVisible() and isinstance(c, (QAbstractButton, QComboBox))
                    and (not isinstance(c, QAbstractButton) or c.text())]
        parts = {}
        for name in ("review_box", "preview", "details", "table"):
            part = getattr(w, name)
            corner = part.mapTo(window, QPoint(part.width(), part.height()))
            parts[name] = {"right": corner.x(), "bottom": corner.y(), "width": part.width(),
                           "height": part.height(), "in_sight": _in_sight(part, w)}
        report.append({
            "size": [width, height], "window": [window.width(), window.height()],
            "minimum": [window.minimumSizeHint().width(), window.minimumSizeHint().height()],
            "viewport": t.viewport().width(), "hscroll": [t.horizontalScrollBar().value(),
                                                          t.horizontalScrollBar().maximum()],
            "columns": cols, "cells": cells,
            "controls": [c.text() if isinstance(c, QAbstractButton) else c.currentText() for c in controls],
            "clipped": [c.text() if isinstance(c, QAbstractButton) else c.currentText() for c in controls
                        if not _text_fits(c)],
            "cut_off": [c.text() if isinstance(c, QAbstractButton) else c.currentText() for c in controls
                        if not _in_sight(c, w)],
            "page": [w.width(), w.height()], "page_minimum": [w.minimumSizeHint().width(),
                                                              w.minimumSizeHint().height()],
            "parts": parts, "side_by_side": w.result_panel.side_by_side,
            "uncertain_shown": w.result_panel.uncertain_label.isVisible(),
            "opinion_leads": w.result_panel.opinion_leads.text() if w.result_panel.opinion_leads.isVisible() else "",
            "disagreement_shown": w.result_panel.disagreement_label.isVisible(),
            "flag": w.table_model.index(0, keys.index("uncertain")).data(),
            "decision_columns": DECISION_COLUMNS,
        })
    out.write_text(json.dumps(report, indent=1))
    window.shutdown(5)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("ecg-layout")
    screen = tmp / "screen.json"
    screen.write_text(json.dumps({"screens": [{"name": "virtual", "x": 0, "y": 0, "width": 1920, "height": 1080,
                                               "logicalDpi": 96}]}))
    out = tmp / "layout.json"
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screen}", VITASCOPE_HOME=str(tmp / "home"),
               XDG_CONFIG_HOME=str(tmp / "config"), PYTHONPATH=str(ROOT))
    sizes = [f"{w}x{h}" for w, h in SIZES]
    proc = subprocess.run([sys.executable, __file__, str(out), *sizes], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_decision_columns_and_texts_fit(measured, size):
    m = next(r for r in measured if tuple(r["size"]) == size)
    print(f"\n{size}: window {m['window']} (minimum {m['minimum']}), ECG page {m['page']} (minimum "
          f"{m['page_minimum']}), table viewport {m['viewport']} px, columns "
          + ", ".join(f"{c['key']} {c['width']}" for c in m["columns"] if not c["hidden"]))
    assert m["window"] == list(size)  # nothing forced the window wider or taller
    assert m["hscroll"][0] == 0
    for c in m["columns"][:m["decision_columns"]]:
        assert not c["hidden"] and c["x"] >= 0 and c["x"] + c["width"] <= m["viewport"], c
    assert [c for c in m["cells"] if c["need"] > c["width"]] == []  # labels, P(abnormal), the flag
    assert m["flag"] == "⚠"
    assert {"Confirm (Ctrl+Enter)", "Override (Ctrl+O)", "Uncertain (Ctrl+U)", "Export"} <= set(m["controls"])
    assert m["clipped"] == []
    assert m["cut_off"] == []  # no control hidden in part behind the page's edge or a scroll bar
    for name, part in m["parts"].items():
        assert part["right"] <= size[0] and part["bottom"] <= size[1] and part["height"] >= 60, name
        assert part["in_sight"], name
    assert m["side_by_side"] and m["uncertain_shown"] and m["disagreement_shown"]
    assert "II, III, aVF" in m["opinion_leads"]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    probe(Path(sys.argv[1]), [tuple(int(v) for v in s.split("x")) for s in sys.argv[2:]])
