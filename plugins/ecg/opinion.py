"""The measurement-based second opinion on a gated waveform: rhythm, then (12 leads only) STEMI criteria,
pathological Q waves and QRS width, turned into one label with one-line findings and the leads that drive it."""

from __future__ import annotations

import re

import numpy as np

from .criteria import Q_ST_MV, WIDE_QRS_MS, q_met, q_wave, st_deviation, stemi_met, territory_of
from .gate import RecordGate, gate_record, gated_signals
from .measure import _bandpass, delineate, measure
from .rhythm import PACE_RATIO, pacing_index, read_rhythm
from .types import EcgRecord, SecondOpinion

OTHER = "other"


def patient_sex_age(record: EcgRecord) -> tuple[str | None, float | None]:
    """Sex ("M"/"F") and age (years) from the record's metadata or header comments, when stated."""
    meta = record.meta or {}
    text = " ".join(str(c) for c in meta.get("comments", []) or [])
    sex = str(meta.get("PatientSex", "") or "").strip().upper()[:1] or None
    m = re.search(r"<?sex>?\s*:\s*([MF])", text, re.I)
    if m:
        sex = m.group(1).upper()
    age: float | None = None
    raw = str(meta.get("PatientAge", "") or "")
    m2 = re.match(r"(\d+)\s*Y?", raw)
    if m2:
        age = float(m2.group(1))
    m3 = re.search(r"<?age>?\s*:\s*(\d+)", text, re.I)
    if m3:
        age = float(m3.group(1))
    return (sex if sex in ("M", "F") else None), age


def _fmt(leads: list[str], vals: dict[str, float], unit_scale: float = 10.0) -> str:
    return ", ".join(f"{k} {unit_scale * vals[k]:+.1f}" for k in leads)


