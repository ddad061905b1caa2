"""ECG exports: the worklist CSV (every column + latest decision, formula-safe) and the one-page PDF report read
back (header, page count, text), atomic writes that leave nothing half-written on a full disk."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BadInput, VitascopeError
from plugins.ecg.report import NOTICE, csv_columns, export_csv, heatmap_overlay, write_pdf_report
from plugins.ecg.review import Worklist
from plugins.ecg.types import ScreenResult

PROBS = {"normal": 0.05, "abnormal_heartbeat": 0.15, "myocardial_infarction": 0.7, "history_of_mi": 0.1}
ROOT = Path(__file__).resolve().parents[3]


def _ecg_image(h: int = 786, w: int = 1106) -> np.ndarray:
    """A paper-ECG-like picture: pink grid, a black trace."""
    img = np.full((h, w, 3), 255, np.uint8)
    img[::8] = (250, 200, 200)
    img[:, ::8] = (250, 200, 200)
    x = np.arange(w)
    y = (h / 2 - 60 * np.exp(-((x % 120) - 60) ** 2 / 20)).astype(int)
    img[y, x] = 0
    return img


def _result(heatmap: np.ndarray | None = None) -> ScreenResult:
    return ScreenResult("a.png", "myocardial_infarction", dict(PROBS), "ecg-vit-tiny", "c0ffee" * 10 + "abcd",
                        heatmap, {"HR": 88.0, "PR": 150.0, "QRS": 96.0, "QT": 380.0, "QTc": 459.6})


def _pdf_text(data: bytes) -> str:
    text = data.decode("latin-1")
    return text.replace("\\(", "(").replace("\\)", ")").replace("\\227", "—")


def _worklist(tmp_path: Path) -> tuple[Worklist, list[int]]:
    wl = Worklist(tmp_path / "w.sqlite")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(name.encode())

    def read(path: Path):
        from plugins.ecg.types import EcgInput

        meta = {"PatientName": "Müller^Jürgen" if path.name == "a.png" else "=HYPERLINK(\"http://x\")",
                "PatientID": "-42", "StudyDate": "20240102"}
        return [EcgInput(str(path), np.zeros((4, 4, 3), np.uint8), None, meta)]

    wl.add_files(sorted(folder.iterdir()), read=read)
    ids = [it.id for it in wl.items()]
    return wl, ids


def test_csv_has_every_column_and_the_latest_decision(tmp_path):
    wl, (a, b, c) = _worklist(tmp_path)
    wl.set_result(a, _result())
    wl.set_result(b, _result())
    wl.decide(a, "Dr. Rossi", "uncertain", comment="first look")
    wl.decide(a, "Dr. Bianchi", "override", "history_of_mi", "old Q waves")
    out = export_csv(wl, tmp_path / "worklist.csv")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for spreadsheets
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert list(rows[0]) == csv_columns() and len(rows) == 3
    first = rows[0]
    assert first["decision_action"] == "override" and first["decision_label"] == "history_of_mi"
    assert first["reviewer"] == "Dr. Bianchi" and first["decision_comment"] == "old Q waves"
    assert first["status"] == "reviewed" and first["label"] == "myocardial_infarction"
    assert float(first["p_myocardial_infarction"]) == pytest.approx(0.7) and float(first["m_QTc"]) == 459.6
    assert first["patient_name"] == "Müller^Jürgen" and first["model_sha256"] == "c0ffee" * 10 + "abcd"
    assert rows[1]["patient_name"].startswith("'=HYPERLINK")  # a spreadsheet must not run it
    assert rows[1]["patient_id"] == "'-42" and rows[2]["status"] == "new" and rows[2]["label"] == ""
    assert not list(tmp_path.glob(".worklist.csv.*"))


def test_pdf_report_reads_back(tmp_path):
    heat = np.zeros((14, 14), np.float32)
    heat[4:8, 6:10] = 1.0
    t0 = time.perf_counter()
    path = write_pdf_report(tmp_path / "report.pdf", _ecg_image(), _result(heat),
                            decision=None, fields={"Patient": "Doe^Jane", "Patient ID": "P-17",
                                                   "Study date": "20130125"},
                            heatmap=heat)
    ms = (time.perf_counter() - t0) * 1e3
    data = path.read_bytes()
    print(f"\nPDF report: {ms:.0f} ms, {len(data) / 1024:.0f} KiB")
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b(?!s)", data)) == 1 and b"/Count 1" in data
    assert b"/Subtype /Image" in data
    text = _pdf_text(data)
    for s in ("Research use only", "not a diagnostic device", "ECG screening report", "Patient: Doe^Jane",
              "Patient ID: P-17", "Myocardial infarction (acute) (70.0%)", "History of MI", "15.0%",
              "HR 88 bpm", "PR 150 ms", "QRS 96 ms", "QT 380 ms", "QTc 460 ms", "Not reviewed.",
              "Model ecg-vit-tiny", "c0ffee" * 10 + "abcd", "Generated ", "UTC", "Overlay: where the model looked"):
        assert s in text, s


def test_pdf_with_a_decision_and_without_a_result(tmp_path):
    wl, (a, _b, _c) = _worklist(tmp_path)
    wl.set_result(a, _result())
    d = wl.decide(a, "Dr. Łukasz Żak", "override", "history_of_mi", "Q waves in II, III, aVF; no ST elevation")
    text = _pdf_text(write_pdf_report(tmp_path / "r1.pdf", _ecg_image(), _result(), d).read_bytes())
    assert "Overridden: History of MI" in text and "by Dr. ?ukasz Zak" in text and "no ST elevation" in text
    assert "Overlay" not in text
    text = _pdf_text(write_pdf_report(tmp_path / "r2.pdf", _ecg_image()[..., 0], None).read_bytes())
    assert "Not screened." in text and "Not reviewed." in text and NOTICE.split(" —")[0] in text


def test_heatmap_overlay_stays_in_its_box():
    img = np.full((100, 200, 3), 200, np.uint8)
    out = heatmap_overlay(img, np.ones((7, 7), np.float32), box=(50, 20, 150, 80))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[:20] == 200).all() and (out[:, :50] == 200).all() and (out[80:] == 200).all()
    assert (out[20:80, 50:150] != 200).any()


def test_bad_targets_are_one_line_errors(tmp_path):
    with pytest.raises(BadInput, match="is a folder"):
        write_pdf_report(tmp_path, _ecg_image(), None)
    with pytest.raises(VitascopeError, match="does not exist"):
        write_pdf_report(tmp_path / "nope" / "r.pdf", _ecg_image(), None)
    with pytest.raises(BadInput, match="expected"):
        write_pdf_report(tmp_path / "r.pdf", np.zeros((0,), np.uint8), None)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_leaves_the_old_file_and_no_temp(tmp_path):
    """A real write failure: the child process may write at most 64 KiB per file (RLIMIT_FSIZE → EFBIG)."""
    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF- the previous report")
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from app.core.errors import VitascopeError
        from plugins.ecg.report import write_pdf_report
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        img = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
        try:
            write_pdf_report({str(target)!r}, img, None)
        except VitascopeError as e:
            print("ERROR", e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("ERROR") and "nothing was saved" in line and "\n" not in line
    assert target.read_bytes() == b"%PDF- the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]
