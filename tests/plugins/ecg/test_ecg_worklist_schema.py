"""The worklist keeps the model's uncertain flag, reasons, OOD score, scope, second opinion and disagreement, and a
worklist written by the previous schema (a database committed as made by that code) opens, migrates in place and
keeps its items, decisions and an intact, still append-only audit chain. The PDF report prints the new fields."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from plugins.ecg.review import SCHEMA_VERSION, Worklist
from plugins.ecg.types import CLASSES, ScreenResult, SecondOpinion
from tests.helpers import run_sql

V1_DB = Path(__file__).parent / "data" / "worklist-v1.sqlite"
PROBS = {"normal": 0.05, "abnormal_heartbeat": 0.15, "myocardial_infarction": 0.5, "history_of_mi": 0.3}


def _files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"e{i}.png"
        p.write_bytes(b"img %d" % i)
        out.append(p)
    return out


def _uncertain_result() -> ScreenResult:
    opinion = SecondOpinion("history_of_mi", ["Q waves ≥ 40 ms in II, III, aVF", "no ST elevation"],
                            ["II", "III", "aVF"], "sinus rhythm 64 bpm", {"HR": 64.0, "QRS": 96.0},
                            ("normal", "abnormal_heartbeat", "myocardial_infarction", "history_of_mi"))
    return ScreenResult("x", "myocardial_infarction", dict(PROBS), "ecg-screen-vit", "cd" * 32,
                        np.ones((4, 4), np.float32), {"HR": 64.0}, uncertain=True,
                        reasons=["top class below 0.6", "unlike the training data (OOD 7.2)"], ood_score=7.25,
                        scope="12-lead", second_opinion=opinion,
                        disagreement="model: acute MI; criteria: old inferior MI (Q waves, no ST elevation)")


def test_new_fields_round_trip_and_are_logged(tmp_path):
    db = tmp_path / "w.sqlite"
    wl = Worklist(db)
    wl.add_files(_files(tmp_path / "in", 3))
    a, b, c = (it.id for it in wl.items())
    wl.set_result(a, _uncertain_result())
    plain = ScreenResult("x", "abnormal_heartbeat", dict(PROBS), "m", "ef" * 32, None, {}, scope="rhythm-only",
                         reasons=["2 leads: MI not assessed"])
    wl.set_result(b, plain)
    wl.close()

    wl = Worklist(db)  # from disk, not from memory
    it = wl.get(a)
    assert it.uncertain is True and it.reasons == ["top class below 0.6", "unlike the training data (OOD 7.2)"]
    assert it.ood_score == pytest.approx(7.25) and it.scope == "12-lead"
    assert it.disagreement.startswith("model: acute MI")
    op = it.opinion
    assert op is not None and op.label == "history_of_mi" and op.leads == ["II", "III", "aVF"]
    assert op.findings[0] == "Q waves ≥ 40 ms in II, III, aVF" and op.rhythm == "sinus rhythm 64 bpm"
    assert op.measurements == {"HR": 64.0, "QRS": 96.0} and op.assessed == CLASSES
    res = it.result()
    assert res.uncertain and res.second_opinion == op and res.disagreement == it.disagreement
    it_b = wl.get(b)
    assert it_b.uncertain is False and it_b.scope == "rhythm-only" and it_b.opinion is None
    assert it_b.disagreement is None and it_b.ood_score is None and it_b.result().scope == "rhythm-only"
    assert wl.get(c).uncertain is None and wl.get(c).result() is None
    assert [x.id for x in wl.items(flagged=True)] == [a]
    assert [x.id for x in wl.items(flagged=False)] == [b, c]
    assert [x.id for x in wl.items(order_by="uncertain", descending=True)][0] == a
    assert wl.flagged() == 1
    screen = wl.audit(item_id=a)[0]
    assert screen.action == "screen" and screen.shown["uncertain"] is True
    assert screen.shown["second_opinion"]["label"] == "history_of_mi" and screen.shown["ood_score"] == 7.25
    d = wl.decide(a, "Dr. Rossi", "uncertain", comment="second reader")
    assert d.shown["uncertain"] is True and d.shown["second_opinion"] == "history_of_mi"
    # a re-screen by a model without a second opinion clears the old one
    wl.set_result(a, plain)
    assert wl.get(a).opinion is None and wl.get(a).uncertain is False
    assert wl.verify_audit()


def test_an_old_schema_worklist_is_migrated_in_place(tmp_path):
    db = tmp_path / "worklist.sqlite"
    shutil.copy(V1_DB, db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    old_cols = {r[1] for r in con.execute("PRAGMA table_info(items)")}
    old_audit = con.execute("SELECT * FROM audit ORDER BY id").fetchall()
    old_items = con.execute("SELECT id, label, probabilities, decision_action, reviewer FROM items").fetchall()
    con.close()
    assert "uncertain" not in old_cols and len(old_audit) == 4 and len(old_items) == 3

    wl = Worklist(db)
    assert wl._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    new_cols = {r[1] for r in wl._conn.execute("PRAGMA table_info(items)")}
    assert {"uncertain", "reasons", "ood_score", "scope", "second_opinion", "disagreement"} <= new_cols - old_cols
    assert [tuple(r) for r in wl._conn.execute("SELECT * FROM audit ORDER BY id")] == old_audit  # untouched
    assert [tuple(r) for r in wl._conn.execute("SELECT id, label, probabilities, decision_action, reviewer "
                                               "FROM items")] == old_items
    assert wl.verify_audit()
    old = wl.get(1)
    assert old.label == "myocardial_infarction" and old.reviewer == "Dr. Rossi" and old.decision_action == "confirm"
    assert old.uncertain is None and old.reasons == [] and old.opinion is None and old.scope is None
    assert old.result().scope == "12-lead" and not old.result().uncertain
    assert wl.heatmap(1) is not None and wl.heatmap(1)[0].shape == (14, 14)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        wl._conn.execute("DELETE FROM audit WHERE id = 1")
    # the migrated worklist takes new results and decisions, and the chain continues
    wl.set_result(3, _uncertain_result())
    wl.decide(3, "Dr. Bianchi", "override", "history_of_mi")
    assert wl.get(3).uncertain is True and wl.get(3).opinion.label == "history_of_mi"
    assert wl.verify_audit() and len(wl.audit()) == 6
    wl.close()
    again = Worklist(db)  # a second open does not migrate twice
    assert len(again) == 3 and again.verify_audit()
    again.close()


def test_a_failed_migration_leaves_the_old_database_as_it_was(tmp_path):
    db = tmp_path / "worklist.sqlite"
    shutil.copy(V1_DB, db)
    run_sql(db, "ALTER TABLE items ADD COLUMN disagreement TEXT")  # a clash half-way through the migration
    before = sqlite3.connect(db).execute("PRAGMA table_info(items)").fetchall()
    with pytest.raises(Exception, match="duplicate column"):
        Worklist(db)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA table_info(items)").fetchall() == before
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    con.close()


def test_the_pdf_report_prints_the_flag_and_the_second_opinion(tmp_path):
    from plugins.ecg.report import write_pdf_report

    wl = Worklist(tmp_path / "w.sqlite")
    wl.add_files(_files(tmp_path / "in", 1))
    item = wl.items()[0]
    wl.set_result(item.id, _uncertain_result())
    image = np.full((300, 500, 3), 255, np.uint8)
    data = write_pdf_report(tmp_path / "r.pdf", image, wl.get(item.id).result()).read_bytes()
    text = data.decode("latin-1").replace("\\(", "(").replace("\\)", ")")
    for s in ("UNCERTAIN - review: top class below 0.6", "Second opinion disagrees: model: acute MI",
              "Second opinion (measurements): History of MI", "Rhythm: sinus rhythm 64 bpm",
              "Driving leads: II, III, aVF", "no ST elevation"):
        assert s in text, s
    plain = ScreenResult("x", "normal", dict(PROBS), "m", "0" * 64, scope="rhythm-only")
    text = write_pdf_report(tmp_path / "p.pdf", image, plain).read_bytes().decode("latin-1")
    assert "Rhythm only: MI not assessed" in text and "UNCERTAIN" not in text and "Second opinion" not in text