def second_opinion(record: EcgRecord, gate: RecordGate | None = None) -> SecondOpinion:
    """Read `record` within what `gate` allows (gated here when None; BadInput for an implausible sampling rate).

    Label, first rule that holds: no beats → None; pacemaker spikes → "other"; (12 leads, QRS < 120 ms) STEMI
    criteria → acute MI; pathological Q waves with ST elevation ≥ 0.5 mm persisting 60 ms after J in ≥ 2 of
    their leads → acute MI (recent, evolving infarction); pathological Q waves → history of MI (with a wide QRS
    only Q waves outside V1–V3 count); an abnormal rhythm → abnormal heartbeat; QRS ≥ 120 ms → "other"; else
    normal. A rhythm-only scope stops after the rhythm."""
    gate = gate or gate_record(record)
    if gate.refused:
        return SecondOpinion(label=None, findings=[gate.refuse], assessed=())
    x, names = gated_signals(record, gate)
    fs = float(record.fs)
    sub = EcgRecord(signals=x, fs=fs, leads=names, meta=record.meta)
    d = delineate(sub)
    meas = measure(sub, d)
    r = np.asarray(d["r_peaks"], int)
    xf = _bandpass(np.asarray(x, np.float64), fs, 0.5, 45.0) if x.shape[1] > 3 * 9 else np.asarray(x, np.float64)
    p_cons = d.get("p_consistency")
    p_waves = None if d["median"] is None else bool(d.get("p_on") is not None and p_cons is not None
                                                     and float(p_cons) >= 0.5)
    rh = read_rhythm(xf, r, fs, p_waves)
    findings: list[str] = list(rh.findings)
    m: dict[str, float] = dict(meas)
    m["beats"] = float(rh.n_beats)
    m["rr_cv"] = rh.rr_cv
    m["ectopic_beats"] = float(sum(k in ("S", "V") for k in rh.kinds))
    m["ventricular_ectopic"] = float(rh.kinds.count("V"))
    m["af_suspected"] = float(rh.af)
    if rh.n_beats < 3:
        return SecondOpinion(label=None, findings=findings, rhythm=rh.text, measurements=m, assessed=gate.assessed)
    pace = pacing_index(np.asarray(x, np.float64), r, fs)
    m["pacing_index"] = pace
    if pace >= PACE_RATIO:
        findings.insert(0, f"pacemaker spikes before the beats (spike {pace:.1f}× sharper than the QRS): paced "
                           "rhythm; ST/Q criteria and the four classes do not apply")
        return SecondOpinion(label=OTHER, findings=findings, rhythm=f"paced rhythm, {rh.hr:.0f} bpm", measurements=m,
                             assessed=gate.assessed)
    label = "abnormal_heartbeat" if rh.abnormal else "normal"
    if gate.scope != "12-lead":
        return SecondOpinion(label=label, findings=findings, rhythm=rh.text, measurements=m, assessed=gate.assessed)

    pre, on, off = d["r"], d["qrs_on"], d["qrs_off"]
    if on is None or off is None or d["median"] is None:
        findings.append("QRS boundaries not found: ST and Q criteria not assessed")
        return SecondOpinion(label=label, findings=findings, rhythm=rh.text, measurements=m, assessed=gate.assessed)
    dominant = r[[k == "N" for k in rh.kinds]] if len(rh.kinds) == len(r) else r
    st_j, st_60 = st_deviation(x, fs, names, dominant, on - pre, off - pre)
    med = np.asarray(d["median"])
    q = {k: q_wave(med[i], fs, on, off) for i, k in enumerate(names)}
    q_ms = {k: v[0] for k, v in q.items()}
    q_mv = {k: v[1] for k, v in q.items()}
    qs = {k: v[3] for k, v in q.items()}
    qrs_ms = meas.get("QRS")
    wide = qrs_ms is not None and qrs_ms >= WIDE_QRS_MS
    sex, age = patient_sex_age(record)
    scale = 2.0 if rh.af else 1.0  # f/F waves in the PR segment move the baseline
    stemi, recip = stemi_met({k: v / scale for k, v in st_j.items()}, sex, age)
    if wide:
        q_ms = {k: v for k, v in q_ms.items() if k not in ("V1", "V2", "V3")}
    q_leads = q_met(q_ms, q_mv, qs)
    q_st = [k for k in q_leads if st_60.get(k, 0.0) >= Q_ST_MV]
    for k in names:
        m[f"ST_{k}"] = st_j.get(k, 0.0)
    m["ST_max"] = max(st_j.values()) if st_j else 0.0
    m["stemi_leads"] = float(len(stemi) if not wide else 0)
    m["q_leads"] = float(len(q_leads))
    m["q_st_leads"] = float(len(q_st))
    if stemi and not wide:
        terr = territory_of(stemi)
        s = f"ST elevation at J in contiguous leads {_fmt(stemi, st_j)} mm ({terr})"
        if recip:
            s += f"; reciprocal depression {_fmt(recip, st_j)} mm"
        findings.insert(0, s + (" (PR baseline uncertain in an irregular rhythm: thresholds doubled)" if rh.af
                                else ""))
    elif stemi:
        findings.append(f"ST elevation {_fmt(stemi, st_j)} mm with a wide QRS: STEMI criteria do not apply")
    if q_leads:
        terr = territory_of(q_leads)
        qtxt = ", ".join(f"{k} {'QS' if qs[k] else f'{q_ms[k]:.0f} ms/{q_mv[k]:.2f} mV'}" for k in q_leads)
        s = f"pathological Q waves in {qtxt} ({terr})"
        if len(q_st) >= 2:
            s += f", ST still elevated 60 ms after J in {_fmt(q_st, st_60)} mm: recent (evolving) infarction"
        findings.insert(1 if stemi and not wide else 0, s)
    if wide:
        findings.append(f"QRS {qrs_ms:.0f} ms ≥ {WIDE_QRS_MS:.0f} ms: conduction defect (bundle branch block or "
                        "ventricular rhythm)")
    drive: list[str] = []
    if stemi and not wide:
        label, drive = "myocardial_infarction", stemi + recip
    elif len(q_st) >= 2 and not wide:
        label, drive = "myocardial_infarction", q_leads
    elif q_leads:
        label, drive = "history_of_mi", q_leads
    elif rh.abnormal:
        label = "abnormal_heartbeat"
    elif wide:
        label = OTHER
    if not findings:
        findings.append("no ST elevation, pathological Q wave, wide QRS or rhythm abnormality found")
    return SecondOpinion(label=label, findings=findings, leads=drive, rhythm=rh.text, measurements=m,
                         assessed=gate.assessed)
