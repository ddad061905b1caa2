"""Waveform gating: implausible sampling rates refused with one line, bad leads and short records named, 1–2-lead
records limited to the rhythm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.ecg.gate import RHYTHM_CLASSES, gate_record
from plugins.ecg.readers import read_wfdb
from plugins.ecg.types import CLASSES, STANDARD_LEADS, EcgRecord
from plugins.ecg.waveform import simulate

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
MITBIH = SHARED / "ecg" / "100.hea"
LUDB = SHARED / "ecg-real" / "ludb"


def _rec(fs: float = 500.0, seconds: float = 10.0, leads: tuple[str, ...] = STANDARD_LEADS) -> EcgRecord:
    r = simulate("normal", 3, fs=500.0, duration_s=seconds)
    keep = [STANDARD_LEADS.index(k) for k in leads]
    return EcgRecord(signals=r.signals[keep].copy(), fs=fs, leads=leads)


@pytest.mark.parametrize("fs", [-500.0, 0.0, float("nan"), 20.0, 50_000.0])
def test_implausible_sampling_rate_is_bad_input_with_one_line(fs: float) -> None:
    with pytest.raises(BadInput) as e:
        gate_record(_rec(fs=fs), "x.hea")
    msg = str(e.value)
    assert "\n" not in msg and "x.hea" in msg and "Hz" in msg


def test_twelve_lead_record_is_fully_assessed() -> None:
    g = gate_record(_rec())
    assert g.scope == "12-lead" and g.assessed == CLASSES and not g.refused
    assert g.usable == STANDARD_LEADS and not g.reasons


def test_nan_and_flat_leads_are_named_and_left_out() -> None:
    r = _rec()
    r.signals[STANDARD_LEADS.index("V2")] = np.nan
    r.signals[STANDARD_LEADS.index("V5")] = 0.0
    g = gate_record(r)
    assert g.bad_leads == {"V2": "invalid", "V5": "flat"}
    assert "V2" not in g.usable and "V5" not in g.usable
    assert g.scope == "12-lead"  # ten usable leads still allow MI to be assessed
    assert any("V2 (invalid)" in s and "V5 (flat)" in s for s in g.reasons)
    assert any("missing" in s and "V2" in s for s in g.reasons)


def test_saturated_lead_is_named() -> None:
    r = _rec()
    k = STANDARD_LEADS.index("I")
    r.signals[k] = np.clip(r.signals[k] * 20, -0.2, 0.2)
    assert gate_record(r).bad_leads.get("I") == "saturated"


def test_all_leads_unusable_is_refused() -> None:
    r = _rec()
    r.signals[:] = np.nan
    g = gate_record(r, "blank.hea")
    assert g.refused and g.assessed == () and "no usable lead" in g.refuse and "blank.hea" in g.refuse


def test_too_short_is_refused_and_short_is_said() -> None:
    g = gate_record(_rec(seconds=1.5))
    assert g.refused and "1.5 s" in g.refuse
    g = gate_record(_rec(seconds=5.0))
    assert g.scope == "12-lead" and any("only 5.0 s" in s for s in g.reasons)


def test_limb_leads_derived_from_two() -> None:
    g = gate_record(_rec(leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")))
    assert g.scope == "12-lead" and set(g.derived) == {"III", "aVR", "aVL", "aVF"}
    assert any("derived" in s for s in g.reasons)


def test_two_leads_are_rhythm_only() -> None:
    g = gate_record(_rec(leads=("II", "V1")))
    assert g.scope == "rhythm-only" and g.assessed == RHYTHM_CLASSES
    assert any("MI cannot be assessed from 2 leads" in s for s in g.reasons)


@pytest.mark.skipif(not MITBIH.is_file(), reason="MIT-BIH record 100 not available")
def test_mitbih_two_lead_holter_is_rhythm_only() -> None:
    rec = read_wfdb(MITBIH).record
    g = gate_record(rec, "100.hea")
    assert g.scope == "rhythm-only" and "myocardial_infarction" not in g.assessed
    assert any("MI cannot be assessed from 2 leads" in s for s in g.reasons)


@pytest.mark.skipif(not (LUDB / "1.hea").is_file(), reason="LUDB records not available")
def test_ludb_record_is_twelve_lead() -> None:
    g = gate_record(read_wfdb(LUDB / "1.hea").record)
    assert g.scope == "12-lead" and g.usable == STANDARD_LEADS


def test_dicom_waveform_is_gated() -> None:
    pydicom_data = pytest.importorskip("pydicom.data")
    from plugins.ecg.readers import read_dicom

    rec = read_dicom(pydicom_data.get_testdata_file("waveform_ecg.dcm"))[0].record
    g = gate_record(rec)
    assert g.scope == "12-lead" and not g.refused
