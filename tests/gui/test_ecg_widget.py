"""The ECG review widget on the real Qt host and a real worklist: open files, screen all on a job (cancellable),
view with the heat map, confirm / override / uncertain into the audit log, CSV / PDF / de-identified exports,
no-model and damaged-worklist states. The engine is a small fake (the real one is written in parallel)."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCore import Qt

from app.core.errors import BadInput
from plugins.ecg.report import NOTICE
from plugins.ecg.types import CLASSES, EcgInput, ScreenResult
from plugins.ecg.widget import COLUMNS

DICOM = Path(get_testdata_file("waveform_ecg.dcm"))


class FakeEngine:
    """The engine interface the widget codes against: read / screen / model_info / demo_files, real numpy images.
    Images: the class follows the image's mean red level; DICOM: the two waveform groups, drawn as traces."""

    def __init__(self, model: bool = True, delay_s: float = 0.0, demo: list[Path] | None = None) -> None:
        self.model = model
        self.delay_s = delay_s
        self.demo = demo or []
        self.screened: list[str] = []

    def model_info(self) -> tuple[str, str] | None:
        return ("fake-ecg-vit", hashlib.sha256(b"fake").hexdigest()) if self.model else None

    def demo_files(self) -> list[Path]:
        return list(self.demo)

    def read(self, path: Path) -> list[EcgInput]:
        path = Path(path)
        if path.suffix.lower() == ".dcm":
            ds = pydicom.dcmread(path)
            meta = {k: str(ds.get(k, "")) for k in ("PatientID", "PatientName", "StudyDate")}
            out = []
            for i, item in enumerate(ds.WaveformSequence):
                sig = ds.waveform_array(i)[:2000, 1]
                img = np.full((200, 400, 3), 255, np.uint8)
                y = (100 - sig / (np.abs(sig).max() + 1e-6) * 80).astype(int)
                img[np.clip(y, 0, 199), np.linspace(0, 399, len(sig)).astype(int)] = 0
                out.append(EcgInput(f"{path}#{item.MultiplexGroupLabel}", img, None, meta, "dicom-waveform"))
            return out
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise BadInput(f"{path}: not an ECG image or DICOM file")
        return [EcgInput(str(path), img[..., ::-1].copy())]

    def screen(self, inp: EcgInput) -> ScreenResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        k = int(inp.image[..., 0].mean()) % len(CLASSES)
        probs = {c: (0.7 if i == k else 0.1) for i, c in enumerate(CLASSES)}
        heat = np.zeros((14, 14), np.float32)
        heat[3:9, 5:12] = 1.0
        self.screened.append(inp.source)
        return ScreenResult(inp.source, CLASSES[k], probs, *self.model_info(), heat,
                            {"HR": 60.0, "QRS": 80.0} if inp.kind.startswith("dicom") else {})


def _pngs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = np.full((120, 200, 3), 255, np.uint8)
        img[..., 2] = i  # BGR on disk: the red channel sets the fake class
        img[60, :] = 0
        p = folder / f"ecg{i:02d}.png"
        cv2.imwrite(str(p), img)
        out.append(p)
    return out


@pytest.fixture
def make_widget(isolated_settings, tmp_path, show_widget):
    from app.core.zoo import Zoo
    from app.gui.dispatch import Dispatcher
    from app.gui.host import QtHost
    from app.gui.jobs_qt import JobsModel
    from plugins.ecg.widget import EcgWidget

    def make(engine: FakeEngine | None = None, home: Path | None = None):
        host = QtHost("ecg", Zoo(roots=[tmp_path / "no-models"]), JobsModel(Dispatcher()), home=home or tmp_path)
        return show_widget(EcgWidget(host, engine or FakeEngine()), 1300, 800)

    return make


def _idle(w, qtbot, timeout: int = 15000) -> None:
    qtbot.waitUntil(lambda: not w.jobs, timeout=timeout)


def _audit(w) -> list[dict]:
    con = sqlite3.connect(w.db_path)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY id")]
    con.close()
    return rows


