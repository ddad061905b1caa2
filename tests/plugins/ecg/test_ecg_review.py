"""The ECG worklist: adding without duplicates, filters and order, results, decisions, the append-only hash-chained
audit log, two objects / threads on one file, damaged files, and a 10k-item timing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BadInput, VitascopeError
from plugins.ecg.review import Worklist, WorklistCorrupt
from plugins.ecg.types import CLASSES, EcgInput, ScreenResult
from tests.helpers import run_sql

PROBS = {"normal": 0.1, "abnormal_heartbeat": 0.2, "myocardial_infarction": 0.6, "history_of_mi": 0.1}


def _files(folder: Path, n: int, prefix: str = "ecg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}.png"
        p.write_bytes(f"image {prefix} {i}".encode())
        out.append(p)
    return out


def _result(label: str = "myocardial_infarction", probs: dict[str, float] | None = None,
            heatmap: np.ndarray | None = None) -> ScreenResult:
    return ScreenResult("x", label, dict(probs or PROBS), "ecg-vit-tiny", "ab" * 32, heatmap, {"HR": 72.0})


def _read_two_groups(path: Path) -> list[EcgInput]:
    """A reader like the DICOM one: two groups per file, with patient fields."""
    img = np.zeros((8, 8, 3), np.uint8)
    meta = {"PatientID": "P-17", "PatientName": "Doe^Jane", "StudyDate": "20130125"}
    return [EcgInput(f"{path}#RHYTHM", img, None, meta, "dicom-waveform"),
            EcgInput(f"{path}#MEDIAN BEAT", img, None, meta, "dicom-waveform")]


def test_created_on_first_use_with_wal_and_foreign_keys(tmp_path):
    db = tmp_path / "sub" / "worklist.sqlite"
    wl = Worklist(db)
    assert db.is_file()
    assert wl._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert wl._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert wl._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    wl.close()
    assert len(Worklist(db)) == 0  # reopening keeps the schema


def test_add_files_skips_duplicates_by_source_and_content(tmp_path):
    wl = Worklist(tmp_path / "w.sqlite")
    files = _files(tmp_path / "in", 3)
    assert wl.add_files(files) == 3
    assert wl.add_files(files) == 0
    files[0].write_bytes(b"changed content")  # same file name, new content: a new item
    assert wl.add_files(files) == 1
    copy = tmp_path / "in" / "copy.png"
    copy.write_bytes(files[1].read_bytes())  # same content, another source: a new item
    assert wl.add_files([copy]) == 1
    assert len(wl) == 5 and {it.status for it in wl.items()} == {"new"}
    assert wl.items()[0].kind == "image" and len(wl.items()[0].sha256) == 64


def test_add_with_a_reader_makes_one_item_per_group_with_patient_fields(tmp_path):
    wl = Worklist(tmp_path / "w.sqlite")
    f = _files(tmp_path / "in", 1)[0]
    assert wl.add_files([f], read=_read_two_groups) == 2
    assert wl.add_files([f], read=_read_two_groups) == 0
    items = wl.items()
    assert [it.source.split("#")[1] for it in items] == ["RHYTHM", "MEDIAN BEAT"]
    assert items[0].patient_id == "P-17" and items[0].patient_name == "Doe^Jane" and items[0].study_date == "20130125"
    assert items[0].meta["PatientID"] == "P-17" and items[0].kind == "dicom-waveform"


def test_unreadable_files_raise_or_are_collected(tmp_path):
    wl = Worklist(tmp_path / "w.sqlite")
    good = _files(tmp_path / "in", 2)

    def read(path: Path) -> list[EcgInput]:
        if path.name == "ecg001.png":
            raise BadInput(f"{path}: not an ECG image")
        if path.name == "bug.png":
            raise ZeroDivisionError("reader bug")
        return [EcgInput(str(path), np.zeros((4, 4, 3), np.uint8))]

    with pytest.raises(BadInput, match="no such file"):
        wl.add_files([tmp_path / "missing.png"])
    bug = tmp_path / "in" / "bug.png"
    bug.write_bytes(b"x")
    errors: list[str] = []
    assert wl.add_files([*good, bug, tmp_path / "missing.png"], read=read, errors=errors) == 1
    assert len(errors) == 3 and "not an ECG image" in errors[0] and "ZeroDivisionError" in errors[1]
    assert all("\n" not in e for e in errors)


def test_add_folder_finds_ecg_files_recursively(tmp_path):
    root = tmp_path / "in"
    _files(root, 2)
    _files(root / "deeper", 1, "x")
    (root / "notes.txt").write_text("not an ECG")
    dicom_no_ext = root / "IM0001"
    dicom_no_ext.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    wl = Worklist(tmp_path / "w.sqlite")
    assert wl.add_folder(root) == 4
    assert {it.kind for it in wl.items()} == {"image", "dicom"}
    with pytest.raises(BadInput, match="no such folder"):
        wl.add_folder(tmp_path / "nope")


def test_find_files_uses_the_shared_walk_and_suffix_registry(tmp_path):
    """Every image suffix the app reads (any case), DICOM and WFDB headers are found in sorted-path order; a WFDB
    record is one file (its .hea); hidden files and folders, pipes and other files are not."""
    import os

    from app.core.io.images import IMAGE_SUFFIXES

    root = tmp_path / "in"
    wanted = [f"img/a{s.upper()}" for s in sorted(IMAGE_SUFFIXES)] + ["rec/r1.hea", "sub/x.dcm", "sub/y.DICOM"]
    for rel in [*wanted, "rec/r1.dat", "notes.txt", ".cache/z.dcm", "sub/.hidden.png"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    os.mkfifo(root / "sub" / "pipe.dcm")
    found = [p.relative_to(root).as_posix() for p in Worklist.find_files(root)]
    assert found == sorted(wanted, key=lambda r: Path(r).parts)


def test_filters_order_and_search(tmp_path):
    wl = Worklist(tmp_path / "w.sqlite")
    wl.add_files(_files(tmp_path / "in", 4))
    ids = [it.id for it in wl.items()]
    wl.set_result(ids[0], _result("normal", {"normal": 0.9, "abnormal_heartbeat": 0.1,
                                             "myocardial_infarction": 0, "history_of_mi": 0}))
    wl.set_result(ids[1], _result())
    wl.set_result(ids[2], _result("abnormal_heartbeat", {"normal": 0.4, "abnormal_heartbeat": 0.6,
                                                         "myocardial_infarction": 0, "history_of_mi": 0}))
    wl.decide(ids[1], "Dr. Rossi", "confirm", comment="classic anterior STEMI")
    assert [it.id for it in wl.items(status="new")] == [ids[3]]
    assert [it.id for it in wl.items(status="reviewed")] == [ids[1]]
    assert [it.id for it in wl.items(label="normal")] == [ids[0]]
    assert [it.id for it in wl.items(order_by="p_abnormal", descending=True)] == [ids[1], ids[2], ids[0], ids[3]]
    assert [it.id for it in wl.items(order_by="p_abnormal")] == [ids[0], ids[2], ids[1], ids[3]]  # empty last
    assert [it.id for it in wl.items(search="STEMI")] == [ids[1]]
    assert [it.id for it in wl.items(search="ecg002")] == [ids[2]]
    assert wl.items(search="100%_") == []  # LIKE wildcards are literal
    assert [it.id for it in wl.items(decision="none")] == [ids[0], ids[2], ids[3]]
    assert wl.counts() == {"new": 1, "screened": 2, "reviewed": 1, "uncertain": 0, "total": 4}
    with pytest.raises(BadInput, match="cannot sort"):
        wl.items(order_by="drop table")
    with pytest.raises(BadInput, match="unknown worklist status"):
        wl.items(status="done")


def test_set_result_stores_the_read_and_the_heatmap(tmp_path):
    wl = Worklist(tmp_path / "w.sqlite")
    wl.add_files(_files(tmp_path / "in", 1))
    item_id = wl.items()[0].id
    heat = np.linspace(0, 1, 14 * 14, dtype=np.float32).reshape(14, 14)
    wl.set_result(item_id, _result(heatmap=heat))
    it = wl.get(item_id)
    assert it.status == "screened" and it.label == "myocardial_infarction" and it.probabilities == PROBS
    assert it.p_abnormal == pytest.approx(0.9) and it.measurements == {"HR": 72.0}
    assert it.model_id == "ecg-vit-tiny" and it.model_sha256 == "ab" * 32 and it.screened_at.endswith("+00:00")
    back, box = wl.heatmap(item_id)
    assert back.shape == (14, 14) and np.abs(back - heat).max() <= 1 / 255 and box is None
    audit = wl.audit(item_id)
    assert [a.action for a in audit] == ["screen"] and audit[0].reviewer == "model:ecg-vit-tiny"
    assert audit[0].shown["probabilities"] == PROBS


def test_decisions_and_their_rules(tmp_path):
    wl = Worklist(tmp_path / "w.sqlite")
    wl.add_files(_files(tmp_path / "in", 2))
    a, b = (it.id for it in wl.items())
    with pytest.raises(BadInput, match="not screened yet"):
        wl.decide(a, "Dr. Rossi", "confirm")
    wl.set_result(a, _result())
    with pytest.raises(BadInput, match="reviewer name"):
        wl.decide(a, "  ", "confirm")
    with pytest.raises(BadInput, match="needs the reviewer's class"):
        wl.decide(a, "Dr. Rossi", "override")
    with pytest.raises(BadInput, match="use confirm"):
        wl.decide(a, "Dr. Rossi", "override", "myocardial_infarction")
    with pytest.raises(BadInput, match="unknown ECG class"):
        wl.decide(a, "Dr. Rossi", "override", "covid")
    with pytest.raises(BadInput, match="unknown review action"):
        wl.decide(a, "Dr. Rossi", "sign")

    shown = {"label": "myocardial_infarction", "probabilities": PROBS, "heatmap": True}
    d = wl.decide(a, "Dr. Rossi", "uncertain", comment="ask Dr. Bianchi", shown=shown)
    assert d.action == "uncertain" and d.label is None and wl.get(a).status == "screened"
    d = wl.decide(a, "Dr. Bianchi", "override", "history_of_mi", "old Q waves, no ST elevation", shown)
    it = wl.get(a)
    assert it.status == "reviewed" and it.final_label == "history_of_mi" and it.reviewer == "Dr. Bianchi"
    assert d.model_id == "ecg-vit-tiny" and d.shown == shown and d.at.endswith("+00:00")
    d = wl.decide(b, "Dr. Rossi", "uncertain", "normal")  # a leaning on an unscreened item
    assert wl.get(b).status == "new" and d.label == "normal"
    latest = wl.latest_decision(a)
    assert latest is not None and latest.reviewer == "Dr. Bianchi"
    assert [x.action for x in wl.audit(decisions_only=True)] == ["uncertain", "override", "uncertain"]
    assert set(CLASSES) >= {x.label for x in wl.audit() if x.label}


def test_audit_is_append_only_and_tampering_is_detected(tmp_path):
    db = tmp_path / "w.sqlite"
    wl = Worklist(db)
    wl.add_files(_files(tmp_path / "in", 2))
    a, b = (it.id for it in wl.items())
    wl.set_result(a, _result())
    wl.decide(a, "Dr. Rossi", "confirm", comment="agree")
    wl.decide(b, "Dr. Rossi", "uncertain")
    check = wl.verify_audit()
    assert check and check.rows == 3 and check.problems == []
    raw = sqlite3.connect(db)
    for sql in ("UPDATE audit SET comment = 'edited' WHERE id = 2", "DELETE FROM audit WHERE id = 3",
                "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(sql)
    with pytest.raises(sqlite3.IntegrityError, match="audit rows"):  # even with foreign keys off
        raw.execute("DELETE FROM items WHERE id = ?", (a,))

    # someone with write access drops the triggers and edits a decision: the chain shows it
    raw.execute("DROP TRIGGER audit_no_update")
    raw.execute("UPDATE audit SET label = 'normal' WHERE id = 2")
    raw.commit()
    check = wl.verify_audit()
    assert not check
    assert any("audit_no_update is missing" in p for p in check.problems)
    assert any("row 2: content does not match" in p for p in check.problems)

    db2 = tmp_path / "w2.sqlite"
    wl2 = Worklist(db2)
    wl2.add_files(_files(tmp_path / "in2", 1))
    item = wl2.items()[0].id
    for i in range(4):
        wl2.decide(item, f"R{i}", "uncertain")
    raw2 = sqlite3.connect(db2)
    raw2.execute("DROP TRIGGER audit_no_delete")
    raw2.execute("DELETE FROM audit WHERE id = 2")
    raw2.commit()
    problems = wl2.verify_audit().problems
    assert any("rows 2..1" in p or "2..2" in p or "missing" in p for p in problems)
    assert any("row 3: does not follow" in p for p in problems)
    raw2.execute("DELETE FROM audit WHERE id = 4")  # removing the newest row only: caught by the chain head
    raw2.commit()
    assert any("chain head" in p for p in wl2.verify_audit().problems)


def test_two_worklists_and_threads_on_one_file(tmp_path):
    db = tmp_path / "w.sqlite"
    gui, job = Worklist(db), Worklist(db)  # e.g. the GUI thread and a screening job
    gui.add_files(_files(tmp_path / "in", 40))
    ids = [it.id for it in gui.items()]
    errors: list[BaseException] = []

    def screen() -> None:
        try:
            for i in ids:
                job.set_result(i, _result())
        except BaseException as e:
            errors.append(e)

    def review() -> None:
        try:
            for i in ids:
                gui.decide(i, "Dr. Rossi", "uncertain", comment=f"look at {i}")
                gui.items(order_by="p_abnormal")
        except BaseException as e:
            errors.append(e)

    shared_errors: list[BaseException] = []

    def shared(k: int) -> None:  # one object used from several threads
        try:
            for i in ids[k::3]:
                gui.decide(i, f"T{k}", "uncertain")
        except BaseException as e:
            shared_errors.append(e)

    threads = [threading.Thread(target=screen), threading.Thread(target=review)]
    threads += [threading.Thread(target=shared, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not shared_errors
    assert all(it.label == "myocardial_infarction" for it in job.items())
    assert len(gui.audit()) == 40 + 40 + 40
    assert gui.verify_audit() and job.verify_audit()


def test_a_damaged_file_is_reported_and_never_overwritten(tmp_path):
    db = tmp_path / "worklist.sqlite"
    junk = b"this is not a database, " * 100
    db.write_bytes(junk)
    with pytest.raises(WorklistCorrupt, match="damaged or not a SQLite file.*left untouched") as err:
        Worklist(db)
    assert "\n" not in str(err.value) and isinstance(err.value, VitascopeError)
    assert db.read_bytes() == junk
    wl = Worklist(db, recover=True)
    assert wl.recovered_from is not None and wl.recovered_from.read_bytes() == junk
    assert wl.recovered_from.name.startswith("worklist.sqlite.corrupt-") and len(wl) == 0
    wl.add_files(_files(tmp_path / "in", 1))
    assert len(wl) == 1


def test_truncated_foreign_and_newer_databases(tmp_path):
    db = tmp_path / "w.sqlite"
    wl = Worklist(db)
    wl.add_files(_files(tmp_path / "in", 300))
    for it in wl.items():
        wl.decide(it.id, "Dr. Rossi", "uncertain", comment="x" * 200)
    wl._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wl.close()
    data = db.read_bytes()
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorklistCorrupt):
        Worklist(cut)
    assert cut.read_bytes() == data[: len(data) // 2]

    other = tmp_path / "other.sqlite"
    run_sql(other, "CREATE TABLE patients (id INTEGER)")
    with pytest.raises(WorklistCorrupt, match="not a Vitascope ECG worklist"):
        Worklist(other)

    run_sql(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(BadInput, match="newer Vitascope"):
        Worklist(db)


def test_ten_thousand_items_insert_and_query(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"e{i:05d}.png").write_bytes(b"%d" % i)
    wl = Worklist(tmp_path / "w.sqlite")
    t0 = time.perf_counter()
    assert wl.add_folder(folder) == 10_000
    t_add = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = wl.items(order_by="patient", descending=True)
    t_query = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = wl.items(search="e0999")
    t_search = time.perf_counter() - t0
    print(f"\n10k items: add {t_add:.2f} s, full query {t_query * 1e3:.0f} ms, search {t_search * 1e3:.1f} ms")
    assert len(rows) == 10_000 and len(hits) == 10


def test_review_report_and_deid_are_qt_free():
    """House rule: only widget.py imports Qt. Import the three modules with PySide6 and pyqtgraph blocked."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    code = ("import sys; sys.modules['PySide6'] = None; sys.modules['pyqtgraph'] = None; "
            f"sys.path.insert(0, {str(root)!r}); "
            "import plugins.ecg.review, plugins.ecg.report, plugins.ecg.deid; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
