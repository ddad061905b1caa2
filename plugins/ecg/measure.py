"""ECG intervals from a waveform: R peaks on a combined lead, a median dominant beat, then QRS onset/offset from the
spatial velocity, T end and P onset by the tangent method; returns only what could be measured (ms, bpm)."""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from .types import EcgRecord

MIN_BEATS = 2


def _bandpass(x: np.ndarray, fs: float, lo: float, hi: float, order: int = 2) -> np.ndarray:
    hi = min(hi, 0.45 * fs)
    sos = signal.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
    pad = min(x.shape[-1] - 1, int(3 * fs))
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=pad)


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    k = np.ones(n) / n
    return np.convolve(x, k, mode="same")


def detect_r_peaks(record: EcgRecord) -> np.ndarray:
    """Sample indices of the QRS complexes (all leads combined: 5–20 Hz band, summed absolute slope)."""
    fs = float(record.fs)
    x = np.asarray(record.signals, np.float64)
    if x.shape[1] < int(fs):
        return np.zeros(0, int)
    bp = _bandpass(x, fs, 8.0, 25.0)
    env = _smooth(np.abs(np.diff(bp, axis=1, prepend=bp[:, :1])).sum(0), max(1, int(0.06 * fs)))
    peaks, props = signal.find_peaks(env, height=0.15 * np.percentile(env, 99.5), distance=max(1, int(0.25 * fs)))
    if peaks.size == 0:
        return peaks
    heights = props["peak_heights"]
    keep = heights >= 0.2 * np.median(heights)  # against the typical beat: big ectopic beats must not hide others
    peaks, heights = peaks[keep], heights[keep]
    acc: list[int] = []
    acc_h: list[float] = []
    for p, h in zip(peaks, heights, strict=True):  # T-wave discrimination (Pan–Tompkins style)
        if acc and p - acc[-1] < 0.36 * fs and h < 0.5 * acc_h[-1]:
            continue
        if acc and p - acc[-1] < 0.36 * fs and acc_h[-1] < 0.5 * h and len(acc) >= 1:
            acc[-1], acc_h[-1] = p, h  # the previous one was the T wave of nothing we know: keep the larger
            continue
        acc.append(int(p))
        acc_h.append(float(h))
    peaks = np.array(acc, int)
    # refine to the largest absolute deflection of the combined (0.5-45 Hz) signal near the envelope peak
    wide = np.abs(_bandpass(x, fs, 0.5, 45.0)).sum(0)
    h = int(0.06 * fs)
    out = []
    for p in peaks:
        a, b = max(0, p - h), min(x.shape[1], p + h + 1)
        out.append(a + int(np.argmax(wide[a:b])))
    return np.unique(np.array(out, int))


