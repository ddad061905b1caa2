# ruff: noqa: F811  (the make_widget fixture is imported, then requested by name)
"""The ECG review screen driven by keyboard: Tab leaves the worklist and reaches the review controls without
changing the selected ECG, arrows change rows, Ctrl+Enter / Ctrl+O / Ctrl+U decide; exports are enabled only when
they apply; the viewer zooms, pans and draws a fine grid without moiré; the uncertain flag, scope and second
opinion are shown."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QWidget,
)
from test_ecg_widget import DICOM, FakeEngine, _idle, _pngs, make_widget  # noqa: F401  (a fixture)

from plugins.ecg.types import CLASSES, EcgInput, ScreenResult, SecondOpinion
from plugins.ecg.widget_worklist import COLUMNS

OPINION = SecondOpinion("history_of_mi", ["pathological Q waves in II, III, aVF (≥ 40 ms)", "no ST elevation"],
                        ["II", "III", "aVF"], "sinus rhythm 64 bpm", {"HR": 64.0, "QRS": 104.0, "ST_II": 0.01})


class UncertainEngine(FakeEngine):
    """The fake engine, with the fields the real engine is being extended to fill: DICOM groups get a second
    opinion that disagrees and the uncertain flag; images are confident 12-lead reads."""

    def screen(self, inp: EcgInput) -> ScreenResult:
        res = super().screen(inp)
        if inp.kind.startswith("dicom"):
            res.label = "myocardial_infarction"
            res.probabilities = {"normal": 0.05, "abnormal_heartbeat": 0.1, "myocardial_infarction": 0.55,
                                 "history_of_mi": 0.3}
            res.uncertain, res.ood_score = True, 9.5
            res.reasons = ["top class probability 0.55 is below 0.80", "unlike the training data (OOD 9.5)"]
            res.second_opinion = OPINION
            res.disagreement = "model: acute MI; measurements: old inferior MI (Q waves, no ST elevation)"
        return res


def _loaded(make_widget, tmp_path, qtbot, n_png: int = 4):
    w = make_widget(UncertainEngine())
    w.open_files([*_pngs(tmp_path / "in", n_png), DICOM])
    _idle(w, qtbot)
    w.screen_all()
    _idle(w, qtbot)
    w.reviewer_edit.setText("Dr. Rossi")
    return w


def _focus(w, qtbot, widget: QWidget) -> None:
    w.activateWindow()
    widget.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=3000)


def test_tab_leaves_the_table_and_reaches_the_review_controls(make_widget, tmp_path, qtbot):
    w = _loaded(make_widget, tmp_path, qtbot)
    assert not w.table.tabKeyNavigation()
    w.select_item(w.table_model.rows[2].id)
    chosen = w.current.id
    _focus(w, qtbot, w.table)
    seen = []
    for _ in range(12):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
        if seen[-1] is w.uncertain_button:
            break
    want = [w.heatmap_check, w.preview, w.reviewer_edit, w.comment_edit, w.confirm_button, w.override_combo,
            w.override_button, w.uncertain_button]
    assert seen == want  # the visual order, with nothing in between
    assert w.current.id == chosen and w.table.currentIndex().row() == 2  # the patient did not change
    # Shift+Tab walks back to the table, still on the same row
    for _ in range(len(want)):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is w.table and w.current.id == chosen
    # Tab inside the comment moves on instead of typing a tab character
    _focus(w, qtbot, w.comment_edit)
    QTest.keyClicks(w.comment_edit, "ok")
    QTest.keyClick(w.comment_edit, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is w.confirm_button and w.comment_edit.toPlainText() == "ok"


def test_arrow_keys_change_rows_and_shortcuts_decide(make_widget, tmp_path, qtbot):
    w = _loaded(make_widget, tmp_path, qtbot)
    w.select_item(w.table_model.rows[0].id)
    _focus(w, qtbot, w.table)
    first = w.current.id
    QTest.keyClick(w.table, Qt.Key.Key_Down)
    assert w.table.currentIndex().row() == 1 and w.current.id != first
    QTest.keyClick(w.table, Qt.Key.Key_Up)
    assert w.current.id == first
    QTest.keyClick(w.table, Qt.Key.Key_Down)
    target = w.current
    # the decisions, from the keyboard, with focus in the table and in the comment box
    QTest.keyClick(w.table, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert w.worklist.get(target.id).decision_action == "confirm"
    _focus(w, qtbot, w.comment_edit)
    QTest.keyClicks(w.comment_edit, "second reader please")
    QTest.keyClick(w.comment_edit, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    it = w.worklist.get(target.id)
    assert it.decision_action == "uncertain" and it.decision_comment == "second reader please"
    other = next(c for c in CLASSES if c != target.label)
    w.override_combo.setCurrentIndex(w.override_combo.findData(other))
    QTest.keyClick(w.comment_edit, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    it = w.worklist.get(target.id)
    assert it.decision_action == "override" and it.decision_label == other
    assert [d.action for d in w.worklist.audit(target.id, decisions_only=True)] == ["confirm", "uncertain", "override"]
    assert w.current.id == target.id and w.worklist.verify_audit()
    # the shortcuts are in the button text and the tooltips
    for button, key in ((w.confirm_button, "Ctrl+Enter"), (w.override_button, "Ctrl+O"),
                        (w.uncertain_button, "Ctrl+U")):
        assert key in button.text() and key in button.toolTip()
    # a disabled action's shortcut does nothing: an unscreened item has no label to confirm
    w.open_files(_pngs(tmp_path / "more", 1)[:1])
    _idle(w, qtbot)
    new = next(it for it in w.table_model.rows if it.label is None)
    w.select_item(new.id)
    assert not w.confirm_button.isEnabled()
    QTest.keyClick(w.table, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert w.worklist.get(new.id).decision_action is None


def test_controls_have_accessible_names(make_widget, tmp_path, qtbot):
    w = _loaded(make_widget, tmp_path, qtbot, n_png=1)
    focusable = [c for c in w.findChildren(QWidget) if c.isVisible() and c.focusPolicy() & Qt.FocusPolicy.TabFocus
                 and c.isEnabled() and c.focusProxy() is None]
    assert len(focusable) >= 15
    nameless = [c for c in focusable if not c.accessibleName()
                and not (isinstance(c, QAbstractButton) and c.text())]
    assert nameless == []


def test_exports_are_enabled_only_when_they_apply(make_widget, tmp_path, qtbot):
    w = make_widget(UncertainEngine())
    assert not w.csv_action.isEnabled() and "empty" in w.csv_action.toolTip()
    assert not w.pdf_action.isEnabled() and not w.deid_action.isEnabled()
    w.open_files([*_pngs(tmp_path / "in", 2), DICOM])
    _idle(w, qtbot)
    png = next(it for it in w.table_model.rows if it.kind == "image")
    w.select_item(png.id)
    assert w.csv_action.isEnabled() and w.pdf_action.isEnabled()
    assert not w.deid_action.isEnabled() and not w.keep_annotations_action.isEnabled()
    assert "DICOM" in w.deid_action.toolTip() and "select a DICOM ECG" in w.deid_action.text()
    out = tmp_path / "deid"
    assert w.export_deid(out) is None and not out.exists()  # nothing asked, nothing written
    dicom = next(it for it in w.table_model.rows if it.kind.startswith("dicom"))
    w.select_item(dicom.id)
    assert w.deid_action.isEnabled() and w.keep_annotations_action.isEnabled()
    assert "Select a DICOM" not in w.deid_action.toolTip() and "(" not in w.deid_action.text()
    w.table.selectAll()  # a mixed selection holds a DICOM: enabled
    assert w.deid_action.isEnabled()
    w.select_item(png.id)
    assert not w.deid_action.isEnabled()


def test_new_result_fields_are_shown(make_widget, tmp_path, qtbot):
    w = _loaded(make_widget, tmp_path, qtbot, n_png=1)
    dicom = next(it for it in w.table_model.rows if it.kind.startswith("dicom"))
    stored = w.worklist.get(dicom.id)  # through the database, not from the engine's object
    assert stored.uncertain and stored.opinion == OPINION and stored.ood_score == pytest.approx(9.5)
    w.select_item(dicom.id)
    p = w.result_panel
    assert p.uncertain_label.isVisible() and "Uncertain" in p.uncertain_label.text()
    assert "below 0.80" in p.uncertain_label.text() and "unlike the training data" in p.uncertain_label.text()
    assert p.ood_label.isVisible() and "9.50" in p.ood_label.text()
    assert p.disagreement_label.isVisible() and "old inferior MI" in p.disagreement_label.text()
    assert p.opinion_title.text() == "History of MI" and "sinus rhythm 64 bpm" in p.opinion_rhythm.text()
    assert "II, III, aVF" in p.opinion_leads.text() and "Q waves" in p.opinion_findings.text()
    assert "QRS 104 ms" in p.opinion_measure.text() and "ST_II" not in p.opinion_measure.text()
    assert "ST_II" in p.opinion_measure.toolTip()
    assert not p.scope_label.isVisible()
    flag_col = [k for _, k in COLUMNS].index("uncertain")
    row = next(i for i, it in enumerate(w.table_model.rows) if it.id == dicom.id)
    tip = w.table_model.index(row, flag_col).data(Qt.ItemDataRole.ToolTipRole)
    assert "Uncertain" in tip and "disagrees" in tip
    # a rhythm-only result says what was not assessed; an image has no second opinion
    png = next(it for it in w.table_model.rows if it.kind == "image")
    w.worklist.set_result(png.id, ScreenResult(png.source, "normal", {c: 0.25 for c in CLASSES} | {"normal": 0.85},
                                               "m", "0" * 64, scope="rhythm-only",
                                               reasons=["MI cannot be assessed from 2 leads (II, V1); rhythm only"]))
    w.refresh()
    w.select_item(png.id)
    assert p.scope_label.isVisible() and "MI not assessed" in p.scope_label.text()
    assert not p.uncertain_label.isVisible() and not p.disagreement_label.isVisible()
    assert p.result_label.text().startswith("Normal rhythm") and "no waveform" in p.opinion_title.text()
    assert w.table_model.index(0, flag_col).data() in ("R", "")
    # the audit row of a decision records that the flag and the second opinion were on screen
    w.select_item(dicom.id)
    w.confirm()
    shown = w.worklist.latest_decision(dicom.id).shown
    assert shown["uncertain"] is True and shown["second_opinion"] == "history_of_mi" and shown["disagreement"]


def test_preview_zooms_pans_and_draws_fine_lines_without_moire(make_widget, qtbot):
    w = make_widget()
    v = w.preview
    img = np.full((1200, 1800, 3), 255, np.uint8)
    img[:, ::5] = 0  # 1-pixel grid lines every 5 pixels, as on a scan at 300 dpi
    v.set_image(img)
    qtbot.waitUntil(lambda: v.zoom < 0.5, timeout=3000)
    fit = v.zoom
    v.set_zoom(0.29)  # a scale where the lines beat against the screen's pixels
    z = v.zoom
    assert v.drawn_size == (round(1800 * z), round(1200 * z))  # area-resampled to the screen scale

    def banding(profile: np.ndarray) -> float:
        """Low-frequency ripple of a column profile (moiré): its std after an 8-pixel moving average."""
        return float(np.convolve(profile, np.ones(8) / 8, "valid").std())

    shot = v.viewport().grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())
    on_screen = v.mapFromScene(v.sceneRect()).boundingRect().intersected(v.viewport().rect()).adjusted(4, 4, -4, -4)
    region = arr[on_screen.top():on_screen.bottom(), on_screen.left():on_screen.right()].astype(np.float32)
    assert region.shape[0] > 100 and region.shape[1] > 100
    drawn = banding(region.mean(axis=0))
    small = (round(1800 * z), round(1200 * z))
    naive = banding(cv2.resize(img[..., 0], small, interpolation=cv2.INTER_LINEAR).astype(np.float32).mean(0))
    print(f"\nzoom {z:.2f}: banding on screen {drawn:.1f} grey levels, bilinear draw {naive:.1f}; "
          f"mean {region.mean():.0f} (expected {img[..., 0].mean():.0f})")
    assert drawn < 6 and naive > 2.5 * drawn and abs(region.mean() - img[..., 0].mean()) < 8
    v.fit()
    assert v.zoom == pytest.approx(fit)
    z = fit

    _focus(w, qtbot, v)
    QTest.keyClick(v, Qt.Key.Key_Plus)
    assert v.zoom == pytest.approx(z * 1.25, rel=1e-3)
    QTest.keyClick(v, Qt.Key.Key_Minus)
    assert v.zoom == pytest.approx(z, rel=1e-3)
    QTest.keyClick(v, Qt.Key.Key_1)
    assert v.zoom == pytest.approx(1.0) and v.drawn_size == (1800, 1200)
    QTest.keyClick(v, Qt.Key.Key_0)
    assert v.zoom == pytest.approx(z, rel=1e-3)
    w.zoom_in_button.click()
    assert v.zoom == pytest.approx(z * 1.25, rel=1e-3)
    w.fit_button.click()
    # wheel zoom about the pointer, then drag to pan
    centre_pt = QPointF(v.viewport().width() / 2, v.viewport().height() / 2)
    for _ in range(8):
        ev = QWheelEvent(centre_pt, v.viewport().mapToGlobal(centre_pt), QPoint(0, 0), QPoint(0, 120),
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(v.viewport(), ev)
    assert v.zoom == pytest.approx(z * 1.25 ** 8, rel=1e-3)
    h0, v0 = v.horizontalScrollBar().value(), v.verticalScrollBar().value()
    vp = v.viewport()

    def mouse(kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> None:
        QApplication.sendEvent(vp, QMouseEvent(kind, pos, vp.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons,
                                               Qt.KeyboardModifier.NoModifier))

    start = QPointF(200, 150)
    mouse(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    for i in range(1, 6):
        mouse(QEvent.Type.MouseMove, start + QPointF(-20 * i, -10 * i), Qt.MouseButton.LeftButton)
    mouse(QEvent.Type.MouseButtonRelease, start + QPointF(-100, -50), Qt.MouseButton.NoButton)
    assert v.horizontalScrollBar().value() == h0 + 100 and v.verticalScrollBar().value() == v0 + 50
