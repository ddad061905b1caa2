"""Rhythm from R peaks: rate, premature beats (RR prematurity) and their QRS morphology against the dominant beat,
RR irregularity of the remaining beats (atrial fibrillation suspicion), brady-/tachycardia."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PREMATURE = 0.82          # RR shorter than this fraction of the preceding and of the median RR: premature beat
PAUSE = 1.1               # ... and followed by an RR this much longer than its own (confirms it)
SHAPE_CC = 0.85           # QRS correlation with the dominant beat below this: different morphology (ventricular)
BRADY_BPM, TACHY_BPM = 45.0, 120.0   # marked brady-/tachycardia is a rhythm finding (milder rates are named only)
IRREGULAR_CV = 0.12       # RR coefficient of variation above this, not explained by isolated ectopic beats...
CLEAN_CV = 0.08           # ... (the RRs away from them still vary this much): irregularly irregular (AF?)
@dataclass
class RhythmRead:
    """Beat-level rhythm findings; `abnormal` says whether the rhythm alone is outside a normal (sinus) rhythm."""

    hr: float | None = None
    n_beats: int = 0
    kinds: list[str] = field(default_factory=list)   # per beat: "N" dominant, "S" premature narrow, "V" premature
    #                                                 wide or different, "?" an early last beat (unconfirmed)
    irregularity: float = 0.0
    rr_cv: float = 0.0
    p_waves: bool | None = None
    af: bool = False
    abnormal: bool = False
    text: str = ""
    findings: list[str] = field(default_factory=list)


def beat_shapes(x: np.ndarray, r_peaks: np.ndarray, fs: float) -> np.ndarray:
    """Correlation of each beat's QRS (±80 ms, all leads) with the median QRS; NaN at the record edges."""
    h = int(0.08 * fs)
    ok = [(i, p) for i, p in enumerate(r_peaks) if p - h >= 0 and p + h < x.shape[1]]
    cc = np.full(len(r_peaks), np.nan)
    if len(ok) < 2:
        return cc
    qrs = np.stack([x[:, p - h:p + h] for _, p in ok])
    qrs = qrs - qrs.mean(axis=2, keepdims=True)
    ref = np.median(qrs, axis=0).ravel()
    for (i, _), b in zip(ok, qrs, strict=True):
        v = b.ravel()
        den = np.linalg.norm(v) * np.linalg.norm(ref)
        cc[i] = float(v @ ref / den) if den > 0 else np.nan
    return cc