def _median_beat(x: np.ndarray, r: np.ndarray, pre: int, post: int, fs: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Median of the beats around `r` (leads, pre + post), keeping the dominant QRS morphology (drops PVCs); also
    the kept beats (n, leads, pre + post)."""
    ok = r[(r - pre >= 0) & (r + post < x.shape[1])]
    if ok.size == 0:
        return np.zeros((x.shape[0], 0)), np.zeros((0, x.shape[0], 0))
    beats = np.stack([x[:, p - pre:p + post] for p in ok])  # (n, leads, L)
    med = np.median(beats, axis=0)
    if len(ok) >= 3:
        h = slice(max(0, pre - int(0.08 * fs)), pre + int(0.08 * fs))
        ref = med[:, h].ravel()
        cc = np.array([np.corrcoef(b[:, h].ravel(), ref)[0, 1] for b in beats])
        keep = cc > max(0.8, float(np.nanmedian(cc)) - 0.1)
        if keep.sum() >= 2:
            return np.median(beats[keep], axis=0), beats[keep]
    return med, beats


def _tangent_end(e: np.ndarray, start: int, stop: int, floor: float) -> int | None:
    """T end on a non-negative curve: the tangent at the steepest descent between the peak and its return towards
    the floor, extended to the floor level."""
    if stop - start < 5:
        return None
    pk = start + int(np.argmax(e[start:stop]))
    low = np.flatnonzero(e[pk:stop] < floor + 0.15 * (e[pk] - floor))
    if low.size == 0:
        return None
    back = pk + int(low[0])
    d = np.gradient(e)
    k = pk + int(np.argmin(d[pk:back + 1]))
    if d[k] >= 0:
        return None
    return int(round(k + (floor - e[k]) / d[k]))


def delineate(record: EcgRecord) -> dict[str, object]:
    """R peaks, the median dominant beat (leads, samples; 0.5–45 Hz) and its fiducial samples (None when not found):
    r (the aligned R), qrs_on, qrs_off, t_end, p_on."""
    fs = float(record.fs)
    x = np.asarray(record.signals, np.float64)
    d: dict[str, object] = {"r_peaks": np.zeros(0, int), "median": None, "n_beats": 0, "r": None, "qrs_on": None,
                            "qrs_off": None, "t_end": None, "p_on": None}
    if x.ndim != 2 or x.shape[1] < 2 * fs or not np.isfinite(x).all():
        return d
    r = detect_r_peaks(record)
    d["r_peaks"] = r
    if r.size < MIN_BEATS:
        return d
    rr_med = float(np.median(np.diff(r))) / fs
    xf = _bandpass(x, fs, 0.5, 45.0)
    pre = int(min(0.4, 0.6 * rr_med) * fs)
    post = int(min(0.7, max(0.3, 0.9 * rr_med)) * fs)
    med, beats = _median_beat(xf, r, pre, post, fs)
    n = len(beats)
    d.update(median=med, n_beats=n, r=pre)
    if n < 1 or med.shape[1] < pre + int(0.2 * fs):
        return d
    L = med.shape[1]
    # QRS onset/offset: spatial velocity against its own floor
    vel = np.sqrt((np.gradient(med, axis=1) ** 2).sum(0)) * fs  # mV/s
    vel = _smooth(vel, max(1, int(0.006 * fs)))
    w = int(0.06 * fs)
    vmax = float(vel[max(0, pre - w):pre + w].max())
    floor = float(np.percentile(vel, 10))
    thr = floor + 0.05 * (vmax - floor)
    hold = max(1, int(0.008 * fs))
    on = next((i for i in range(pre, hold, -1) if np.all(vel[i - hold:i] < thr)), None)
    off = next((i for i in range(pre, L - hold) if np.all(vel[i:i + hold] < thr)), None)
    if on is None or off is None:
        return d
    d.update(qrs_on=on, qrs_off=off)
    # spatial magnitude relative to the PR-segment level
    b0 = max(0, on - int(0.02 * fs))
    base = med[:, b0:on + 1].mean(axis=1, keepdims=True)
    e = _smooth(np.sqrt(((med - base) ** 2).sum(0)), max(1, int(0.01 * fs)))
    d["magnitude"] = e
    t0 = off + int(0.06 * fs)
    t1 = min(L, on + int(min(0.7, max(0.6 * rr_med, rr_med - 0.12)) * fs))  # stop before the next P wave
    t_end = _tangent_end(e, t0, t1, float(e[t0:t1].min()) if t1 > t0 else 0.0)
    if t_end is not None and off < t_end <= L:
        d["t_end"] = t_end
    # P onset: a bump before the QRS that every beat shares (AF f-waves are not phase-locked to the QRS), starting
    # after the previous beat's T wave
    p0, p1 = max(0, on - int(0.32 * fs)), on - int(0.03 * fs)
    if d["t_end"] is not None:
        p0 = max(p0, int(d["t_end"] - rr_med * fs + 0.02 * fs))
    if p1 - p0 > int(0.08 * fs) and n >= 2:
        seg = e[p0:p1]
        k = int(np.argmax(seg))
        lo = float(seg[:k + 1].min()) if k > 0 else float(seg[0])
        amp = float(seg[k]) - lo
        noise = float(np.std(np.diff(med[:, p0:p1], axis=1)))
        shape_ok = 0 < k < seg.size - 1 and seg[0] < lo + 0.5 * amp and amp >= max(0.03, 4 * noise)
        if shape_ok:
            ref = (med[:, p0:p1] - base).ravel()
            cc = [np.corrcoef((b[:, p0:p1] - b[:, b0:on + 1].mean(axis=1, keepdims=True)).ravel(), ref)[0, 1]
                  for b in beats]
            d["p_consistency"] = float(np.nanmedian(cc))
            rise = np.gradient(seg[:k + 1])
            j = int(np.argmax(rise))
            if d["p_consistency"] >= 0.5 and rise[j] > 0:
                d["p_on"] = p0 + j - (seg[j] - lo) / rise[j]
    return d


def measure(record: EcgRecord, d: dict[str, object] | None = None) -> dict[str, float]:
    """HR (bpm) and RR, PR, QRS, QT (ms), QTc (Bazett) and QTcF (Fridericia) of the dominant beat; keys that could
    not be measured are left out (never NaN). `d` is `delineate(record)` when already computed."""
    fs = float(record.fs)
    d = delineate(record) if d is None else d
    r = d["r_peaks"]
    out: dict[str, float] = {}
    if len(r) < MIN_BEATS:
        return out
    rr_mean = float(np.diff(r).mean()) / fs
    out["HR"] = 60.0 / rr_mean
    out["RR"] = 1e3 * rr_mean
    on, off = d["qrs_on"], d["qrs_off"]
    if on is None or off is None:
        return out
    qrs = 1e3 * (off - on) / fs
    if not 40.0 <= qrs <= 220.0:
        return out
    out["QRS"] = qrs
    if d["t_end"] is not None:
        qt = 1e3 * (d["t_end"] - on) / fs
        if 200.0 <= qt <= 700.0:
            out["QT"] = qt
            out["QTc"] = qt / math.sqrt(rr_mean)
            out["QTcF"] = qt / rr_mean ** (1 / 3)
    if d["p_on"] is not None:
        pr = 1e3 * (on - d["p_on"]) / fs
        if 60.0 <= pr <= 400.0:
            out["PR"] = float(pr)
    return out