def test_open_screen_view_review_and_export(make_widget, tmp_path, qtbot):
    w = make_widget()
    assert w.banner.isVisible() and w.banner.text() == NOTICE
    assert not w.message.isVisible() and w.screen_button.isEnabled()
    assert w.db_path == tmp_path / "plugins" / "ecg" / "worklist.sqlite" and w.db_path.is_file()
    bad = tmp_path / "in" / "broken.png"
    pngs = _pngs(tmp_path / "in", 3)
    bad.write_bytes(b"not a png")
    w.open_files([*pngs, DICOM, bad])
    assert not w.open_files_button.isEnabled()  # one import at a time
    _idle(w, qtbot)
    assert len(w.table_model.rows) == 5  # 3 images + 2 DICOM waveform groups
    assert len(w.last_errors) == 1 and "broken.png" in w.last_errors[0] and "could not be read" in w.status_label.text()
    dicom_rows = [it for it in w.table_model.rows if it.kind == "dicom-waveform"]
    assert dicom_rows[0].patient_id == "642341" and dicom_rows[0].study_date == "20130125"

    w.screen_all()
    assert w.progress.isVisible() and w.cancel_button.isVisible()
    _idle(w, qtbot)
    assert not w.progress.isVisible() and "Screened 5 ECG(s)" in w.status_label.text()
    assert {it.status for it in w.table_model.rows} == {"screened"}
    assert w.screen_all() is None and "Nothing to screen" in w.status_label.text()

    it = dicom_rows[0]
    assert w.select_item(it.id)
    qtbot.waitUntil(lambda: w.current_image is not None, timeout=5000)
    assert w.preview.image.shape == (200, 400, 3)
    assert "Measurements: HR 60 bpm" in w.measure_label.text() and w.result_label.text() != "(not screened)"
    assert sum(b.value() for b in w.bars.values()) == pytest.approx(1000, abs=2)
    assert w.heatmap_check.isEnabled()
    w.heatmap_check.setChecked(True)
    assert w.preview.heat_visible and w.preview.heat_image.shape == (14, 14, 4) and w.heatmap_shown
    w.heatmap_check.setChecked(False)
    assert not w.preview.heat_visible
    w.heatmap_check.setChecked(True)

    w.reviewer_edit.setText("")
    assert not w.confirm() and "reviewer name" in w.review_status.text()
    w.reviewer_edit.setText("Dr. Rossi")
    w.comment_edit.setPlainText("sinus rhythm, agree")
    assert w.confirm()
    assert w.comment_edit.toPlainText() == "" and "Confirmed" in w.review_status.text()
    assert w.host.settings("ecg")["reviewer"] == "Dr. Rossi"
    other = next(c for c in CLASSES if c != w.current.label)
    w.override_combo.setCurrentIndex(w.override_combo.findData(other))
    w.comment_edit.setPlainText("on second look")
    assert w.override()
    assert w.mark_uncertain()
    rows = [r for r in _audit(w) if r["action"] != "screen"]
    assert [r["action"] for r in rows] == ["confirm", "override", "uncertain"]
    assert rows[0]["reviewer"] == "Dr. Rossi" and rows[0]["comment"] == "sinus rhythm, agree"
    assert rows[0]["label"] == it.label or rows[0]["label"] == w.worklist.get(it.id).label
    assert rows[1]["label"] == other and rows[1]["comment"] == "on second look"
    shown = json.loads(rows[0]["shown"])
    assert shown["heatmap"] is True and shown["label"] == rows[0]["label"]
    assert set(shown["probabilities"]) == set(CLASSES)
    assert rows[0]["model_id"] == "fake-ecg-vit" and len(rows[0]["model_sha256"]) == 64
    assert w.worklist.verify_audit()
    assert "Uncertain" in w.table_model._text(w.worklist.get(it.id), "decision")

    (tmp_path / "out").mkdir()
    w.export_csv(tmp_path / "out" / "worklist.csv")
    w.override(other)  # back to a final decision for the PDF
    w.export_pdf(tmp_path / "out" / "report.pdf")
    _idle(w, qtbot)
    w.export_deid(tmp_path / "out" / "deid")  # alone, so the status line is its own
    _idle(w, qtbot)
    table = list(csv.DictReader((tmp_path / "out" / "worklist.csv").read_text("utf-8-sig").splitlines()))
    assert len(table) == 5 and sum(r["decision_action"] == "uncertain" for r in table) == 1
    pdf = (tmp_path / "out" / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"Research use only" in pdf and b"Dr. Rossi" in pdf
    assert b"Overlay: where the model looked" in pdf  # the heat map was on screen
    written = sorted((tmp_path / "out" / "deid").iterdir())
    assert [p.name for p in written] == ["ecg-deid-001.dcm"]  # two groups, one file
    ds = pydicom.dcmread(written[0])
    assert ds.PatientIdentityRemoved == "YES" and "WaveformAnnotationSequence" not in ds
    qtbot.waitUntil(lambda: "Wrote 1 de-identified DICOM" in w.status_label.text(), timeout=5000)


def test_filters_search_and_sorting(make_widget, tmp_path, qtbot):
    w = make_widget()
    w.open_files(_pngs(tmp_path / "in", 6))
    _idle(w, qtbot)
    w.screen_all()
    _idle(w, qtbot)
    w.select_item(w.table_model.rows[0].id)
    w.reviewer_edit.setText("Dr. Bianchi")
    w.comment_edit.setPlainText("needs a second reader")
    w.mark_uncertain()
    w.decision_filter.setCurrentIndex(w.decision_filter.findData("uncertain"))
    assert len(w.table_model.rows) == 1
    w.decision_filter.setCurrentIndex(0)
    want = w.worklist.items()[-1].label
    w.label_filter.setCurrentIndex(w.label_filter.findData(want))
    assert len(w.table_model.rows) == len([it for it in w.worklist.items() if it.label == want]) >= 1
    assert {it.label for it in w.table_model.rows} == {want}
    w.label_filter.setCurrentIndex(0)
    w.search_edit.setText("second reader")
    qtbot.waitUntil(lambda: len(w.table_model.rows) == 1, timeout=3000)
    w.search_edit.setText("ecg05")
    qtbot.waitUntil(lambda: len(w.table_model.rows) == 1 and "ecg05" in w.table_model.rows[0].path, timeout=3000)
    w.search_edit.clear()
    qtbot.waitUntil(lambda: len(w.table_model.rows) == 6, timeout=3000)
    col = [k for _, k in COLUMNS].index("file")
    w.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    names = [Path(it.path).name for it in w.table_model.rows]
    assert names == sorted(names, reverse=True) and w.order_by == "file" and w.descending
    w.status_filter.setCurrentIndex(w.status_filter.findData("reviewed"))
    assert w.table_model.rows == []
    assert "0 of 6 shown" in w.count_label.text()


def test_no_model_still_allows_review(make_widget, tmp_path, qtbot):
    w = make_widget(FakeEngine(model=False))
    assert w.message.isVisible() and "No ECG model is installed" in w.message.text()
    assert not w.screen_button.isEnabled() and w.screen_all() is None
    w.open_files(_pngs(tmp_path / "in", 2))
    _idle(w, qtbot)
    assert w.select_item(w.table_model.rows[0].id)
    qtbot.waitUntil(lambda: w.current_image is not None, timeout=5000)
    assert w.result_label.text() == "(not screened)" and not w.confirm_button.isEnabled()
    assert not w.heatmap_check.isEnabled()
    w.reviewer_edit.setText("Dr. Rossi")
    assert w.override("normal") and w.worklist.get(w.current.id).status == "reviewed"
    w.engine.model = True  # a model is installed: the zoo notifies, the widget asks again
    w.refresh_model()
    assert not w.message.isVisible() and w.screen_button.isEnabled()


def test_screening_can_be_cancelled(make_widget, tmp_path, qtbot):
    engine = FakeEngine(delay_s=0.1)
    w = make_widget(engine)
    w.open_files(_pngs(tmp_path / "in", 30))
    _idle(w, qtbot)
    w.screen_all()
    qtbot.waitUntil(lambda: len(engine.screened) >= 2, timeout=5000)
    w.cancel()
    _idle(w, qtbot)
    done = [it for it in w.worklist.items() if it.status == "screened"]
    assert 2 <= len(done) < 30 and "cancelled" in w.status_label.text()
    assert w.screen_button.isEnabled() and not w.progress.isVisible()
    engine.delay_s = 0
    w.screen_all()  # picks up the rest
    _idle(w, qtbot)
    assert all(it.status == "screened" for it in w.worklist.items())


def test_demo_files_are_loaded_once(make_widget, tmp_path, qtbot):
    demo = _pngs(tmp_path / "samples", 2)
    w = make_widget(FakeEngine(demo=demo))
    _idle(w, qtbot)
    assert len(w.table_model.rows) == 2 and w.host.settings("ecg")["demo_loaded"] is True
    w.shutdown()
    w2 = make_widget(FakeEngine(demo=demo))
    assert "import" not in w2.jobs and len(w2.table_model.rows) == 2
    w2.start_demo()  # smoke mode: screens what is loaded
    _idle(w2, qtbot)
    assert all(it.status == "screened" for it in w2.worklist.items()) and w2.current is not None


def test_a_damaged_worklist_is_kept_and_can_be_moved_aside(make_widget, tmp_path, qtbot):
    db = tmp_path / "plugins" / "ecg" / "worklist.sqlite"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"garbage" * 500)
    w = make_widget()
    assert w.worklist is None and w.message.isVisible() and "damaged" in w.message.text()
    assert w.recover_button.isVisible() and not w.open_files_button.isEnabled()
    assert db.read_bytes() == b"garbage" * 500  # never silently overwritten
    w.recover_button.click()
    assert w.worklist is not None and not w.recover_button.isVisible()
    aside = list(db.parent.glob("worklist.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"garbage" * 500
    w.open_files(_pngs(tmp_path / "in", 1))
    _idle(w, qtbot)
    assert len(w.table_model.rows) == 1
