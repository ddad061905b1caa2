"""The measurement-based second opinion on real (LUDB, MIT-BIH) and simulated waveforms, and the mapping of
free-text diagnoses to the four classes or "other"."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.ecg import criteria as C
from plugins.ecg.diagnoses import classify_header, classify_statements, header_statements
from plugins.ecg.gate import RHYTHM_CLASSES, gate_record
from plugins.ecg.opinion import second_opinion
from plugins.ecg.readers import read_wfdb
from plugins.ecg.types import CLASSES, EcgRecord
from plugins.ecg.waveform import TERRITORIES, simulate

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
LUDB = SHARED / "ecg-real" / "ludb"
MITBIH = SHARED / "ecg" / "100.hea"
needs_ludb = pytest.mark.skipif(not (LUDB / "1.hea").is_file(), reason="LUDB records not available")
PRECORDIAL_LATERAL = {"I", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"}


# --- diagnosis statements --------------------------------------------------------------------------------------

@pytest.mark.parametrize("statements, label", [
    (["Rhythm: Sinus rhythm.", "Electric axis of the heart: normal."], "normal"),
    (["Rhythm: Sinus bradycardia.", "Incomplete right bundle branch block.", "Left atrial overload."], "normal"),
    (["Rhythm: Atrial fibrillation."], "abnormal_heartbeat"),
    (["Rhythm: Atrial flutter, typical."], "abnormal_heartbeat"),
    (["Rhythm: Sinus rhythm.", "Ventricular extrasystole, type: single PVC."], "abnormal_heartbeat"),
    (["Rhythm: Sinus rhythm.", "STEMI: anterior wall.", "Scar formation: septal."], "myocardial_infarction"),
    (["Rhythm: Atrial fibrillation.", "Scar formation: anterior wall."], "history_of_mi"),
    (["Rhythm: Sinus rhythm.", "Complete left bundle branch block."], "other"),
    (["Rhythm: Sinus rhythm.", "Left ventricular hypertrophy."], "other"),
    (["Rhythm: Sinus rhythm.", "I degree AV block."], "other"),
    (["Rhythm: Sinus rhythm.", "Undefined ischemia/scar/supp.NSTEMI: lateral wall."], "other"),
    (["Rhythm: Atrial fibrillation.", "Biventricular pacing."], "other"),
    (["NSTEMI"], "other"),
    (["Rhythm: Sinus rhythm.", "Something nobody wrote a rule for."], "other"),
    ([], "other"),
])
def test_statements_map_to_a_class_or_other(statements: list[str], label: str) -> None:
    got, why = classify_statements(statements)
    assert got == label
    if statements:
        assert why and all(w in [" ".join(s.split()).strip(" .") for s in statements] for w in why)


@needs_ludb
def test_ludb_headers_map_by_their_statements() -> None:
    counts: dict[str, int] = {}
    for h in LUDB.glob("*.hea"):
        st = header_statements(h)
        assert st and not any(s.startswith("<") for s in st)
        lab = classify_header(h)
        counts[lab] = counts.get(lab, 0) + 1
        text = " ".join(st).lower()
        if "pacing" in text:
            assert lab == "other"
        elif "stemi:" in text and "undefined" not in text.split("stemi:")[0][-30:]:
            assert lab == "myocardial_infarction"
        elif "scar formation" in text:
            assert lab == "history_of_mi"
        elif "fibrillation" in text or "flutter" in text or "extrasystole" in text:
            assert lab == "abnormal_heartbeat"
        if "ventricular hypertrophy" in text and lab == "normal":
            pytest.fail(f"{h.name}: ventricular hypertrophy mapped to normal")
    assert sum(counts.values()) == 100
    assert counts == {"normal": 31, "abnormal_heartbeat": 8, "myocardial_infarction": 5, "history_of_mi": 5,
                      "other": 51}


# --- criteria helpers ------------------------------------------------------------------------------------------

def test_st_thresholds_follow_sex_and_age_in_v2_v3() -> None:
    assert C.st_threshold_mv("II") == 0.1
    assert C.st_threshold_mv("V2") == 0.2 and C.st_threshold_mv("V3", "F") == 0.15
    assert C.st_threshold_mv("V2", "M", 30) == 0.25 and C.st_threshold_mv("V2", "M", 60) == 0.2


def test_stemi_needs_two_contiguous_leads() -> None:
    assert C.stemi_met({"II": 0.15, "V4": 0.15})[0] == []              # not contiguous
    leads, recip = C.stemi_met({"II": 0.15, "III": 0.2, "aVF": 0.12, "aVL": -0.1, "I": -0.02})
    assert leads == ["II", "III", "aVF"] and recip == ["aVL"]
    assert C.stemi_met({"V2": 0.15, "V3": 0.15})[0] == []              # below 0.2 mV in V2–V3 (sex unknown)
    assert C.stemi_met({"V2": 0.15, "V3": 0.15}, "F")[0] == ["V2", "V3"]
    assert C.stemi_met({"aVR": 0.3, "aVL": 0.05})[0] == []


def test_q_criteria_pairs_and_thresholds() -> None:
    ms = {"II": 40.0, "III": 40.0, "aVF": 10.0, "V2": 25.0, "V3": 25.0}
    mv = {"II": 0.2, "III": 0.3, "aVF": 0.05, "V2": 0.1, "V3": 0.1}
    assert C.q_met(ms, mv, {}) == ["V2", "V3"]       # II + III alone is not enough; V2–V3 at ≥ 20 ms
    ms["aVF"], mv["aVF"] = 35.0, 0.15
    assert C.q_met(ms, mv, {}) == ["II", "III", "aVF", "V2", "V3"]


# --- real records ----------------------------------------------------------------------------------------------

def _opinion(rid: int):
    rec = read_wfdb(LUDB / f"{rid}.hea").record
    return second_opinion(rec, gate_record(rec))


@needs_ludb
@pytest.mark.parametrize("rid", [7, 21, 55, 69])
def test_ludb_stemi_records_read_as_acute_mi_in_their_territory(rid: int) -> None:
    op = _opinion(rid)
    assert op.label == "myocardial_infarction"
    assert op.leads and set(op.leads) <= PRECORDIAL_LATERAL      # LUDB: anterior / septal / lateral walls
    assert any(w in op.findings[0] for w in ("septal", "anterior", "lateral"))
    assert op.assessed == CLASSES


@needs_ludb
def test_ludb_sinus_normals_mostly_normal() -> None:
    ids = sorted(int(h.stem) for h in LUDB.glob("*.hea") if classify_header(h) == "normal")[::3]
    labels = [_opinion(i).label for i in ids]
    assert len(ids) >= 10 and labels.count("normal") >= 0.9 * len(ids)


@needs_ludb
@pytest.mark.parametrize("rid", [101, 173])
def test_ludb_atrial_fibrillation_is_an_abnormal_rhythm(rid: int) -> None:
    op = _opinion(rid)
    assert op.label == "abnormal_heartbeat" and "AF?" in op.rhythm and op.measurements["af_suspected"] == 1.0


@needs_ludb
def test_ludb_pvcs_are_counted() -> None:
    op = _opinion(105)
    assert op.label == "abnormal_heartbeat" and op.measurements["ventricular_ectopic"] >= 1


@needs_ludb
@pytest.mark.parametrize("rid", [93, 111])
def test_ludb_paced_records_are_other(rid: int) -> None:
    op = _opinion(rid)
    assert op.label == "other" and "pacemaker" in op.findings[0] and op.rhythm.startswith("paced")


@pytest.mark.skipif(not MITBIH.is_file(), reason="MIT-BIH record 100 not available")
def test_mitbih_holter_gets_a_rhythm_only_read() -> None:
    rec = read_wfdb(MITBIH).record
    op = second_opinion(rec, gate_record(rec))
    assert op.assessed == RHYTHM_CLASSES and op.label in RHYTHM_CLASSES
    assert op.rhythm and 50 <= op.measurements["HR"] <= 100
    assert not any(k.startswith("ST_") or k == "q_leads" for k in op.measurements)


# --- simulated records -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_normal(seed: int) -> None:
    op = second_opinion(simulate("normal", seed))
    assert op.label == "normal" and op.leads == [] and "sinus" in op.rhythm


@pytest.mark.parametrize("subtype, word", [("atrial_fibrillation", "AF?"), ("pvc", "ventricular ectopic"),
                                           ("pac", "supraventricular ectopic")])
def test_simulated_arrhythmias(subtype: str, word: str) -> None:
    op = second_opinion(simulate("abnormal_heartbeat", 4, subtype=subtype))
    assert op.label == "abnormal_heartbeat" and word in op.rhythm


@pytest.mark.parametrize("territory", ["inferior", "anterior", "lateral"])
def test_simulated_stemi_in_its_territory(territory: str) -> None:
    rec = simulate("myocardial_infarction", 5, territory=territory)
    op = second_opinion(rec)
    assert op.label == "myocardial_infarction"
    st = [k for k in op.leads if k in rec.meta["st_leads"]]
    assert len(st) >= 2 and set(st) <= set(TERRITORIES[territory][0])


@pytest.mark.parametrize("territory", ["inferior", "anteroseptal"])
def test_simulated_prior_mi_by_q_waves(territory: str) -> None:
    rec = simulate("history_of_mi", 6, territory=territory)
    op = second_opinion(rec)
    assert op.label == "history_of_mi" and "Q waves" in op.findings[0]
    assert len(set(op.leads) & set(TERRITORIES[territory][0])) >= 2


def test_simulated_strip_is_rhythm_only() -> None:
    r = simulate("myocardial_infarction", 5, territory="inferior")
    strip = EcgRecord(signals=r.signals[[1]], fs=r.fs, leads=("II",))
    op = second_opinion(strip)
    assert op.assessed == RHYTHM_CLASSES and op.label in RHYTHM_CLASSES


def test_refused_record_has_no_label() -> None:
    r = simulate("normal", 1, duration_s=1.5)
    op = second_opinion(r)
    assert op.label is None and op.assessed == () and "1.5 s" in op.findings[0]
