"""The ECG simulator: Einthoven/Goldberger identities, determinism, and each class's physiology measured on the
signal at the simulator's own fiducials (ST at J+60 ms vs the PR level, Q waves, RR irregularity, PVC pauses)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.ecg.types import CLASSES, STANDARD_LEADS
from plugins.ecg.waveform import TERRITORIES, simulate

IDX = {name: i for i, name in enumerate(STANDARD_LEADS)}
CONTIGUOUS = [("I", "aVL"), ("II", "aVF"), ("III", "aVF"), ("V1", "V2"), ("V2", "V3"), ("V3", "V4"), ("V4", "V5"),
              ("V5", "V6")]


def st_and_q(rec):
    """Median over dominant beats of ST(J+60 ms) − PR level per lead, and (Q duration ms, Q depth mV) per lead."""
    fs, f, n = rec.fs, rec.meta["fiducials"], rec.signals.shape[1]
    sts, qs = [], []
    for on, off, kind in zip(f["qrs_on"], f["qrs_off"], f["kind"], strict=True):
        if kind not in ("sinus", "af") or on - 5 < 0 or off + int(0.08 * fs) >= n:
            continue
        base = rec.signals[:, on - 3:on].mean(axis=1)
        sts.append(rec.signals[:, off + int(0.06 * fs)] - base)
        q = []
        for lead in range(12):
            x = rec.signals[lead, on:off + 1] - base[lead]
            nz = np.flatnonzero(np.abs(x) > 0.02)
            if nz.size == 0 or x[nz[0]] > 0:
                q.append((0.0, 0.0))
                continue
            pos = np.flatnonzero(x[nz[0]:] >= 0)
            end = nz[0] + (pos[0] if pos.size else x.size - nz[0])
            q.append((1e3 * end / fs, float(-x[:end].min())))
        qs.append(q)
    return np.median(sts, axis=0), np.median(np.array(qs), axis=0)


def pathological_q(q: np.ndarray) -> set[str]:
    return {name for name, i in IDX.items() if q[i, 0] >= 30.0 and q[i, 1] >= 0.1}


def st_threshold(name: str) -> float:
    return 0.2 if name in ("V2", "V3") else 0.1


def test_limb_leads_satisfy_einthoven_and_goldberger_exactly():
    for label in CLASSES:
        s = simulate(label, 3).signals
        i, ii = s[IDX["I"]], s[IDX["II"]]
        np.testing.assert_allclose(s[IDX["III"]], ii - i, atol=1e-6)
        np.testing.assert_allclose(s[IDX["aVR"]], -(i + ii) / 2, atol=1e-6)
        np.testing.assert_allclose(s[IDX["aVL"]], i - ii / 2, atol=1e-6)
        np.testing.assert_allclose(s[IDX["aVF"]], ii - i / 2, atol=1e-6)


def test_shape_units_and_determinism():
    a = simulate("normal", 11)
    assert a.signals.shape == (12, 5000) and a.signals.dtype == np.float32 and a.leads == STANDARD_LEADS
    assert a.fs == 500.0 and a.label == "normal" and np.isfinite(a.signals).all()
    assert 0.3 < np.ptp(a.signals[IDX["II"]]) < 6.0  # mV, not µV
    b = simulate("normal", 11)
    np.testing.assert_array_equal(a.signals, b.signals)
    assert not np.array_equal(a.signals, simulate("normal", 12).signals)
    c = simulate("normal", 11, fs=250.0, duration_s=4.0)
    assert c.signals.shape == (12, 1000)


def test_classes_share_the_patient_and_rate_distribution():
    for seed in range(5):
        hrs = {label: simulate(label, seed).meta["hr_set"] for label in ("normal", "myocardial_infarction",
                                                                          "history_of_mi")}
        assert len(set(hrs.values())) == 1
    hr = [simulate("normal", s).meta["hr"] for s in range(30)]
    assert 55 <= min(hr) and max(hr) <= 101


def test_normal_has_no_st_elevation_and_no_pathological_q():
    for seed in range(12):
        rec = simulate("normal", seed, noise=False)
        st, q = st_and_q(rec)
        assert st.max() < 0.1, (seed, st.round(3))
        bad = pathological_q(q)
        assert not [p for p in CONTIGUOUS if set(p) <= bad], (seed, bad)
        assert rec.meta["rr_cv"] < 0.08 and 100 <= rec.meta["pr_ms"] <= 220 and rec.meta["qrs_ms"] < 120


@pytest.mark.parametrize("territory", sorted(TERRITORIES))
def test_stemi_st_elevation_in_two_territory_leads_with_reciprocal_depression(territory):
    for seed in range(3):
        rec = simulate("myocardial_infarction", seed, noise=False, territory=territory)
        assert rec.meta["territory"] == territory
        st, _ = st_and_q(rec)
        up = [name for name in rec.meta["territory_leads"] if st[IDX[name]] >= st_threshold(name)]
        assert len(up) >= 2, (seed, territory, {n: round(float(st[IDX[n]]), 3) for n in rec.meta["territory_leads"]})
        if territory in ("inferior", "lateral"):  # where reciprocal depression is the rule
            assert st.min() <= -0.05
        # the same patient without the infarct has none of it
        st0, _ = st_and_q(simulate("normal", seed, noise=False))
        assert st0.max() < 0.1


def test_stemi_visible_through_noise():
    hits = 0
    for seed in range(6):
        rec = simulate("myocardial_infarction", seed)
        st, _ = st_and_q(rec)
        hits += sum(st[IDX[n]] >= 0.08 for n in rec.meta["territory_leads"]) >= 2
    assert hits >= 5


def test_prior_mi_has_pathological_q_and_no_acute_st_elevation():
    for seed in range(10):
        rec = simulate("history_of_mi", seed, noise=False)
        st, q = st_and_q(rec)
        qs = pathological_q(q) & set(rec.meta["territory_leads"])
        assert len(qs) >= 2, (seed, rec.meta["territory"], q.round(2))
        assert st.max() < 0.1, (seed, st.round(3))


def test_atrial_fibrillation_is_irregular_without_p_waves():
    cvs = []
    for seed in range(6):
        rec = simulate("abnormal_heartbeat", seed, subtype="atrial_fibrillation")
        assert rec.meta["subtype"] == "atrial_fibrillation" and rec.meta["pr_ms"] is None
        assert all(p is None for p in rec.meta["fiducials"]["p_on"])
        cvs.append(rec.meta["rr_cv"])
    assert min(cvs) > 0.08 and np.median(cvs) > 0.12
    assert max(simulate("normal", s).meta["rr_cv"] for s in range(6)) < 0.06
    # f-waves: 4–9 Hz power in the TQ intervals of V1 exceeds that of the same patient in sinus rhythm
    def fpow(rec):
        x = rec.signals[IDX["V1"]]
        spec = np.abs(np.fft.rfft(x - x.mean())) ** 2
        fr = np.fft.rfftfreq(x.size, 1 / rec.fs)
        return spec[(fr >= 4) & (fr <= 9)].sum() / spec[(fr > 0.5) & (fr < 40)].sum()
    assert fpow(simulate("abnormal_heartbeat", 1, subtype="atrial_fibrillation", noise=False)) > fpow(
        simulate("normal", 1, noise=False))


def test_pvc_is_wide_without_p_and_has_a_compensatory_pause():
    for seed in range(4):
        rec = simulate("abnormal_heartbeat", seed, subtype="pvc", hr=70.0, noise=False)
        f = rec.meta["fiducials"]
        on = np.array(f["qrs_on"]) / rec.fs
        ks = [k for k, kind in enumerate(f["kind"]) if kind == "pvc" and 0 < k < len(on) - 1]
        assert ks and rec.meta["n_ectopic"] >= 1
        rr = 60.0 / 70.0
        for k in ks:
            assert (f["qrs_off"][k] - f["qrs_on"][k]) / rec.fs >= 0.12 and f["p_on"][k] is None
            assert on[k] - on[k - 1] < 0.8 * rr  # premature
            if f["kind"][k - 1] == "sinus" and f["kind"][k + 1] == "sinus":
                assert on[k + 1] - on[k - 1] == pytest.approx(2 * rr, rel=0.1)  # full compensatory pause


def test_pac_is_premature_with_a_p_wave_and_narrow_qrs():
    rec = simulate("abnormal_heartbeat", 2, subtype="pac", hr=70.0, noise=False)
    f = rec.meta["fiducials"]
    ks = [k for k, kind in enumerate(f["kind"]) if kind == "pac" and k > 0]
    assert ks
    for k in ks:
        assert f["p_on"][k] is not None and (f["qrs_off"][k] - f["qrs_on"][k]) / rec.fs < 0.12
        assert (f["qrs_on"][k] - f["qrs_on"][k - 1]) / rec.fs < 0.85 * 60 / 70


def test_subtypes_are_recorded_and_mixed():
    subs = {simulate("abnormal_heartbeat", s).meta["subtype"] for s in range(40)}
    assert {"atrial_fibrillation", "pvc", "pac"} <= subs
    assert simulate("abnormal_heartbeat", 0, subtype="sinus_bradycardia").meta["hr"] < 55
    assert simulate("abnormal_heartbeat", 0, subtype="sinus_tachycardia").meta["hr"] > 100


def test_bad_arguments_raise_badinput():
    with pytest.raises(BadInput, match="unknown ECG class"):
        simulate("sick", 0)
    with pytest.raises(BadInput, match="territory"):
        simulate("myocardial_infarction", 0, territory="nowhere")
    with pytest.raises(BadInput):
        simulate("normal", 0, bogus=1)


