"""measure(): intervals against the simulator's ground truth and the pydicom ECG's machine values; NaN-free.
Tolerances: HR ±3 bpm (±6 in AF, whose edge beats move the mean RR); QRS ±15 ms; PR ±20 ms (tangent onset, ~8 ms
early on the simulator's raised-cosine P); QT ±30 ms (tangent T end, ~16 ms early on the simulator's T)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from plugins.ecg.measure import detect_r_peaks, measure
from plugins.ecg.readers import read_inputs
from plugins.ecg.types import EcgRecord
from plugins.ecg.waveform import simulate

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # wfdb's pandas usage at import
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ecg"


@pytest.mark.parametrize("label", ["normal", "myocardial_infarction", "history_of_mi"])
def test_intervals_match_simulator_ground_truth(label):
    for seed in range(100, 108):
        rec = simulate(label, seed)
        m = measure(rec)
        gt = rec.meta
        assert all(math.isfinite(v) for v in m.values())
        assert m["HR"] == pytest.approx(gt["hr"], abs=3.0)
        assert m["QRS"] == pytest.approx(gt["qrs_ms"], abs=15.0), seed
        assert m["PR"] == pytest.approx(gt["pr_ms"], abs=20.0), seed
        assert m["QT"] == pytest.approx(gt["qt_ms"], abs=30.0), seed
        assert m["QTc"] == pytest.approx(m["QT"] / math.sqrt(60.0 / m["HR"]))
        assert m["QTcF"] == pytest.approx(m["QT"] / (60.0 / m["HR"]) ** (1 / 3))


def test_rhythm_disorders():
    for seed in range(6):
        af = simulate("abnormal_heartbeat", seed, subtype="atrial_fibrillation")
        m = measure(af)
        assert m["HR"] == pytest.approx(af.meta["hr"], abs=6.0)
        assert "PR" not in m  # no P waves to measure
        pvc = simulate("abnormal_heartbeat", seed, subtype="pvc")
        assert measure(pvc)["HR"] == pytest.approx(pvc.meta["hr"], abs=3.0)  # ectopic beats counted
        assert measure(pvc)["QRS"] < 120  # of the dominant (sinus) beat


def test_pydicom_ecg_against_machine_values():
    rec = read_inputs(get_testdata_file("waveform_ecg.dcm"))[0].record
    m = measure(rec)
    mach = rec.meta["machine"]  # RR 982, PR 161, QRS 75, QT 368, QTc 370
    assert m["RR"] == pytest.approx(mach["RR Interval"], abs=10)
    assert m["HR"] == pytest.approx(60000 / mach["RR Interval"], abs=1.5)
    assert m["QRS"] == pytest.approx(mach["QRS Duration"], abs=15)
    assert m["PR"] == pytest.approx(mach["PR Interval"], abs=25)
    assert m["QT"] == pytest.approx(mach["QT Interval"], abs=25)
    assert m["QTc"] == pytest.approx(mach["QTc Interval"], abs=30)


@pytest.mark.skipif(not (SHARED / "100.hea").is_file(), reason="shared ECG data not present")
def test_mitbih_100_beats_match_annotations():
    import wfdb

    rec = read_inputs(SHARED / "100.hea")[0].record
    r = detect_r_peaks(rec)
    ann = wfdb.rdann(str(SHARED / "100"), "atr", sampto=rec.signals.shape[1])
    beats = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in "NAVLR"])
    beats = beats[(beats > 50) & (beats < rec.signals.shape[1] - 50)]
    matched = sum(np.abs(r - b).min() <= int(0.075 * rec.fs) for b in beats)
    assert matched >= len(beats) - 1 and abs(len(r) - len(beats)) <= 2
    m = measure(rec)
    assert m["HR"] == pytest.approx(60 * rec.fs / np.diff(beats).mean(), abs=2.0)


def test_nothing_measurable_gives_nothing():
    flat = EcgRecord(np.zeros((12, 5000), np.float32), 500.0, tuple(f"L{i}" for i in range(12)))
    assert measure(flat) == {}
    short = simulate("normal", 0, duration_s=1.0)
    assert measure(short) == {}
    noise = EcgRecord(np.random.default_rng(0).normal(0, 0.05, (3, 5000)).astype(np.float32), 500.0, ("a", "b", "c"))
    assert all(math.isfinite(v) for v in measure(noise).values())