def read_rhythm(x: np.ndarray, r_peaks: np.ndarray, fs: float, p_waves: bool | None = None) -> RhythmRead:
    """Rhythm of a band-passed (leads, samples) signal with its R peaks; `p_waves` says whether the beats share a
    consistent P wave (None: unknown)."""
    out = RhythmRead(n_beats=int(len(r_peaks)), p_waves=p_waves)
    if len(r_peaks) < 3:
        out.text = "too few beats to read the rhythm"
        out.findings.append(f"only {len(r_peaks)} beats detected")
        return out
    rr = np.diff(r_peaks) / fs
    out.hr = hr = float(60.0 / rr.mean())
    med = float(np.median(rr))
    cc = beat_shapes(x, r_peaks, fs)
    kinds = ["N"] * len(r_peaks)
    for i in range(1, len(r_peaks)):
        prev = rr[i - 2] if i >= 2 else med
        nxt = rr[i] if i < len(rr) else None
        early = rr[i - 1] < PREMATURE * min(prev, med)
        confirmed = nxt is not None and nxt > PAUSE * rr[i - 1]
        different = bool(np.isfinite(cc[i]) and cc[i] < SHAPE_CC)
        if different and (early or rr[i - 1] < 0.9 * med):
            kinds[i] = "V"
        elif early and confirmed:
            kinds[i] = "S"
        elif early and nxt is None:
            kinds[i] = "?"  # an early last beat: unconfirmed, left out of the RR statistics
    if np.isfinite(cc[0]) and cc[0] < SHAPE_CC and rr[0] > PAUSE * med:
        kinds[0] = "V"  # a different first beat followed by a pause: an ectopic beat as recording began
    out.kinds = kinds
    keep = np.array([kinds[i + 1] != "?" for i in range(len(rr))])
    out.rr_cv = float(rr[keep].std() / rr[keep].mean())
    clean = np.array([rr[i] for i in range(len(rr)) if kinds[i] == "N" and kinds[i + 1] == "N"])
    out.irregularity = float(clean.std() / clean.mean()) if clean.size >= 3 else out.rr_cv
    n_v, n_s = kinds.count("V"), kinds.count("S")
    out.af = out.rr_cv >= IRREGULAR_CV and (out.irregularity >= CLEAN_CV or (n_s + n_v) >= 0.3 * len(kinds))
    parts: list[str] = []
    if out.af:
        p_txt = "without consistent P waves" if p_waves is False else "P waves present" if p_waves else ""
        out.findings.append(f"irregularly irregular RR (CV {100 * out.rr_cv:.0f} %{', ' + p_txt if p_txt else ''}):"
                            " atrial fibrillation or flutter with variable block?")
        parts.append("irregular" + (", no P waves" if p_waves is False else "") + " (AF?)")
    else:
        if n_v:
            out.findings.append(f"{n_v} premature beat{'s' if n_v > 1 else ''} with a different, "
                                "ventricular-looking QRS (PVC)")
            parts.append(f"{n_v} ventricular ectopic")
        if n_s:
            out.findings.append(f"{n_s} premature beat{'s' if n_s > 1 else ''} with the dominant QRS "
                                "(supraventricular ectopic)")
            parts.append(f"{n_s} supraventricular ectopic")
    if hr < BRADY_BPM:
        out.findings.append(f"marked bradycardia {hr:.0f} bpm")
    elif hr > TACHY_BPM:
        out.findings.append(f"marked tachycardia {hr:.0f} bpm")
    out.abnormal = bool(out.af or n_v or n_s or hr < BRADY_BPM or hr > TACHY_BPM)
    if parts and not out.af:
        parts[0] = ("sinus rhythm with " if p_waves is not False else "") + parts[0]
    if not parts:
        sinus = p_waves is not False
        name = "sinus" if sinus else "regular, P waves unclear,"
        if hr < 60:
            name += " bradycardia" if sinus else ""
        elif hr > 100:
            name += " tachycardia" if sinus else ""
        else:
            name += " rhythm" if sinus else ""
        parts.append(name.rstrip(","))
    out.text = f"{', '.join(parts)}, {hr:.0f} bpm"
    return out


PACE_RATIO = 1.8          # a spike this much sharper than the QRS peak itself, before most beats: paced


def pacing_index(raw: np.ndarray, r_peaks: np.ndarray, fs: float) -> float:
    """How much sharper (largest second difference, any lead) the 250 ms before each R is than the QRS peak
    itself, median over beats: pacemaker spikes make it ≫ 1, a native QRS ≈ 1."""
    if len(r_peaks) < 2 or raw.shape[1] < 3:
        return 0.0
    d2 = np.abs(raw[:, 2:] - 2 * raw[:, 1:-1] + raw[:, :-2]).max(axis=0)
    d2 = np.nan_to_num(d2)
    h, pre = max(1, int(0.02 * fs)), int(0.25 * fs)
    spikes, peaks = [], []
    for r in r_peaks:
        a = max(0, r - pre)
        if r - h <= a:
            continue
        spikes.append(d2[a:r - h].max())
        peaks.append(d2[max(0, r - h):r + h].max())
    if not spikes:
        return 0.0
    qrs = float(np.median(peaks))
    return float(np.median(spikes) / qrs) if qrs > 0 else 0.0
