"""Fusing the model's probabilities with the measurement-based second opinion."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.ecg.fusion import fuse
from plugins.ecg.gate import RHYTHM_CLASSES, RecordGate, gate_record
from plugins.ecg.opinion import second_opinion
from plugins.ecg.readers import read_wfdb
from plugins.ecg.types import CLASSES, SecondOpinion

MITBIH = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ecg" / "100.hea"
FULL = RecordGate("12-lead", CLASSES)


def _p(label: str, p: float = 0.9) -> dict[str, float]:
    rest = (1 - p) / (len(CLASSES) - 1)
    return {c: p if c == label else rest for c in CLASSES}


def test_agreement_is_certain() -> None:
    op = SecondOpinion("normal", ["no finding"])
    assert fuse(_p("normal"), op, FULL) == ("normal", False, [], "")


def test_disagreement_is_uncertain_and_said_in_one_line() -> None:
    op = SecondOpinion("normal", ["no ST elevation, pathological Q wave, wide QRS or rhythm abnormality found"])
    label, unc, reasons, dis = fuse(_p("history_of_mi", 0.95), op, FULL)
    assert label == "normal" and unc and reasons
    assert "History of MI 0.95" in dis and "Normal" in dis and "\n" not in dis


def test_stemi_criteria_decide_the_age_of_an_infarction() -> None:
    op = SecondOpinion("myocardial_infarction", ["ST elevation at J in contiguous leads II +2.0, III +2.5 mm"],
                       leads=["II", "III"])
    label, unc, reasons, dis = fuse(_p("history_of_mi"), op, FULL)
    assert label == "myocardial_infarction" and not unc and "ST segment" in reasons[0] and dis


def test_other_is_not_forced_into_the_four_classes() -> None:
    op = SecondOpinion("other", ["pacemaker spikes before the beats: paced rhythm"])
    label, unc, reasons, dis = fuse(_p("abnormal_heartbeat", 0.99), op, FULL)
    assert label == "other" and unc and "not one of the four classes" in reasons[0] and "paced" in dis


def test_refused_and_unread_records() -> None:
    refused = RecordGate("refused", (), ["x"], "x.hea: no usable lead")
    assert fuse(_p("normal"), None, refused) == (None, True, ["x.hea: no usable lead"], "")
    label, unc, reasons, _ = fuse(_p("normal"), SecondOpinion(None), FULL)
    assert label == "normal" and unc and "model alone" in reasons[0]


@pytest.mark.skipif(not MITBIH.is_file(), reason="MIT-BIH record 100 not available")
def test_two_lead_record_never_gets_mi_even_from_a_confident_model() -> None:
    rec = read_wfdb(MITBIH).record
    gate = gate_record(rec)
    op = second_opinion(rec, gate)
    for cls in ("myocardial_infarction", "history_of_mi"):
        label, unc, reasons, _ = fuse(_p(cls, 0.99), op, gate)
        assert label in RHYTHM_CLASSES
        assert any("MI cannot be assessed from 2 leads" in r for r in reasons)
