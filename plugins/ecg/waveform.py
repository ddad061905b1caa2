"""12-lead ECG simulator: a heart-vector (dipole) model of P, QRS, T projected on the lead vectors, with per-class
physiology (sinus, AF/PVC/PAC/rate disorders, acute STEMI, prior MI); deterministic per seed, signals in mV."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.errors import BadInput

from .types import CLASSES, STANDARD_LEADS, EcgRecord

# Body axes of the heart vector: x to the patient's left, y inferior (feet), z anterior (chest).
# Independent leads (recorded); the other four limb leads are derived from I and II by Einthoven/Goldberger.
INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
# Precordial electrode directions: angle in the horizontal plane from +x towards +z (anterior), vertical component.
PRECORDIAL_DIRS = {"V1": (115.0, -0.05), "V2": (95.0, -0.05), "V3": (75.0, 0.05), "V4": (55.0, 0.15),
                   "V5": (30.0, 0.15), "V6": (5.0, 0.15)}
PRECORDIAL_GAIN = {"V1": 1.2, "V2": 1.8, "V3": 1.7, "V4": 1.5, "V5": 1.2, "V6": 1.0}

# MI territories: contiguous leads and the direction (towards the injured wall) of the injury / infarct vector.
TERRITORIES: dict[str, tuple[tuple[str, ...], tuple[float, float, float]]] = {
    "inferior": (("II", "III", "aVF"), (-0.15, 1.0, 0.05)),
    "anterior": (("V1", "V2", "V3", "V4"), (0.3, -0.2, 1.0)),
    "anteroseptal": (("V1", "V2", "V3"), (-0.35, -0.15, 1.0)),
    "lateral": (("I", "aVL", "V5", "V6"), (1.0, -0.45, -0.05)),
    "anterolateral": (("I", "aVL", "V4", "V5", "V6"), (0.8, -0.2, 0.6)),
}
ABNORMAL_SUBTYPES: dict[str, float] = {"atrial_fibrillation": 0.3, "pvc": 0.25, "pac": 0.2,
                                       "sinus_tachycardia": 0.125, "sinus_bradycardia": 0.125}
OVERRIDES = ("hr", "axis_deg", "noise", "amp", "territory", "subtype", "qtc_ms", "pr_ms", "qrs_ms", "st_scale")


def _unit(v: Any) -> np.ndarray:
    a = np.asarray(v, np.float64)
    return a / np.linalg.norm(a)


def _frontal(angle_deg: float, z: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return _unit((math.cos(a), math.sin(a), z))


def lead_matrix(rng: np.random.Generator | None = None) -> np.ndarray:
    """(12, 3) projection of the heart vector on STANDARD_LEADS; placement/gain jitter when `rng` is given."""
    ind = np.zeros((len(INDEPENDENT), 3))
    ind[0] = (1.0, 0.0, 0.0)
    ind[1] = (0.5, math.sqrt(3) / 2, 0.0)
    for k, name in enumerate(INDEPENDENT[2:], start=2):
        ang, y = PRECORDIAL_DIRS[name]
        g = PRECORDIAL_GAIN[name]
        if rng is not None:
            ang += rng.normal(0, 5)
            g *= rng.uniform(0.85, 1.15)
        a = math.radians(ang)
        ind[k] = g * _unit((math.cos(a), y, math.sin(a)))
    return _derive(ind)


def _derive(ind: np.ndarray) -> np.ndarray:
    """Independent leads (I, II, V1..V6 along axis 0) → the 12 standard leads, limb leads by the exact identities."""
    i, ii = ind[0], ind[1]
    out = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2, *ind[2:]]
    return np.stack(out)


@dataclass
class _Wave:
    start: float   # s, relative to the beat's QRS onset
    peak0: float   # plateau start (= peak for a bump)
    peak1: float   # plateau end
    end: float
    vec: np.ndarray  # (3,) mV


def _add_wave(d: np.ndarray, fs: float, t0: float, w: _Wave) -> None:
    """Add a raised-cosine wave with finite support (so onsets/offsets are exact ground truth) to dipole `d`."""
    n = d.shape[1]
    i0 = max(0, math.ceil((t0 + w.start) * fs))
    i1 = min(n, math.floor((t0 + w.end) * fs) + 1)
    if i1 <= i0:
        return
    t = np.arange(i0, i1) / fs - t0
    y = np.ones_like(t)
    up = t < w.peak0
    if w.peak0 > w.start:
        y[up] = np.sin(0.5 * np.pi * (t[up] - w.start) / (w.peak0 - w.start)) ** 2
    down = t > w.peak1
    if w.end > w.peak1:
        y[down] = np.cos(0.5 * np.pi * (t[down] - w.peak1) / (w.end - w.peak1)) ** 2
    d[:, i0:i1] += w.vec[:, None] * y[None, :]


def _bump(start: float, end: float, vec: np.ndarray, peak_frac: float = 0.5) -> _Wave:
    p = start + peak_frac * (end - start)
    return _Wave(start, p, p, end, vec)


@dataclass
class _Morph:
    """Per-record dipole morphology (vectors in mV) and intervals."""

    p_ra: np.ndarray
    p_la: np.ndarray
    q: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    s: np.ndarray
    t: np.ndarray
    st: np.ndarray           # ST-segment vector (small in normals, injury current in STEMI)
    qrs: float               # s
    pr: float                # s (at 70 bpm)
    pd: float                # P duration, s
    qtcf: float              # s
    st_seg: float            # J → T onset, s
    infarct_q: np.ndarray | None = None
    infarct_w: float = 0.0


def _qt(m: _Morph, rr: float) -> float:
    return m.qtcf * rr ** (1 / 3)


def _pr(m: _Morph, rr: float) -> float:
    hr = 60.0 / rr
    return float(np.clip(m.pr - 0.0008 * (hr - 70.0), max(0.10, m.pd + 0.03), 0.24))


def _qrst_waves(m: _Morph, rr: float) -> tuple[list[_Wave], float]:
    """Waves of a supraventricular QRS-T (relative to QRS onset) and the T end."""
    d = m.qrs
    w = [_bump(0.0, 0.3 * d, m.q), _bump(0.1 * d, 0.55 * d, m.r1), _bump(0.25 * d, 0.8 * d, m.r2),
         _bump(0.55 * d, d, m.s)]
    if m.infarct_q is not None:
        w.append(_bump(0.0, m.infarct_w, m.infarct_q, 0.45))
    qt = _qt(m, rr)
    st_seg = float(np.clip(min(m.st_seg, qt - d - 0.12), 0.02, None))
    t_on = d + st_seg
    t_end = max(qt, t_on + 0.1)
    t_pk = t_on + 0.6 * (t_end - t_on)
    w.append(_bump(t_on, t_end, m.t, 0.6))
    if np.any(m.st):
        w.append(_Wave(0.75 * d, d, t_pk, t_end, m.st))
    return w, t_end


def _draw_morph(rng: np.random.Generator, axis: float, amp: float) -> _Morph:
    p_ax = rng.uniform(35, 75)
    pa = amp * rng.uniform(0.08, 0.2)
    t_ax = axis + rng.uniform(-25, 15)
    r_amp = amp * rng.uniform(1.0, 2.0)
    st_small = _unit(rng.normal(size=3)) * rng.uniform(0.0, 0.04)
    return _Morph(
        p_ra=pa * _frontal(p_ax - 10, 0.5), p_la=pa * _frontal(p_ax + 10, -0.5) * rng.uniform(0.6, 1.0),
        q=amp * rng.uniform(0.1, 0.25) * _frontal(axis + 180 + rng.uniform(-30, 30), 1.2),
        r1=amp * rng.uniform(0.3, 0.7) * _frontal(axis - 10, 0.6),
        r2=r_amp * _frontal(axis, -0.45),
        s=amp * rng.uniform(0.2, 0.6) * _frontal(-120 + rng.uniform(-30, 30), -0.5),
        t=amp * rng.uniform(0.2, 0.5) * _frontal(t_ax, 0.35 + rng.uniform(-0.2, 0.2)),
        st=st_small, qrs=rng.uniform(0.075, 0.105), pr=rng.uniform(0.13, 0.19), pd=rng.uniform(0.08, 0.11),
        qtcf=rng.uniform(0.38, 0.44), st_seg=rng.uniform(0.06, 0.12))


def _template(m: _Morph, rr: float, fs: float, leads: np.ndarray) -> np.ndarray:
    """Noise-free (12, n) supraventricular beat starting at QRS onset (sample 0)."""
    waves, t_end = _qrst_waves(m, rr)
    d = np.zeros((3, int((t_end + 0.05) * fs) + 1))
    for w in waves:
        _add_wave(d, fs, 0.0, w)
    return leads @ d


def _q_wave(x: np.ndarray, fs: float) -> tuple[float, float]:
    """(duration s, depth mV) of an initial negative deflection of a noise-free beat starting at QRS onset."""
    nz = np.flatnonzero(np.abs(x) > 0.01)
    if nz.size == 0 or x[nz[0]] > 0:
        return 0.0, 0.0
    pos = np.flatnonzero(x[nz[0]:] >= 0)
    end = nz[0] + (pos[0] if pos.size else x.size - nz[0])
    return end / fs, float(-x[:end].min())


def _apply_prior_mi(m: _Morph, rng: np.random.Generator, u: np.ndarray, terr_leads: list[int], fs: float,
                    leads: np.ndarray, rr: float) -> dict[str, Any]:
    f = rng.uniform(0.6, 1.0)
    for name in ("q", "r1", "r2"):
        v = getattr(m, name)
        setattr(m, name, v - f * max(float(v @ u), 0.0) * u)
    a, wq = rng.uniform(0.15, 0.45), rng.uniform(0.04, 0.06)
    t_inv = bool(rng.random() < 0.65)
    if t_inv and float(m.t @ u) > 0:
        m.t = m.t - rng.uniform(1.3, 2.2) * float(m.t @ u) * u
    for _ in range(12):
        m.infarct_q, m.infarct_w = -a * u, wq
        tmpl = _template(m, rr, fs, leads)
        qs = [_q_wave(tmpl[i], fs) for i in terr_leads]
        ok = [i for i, (dur, dep) in zip(terr_leads, qs, strict=True) if dur >= 0.036 and dep >= 0.12]
        if len(ok) >= 2:
            break
        a *= 1.3
        wq = min(wq + 0.005, 0.08)
    return {"q_leads": [STANDARD_LEADS[i] for i in ok], "t_inverted": t_inv, "infarct_q_ms": round(1e3 * wq, 1)}


def _apply_stemi(m: _Morph, rng: np.random.Generator, u: np.ndarray, terr_leads: list[int], leads: np.ndarray,
                 st_scale: float) -> dict[str, Any]:
    proj = leads @ u
    need = []
    for i in terr_leads:
        thr = 0.2 if STANDARD_LEADS[i] in ("V2", "V3") else 0.1
        need.append(thr / proj[i] if proj[i] > 1e-3 else np.inf)
    mag = sorted(need)[1] * rng.uniform(1.25, 3.0) * st_scale
    m.st = mag * u
    if rng.random() < 0.6:  # hyperacute T towards the injured wall
        m.t = m.t + rng.uniform(0.1, 0.4) * u
    st = proj * mag
    return {"st_leads": [STANDARD_LEADS[i] for i in terr_leads if st[i] >= (0.2 if STANDARD_LEADS[i] in ("V2", "V3")
                                                                          else 0.1)],
            "reciprocal_leads": [STANDARD_LEADS[i] for i in range(12) if st[i] <= -0.05],
            "st_mv": {STANDARD_LEADS[i]: round(float(st[i]), 3) for i in range(12)}}


def _sinus_times(rng: np.random.Generator, rr: float, duration: float, resp: float) -> list[float]:
    f_resp, ph = rng.uniform(0.2, 0.33), rng.uniform(0, 2 * np.pi)
    t = -rng.uniform(0.0, 1.0) * rr
    out = []
    while t < duration + 0.1:
        out.append(t)
        t += rr * (1 + resp * math.sin(2 * math.pi * f_resp * t + ph) + rng.normal(0, 0.008))
    return out


def _rhythm(rng: np.random.Generator, subtype: str, rr: float, duration: float) -> list[tuple[float, str]]:
    """Beat onsets (QRS onset, s) and kinds: sinus | pvc | pac | af."""
    resp = rng.uniform(0.0, 0.05)
    if subtype == "atrial_fibrillation":
        cv = rng.uniform(0.12, 0.3)
        t, out = -rng.uniform(0, 1) * rr, []
        while t < duration + 0.1:
            out.append((t, "af"))
            t += max(0.3, rr * math.exp(rng.normal(-cv * cv / 2, cv)))
        return out
    times = _sinus_times(rng, rr, duration, resp)
    beats = [(t, "sinus") for t in times]
    if subtype not in ("pvc", "pac"):
        return beats
    cand = [k for k in range(1, len(times) - 1) if 0.4 < times[k] < duration - 1.2]
    if not cand:
        cand = [min(range(1, len(times) - 1), key=lambda k: abs(times[k] - duration / 2))]
    if subtype == "pvc" and rng.random() < 0.15:
        start = int(rng.integers(0, 2))
        chosen = cand[start::2]
    else:
        chosen = sorted(rng.choice(cand, size=min(len(cand), int(rng.integers(1, 4))), replace=False).tolist())
        chosen = [k for j, k in enumerate(chosen) if j == 0 or k - chosen[j - 1] >= 2] or chosen[:1]
    if subtype == "pvc":  # sinus schedule untouched: full compensatory pause
        for k in chosen:
            beats[k] = (times[k - 1] + rng.uniform(0.55, 0.75) * (times[k] - times[k - 1]), "pvc")
        return beats
    out, shift = [], 0.0  # PAC resets the sinus node: the following beats shift earlier (non-compensatory)
    for k, t in enumerate(times):
        if k in chosen:
            prev = out[-1][0]
            tp = prev + rng.uniform(0.6, 0.8) * (t - shift - prev)
            shift = t - tp
            out.append((tp, "pac"))
        else:
            out.append((t - shift, "sinus"))
    return out


def _noise(rng: np.random.Generator, n: int, fs: float, level: float) -> tuple[np.ndarray, dict[str, Any]]:
    t = np.arange(n) / fs
    k = len(INDEPENDENT)
    sigma = level * rng.uniform(0.004, 0.02)
    wander_amp = level * rng.uniform(0.02, 0.15)
    out = (rng.standard_normal((k, n)) * sigma).astype(np.float64)
    f_resp = rng.uniform(0.15, 0.4)
    common = np.sin(2 * np.pi * f_resp * t + rng.uniform(0, 2 * np.pi))
    for j in range(k):
        fw = rng.uniform(0.05, 0.5)
        out[j] += wander_amp * (rng.uniform(0.3, 1.0) * common
                                + rng.uniform(0, 0.7) * np.sin(2 * np.pi * fw * t + rng.uniform(0, 2 * np.pi)))
    mains = float(rng.choice([50.0, 60.0]))
    hum = level * rng.uniform(0.0, 0.03) if rng.random() < 0.5 else 0.0
    if hum:
        out += hum * rng.uniform(0.3, 1.0, (k, 1)) * np.sin(2 * np.pi * mains * t + rng.uniform(0, 2 * np.pi))
    return out, {"sigma_mv": round(sigma, 4), "wander_mv": round(wander_amp, 4), "mains_hz": mains,
                 "hum_mv": round(hum, 4)}


def simulate(label: str, seed: int, fs: float = 500.0, duration_s: float = 10.0, **overrides: Any) -> EcgRecord:
    """A 12-lead ECG (STANDARD_LEADS, mV) of class `label`. The same seed gives the same patient (rate, axis,
    amplitudes, noise) for every label, so classes differ by their physiology only. Overrides: hr (bpm), axis_deg,
    noise (False/0 → clean, or a scale), amp, territory, subtype, qtc_ms, pr_ms, qrs_ms, st_scale. `meta` holds the
    ground truth: subtype, territory and leads, hr, intervals (ms) and per-beat fiducial samples."""
    if label not in CLASSES:
        raise BadInput(f"unknown ECG class {label!r}; use one of {', '.join(CLASSES)}")
    bad = set(overrides) - set(OVERRIDES)
    if bad:
        raise BadInput(f"unknown simulate() option(s) {', '.join(sorted(bad))}; use {', '.join(OVERRIDES)}")
    if fs <= 0 or duration_s <= 0:
        raise BadInput(f"fs and duration_s must be positive (got {fs}, {duration_s})")
    base = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0])          # the patient: shared by every label
    rcls = np.random.default_rng([int(seed) & 0xFFFFFFFF, 1 + CLASSES.index(label)])
    rnoise = np.random.default_rng([int(seed) & 0xFFFFFFFF, 99])
    n = int(round(duration_s * fs))

    hr = float(overrides.get("hr", base.uniform(55, 100)))
    axis = float(overrides.get("axis_deg", np.clip(base.normal(50, 25), -25, 85)))
    amp = float(overrides.get("amp", base.uniform(0.7, 1.35)))
    leads = lead_matrix(base)
    m = _draw_morph(base, axis, amp)
    if "qtc_ms" in overrides:
        m.qtcf = float(overrides["qtc_ms"]) / 1e3
    if "pr_ms" in overrides:
        m.pr = float(overrides["pr_ms"]) / 1e3
    if "qrs_ms" in overrides:
        m.qrs = float(overrides["qrs_ms"]) / 1e3
    meta: dict[str, Any] = {"simulator": "dipole-v1", "seed": int(seed), "axis_deg": round(axis, 1)}

    subtype = "sinus"
    if label == "abnormal_heartbeat":
        names = list(ABNORMAL_SUBTYPES)
        subtype = str(overrides.get("subtype") or rcls.choice(names, p=list(ABNORMAL_SUBTYPES.values())))
        if subtype not in ABNORMAL_SUBTYPES:
            raise BadInput(f"unknown abnormal_heartbeat subtype {subtype!r}; use {', '.join(names)}")
        if "hr" not in overrides:
            hr = {"sinus_tachycardia": rcls.uniform(105, 150), "sinus_bradycardia": rcls.uniform(38, 52),
                  "atrial_fibrillation": rcls.uniform(60, 140)}.get(subtype, hr)
    if label in ("myocardial_infarction", "history_of_mi"):
        terr = str(overrides.get("territory") or rcls.choice(list(TERRITORIES)))
        if terr not in TERRITORIES:
            raise BadInput(f"unknown territory {terr!r}; use {', '.join(TERRITORIES)}")
        names, u = TERRITORIES[terr]
        u = _unit(u)
        idx = [STANDARD_LEADS.index(x) for x in names]
        meta.update(territory=terr, territory_leads=list(names))
        if label == "myocardial_infarction":
            meta.update(_apply_stemi(m, rcls, u, idx, leads, float(overrides.get("st_scale", 1.0))))
        else:
            meta.update(_apply_prior_mi(m, rcls, u, idx, fs, leads, 60.0 / hr))
    rr = 60.0 / hr
    meta["subtype"] = subtype
    beats = _rhythm(rcls, subtype, rr, duration_s)

    # PVC morphology (ventricular origin: wide, bizarre, discordant T) and ectopic atrial P
    pvc_dir = _unit(rcls.normal(size=3))
    pvc_amp = amp * rcls.uniform(1.2, 2.2)
    pvc_w = rcls.uniform(0.13, 0.18)
    pvc_v1 = pvc_amp * pvc_dir
    pvc_v2 = pvc_amp * 0.6 * _unit(pvc_dir + 0.6 * _unit(rcls.normal(size=3)))
    pac_p = amp * rcls.uniform(0.06, 0.14) * _frontal(rcls.uniform(-100, -40), rcls.uniform(-0.5, 0.5))

    d = np.zeros((3, n))
    fid: dict[str, list] = {"qrs_on": [], "qrs_off": [], "t_off": [], "p_on": [], "kind": []}
    prev = None
    for t0, kind in beats:
        beat_rr = rr if prev is None else max(0.3, t0 - prev)
        prev = t0
        if kind == "pvc":
            vqrs = pvc_v1 + pvc_v2
            tv = -rcls.uniform(0.3, 0.5) * vqrs
            t_end = pvc_w + rcls.uniform(0.22, 0.3)
            waves = [_bump(0.0, 0.65 * pvc_w, pvc_v1), _bump(0.35 * pvc_w, pvc_w, pvc_v2),
                     _bump(pvc_w + 0.02, t_end, tv, 0.55)]
            qrs_d, p_on = pvc_w, None
        else:
            waves, t_end = _qrst_waves(m, max(beat_rr, 0.35))
            qrs_d, p_on = m.qrs, None
            if kind in ("sinus", "pac"):
                pr = _pr(m, rr)
                if kind == "pac":
                    pr = float(np.clip(pr + rcls.uniform(-0.03, 0.03), m.pd + 0.03, 0.22))
                    waves.append(_bump(-pr, -pr + m.pd, pac_p))
                else:
                    waves += [_bump(-pr, -pr + 0.8 * m.pd, m.p_ra), _bump(-pr + 0.2 * m.pd, -pr + m.pd, m.p_la)]
                p_on = t0 - pr
        for w in waves:
            _add_wave(d, fs, t0, w)
        fid["qrs_on"].append(int(round(t0 * fs)))
        fid["qrs_off"].append(int(round((t0 + qrs_d) * fs)))
        fid["t_off"].append(int(round((t0 + t_end) * fs)))
        fid["p_on"].append(None if p_on is None else int(round(p_on * fs)))
        fid["kind"].append(kind)

    ind = (leads[[0, 1, 6, 7, 8, 9, 10, 11]] @ d)  # I, II, V1..V6
    if subtype == "atrial_fibrillation":  # fibrillatory waves from a wandering atrial vector, 4–9 Hz
        t = np.arange(n) / fs
        fw = np.zeros((3, n))
        for _ in range(3):
            f0 = rcls.uniform(4.0, 9.0)
            phase = 2 * np.pi * np.cumsum(f0 + 0.8 * np.sin(2 * np.pi * rcls.uniform(0.1, 0.5) * t
                                                            + rcls.uniform(0, 6))) / fs
            fw += np.outer(_unit(rcls.normal(size=3) + [0, 0.8, 0.8]), np.sin(phase + rcls.uniform(0, 6)))
        fw *= amp * rcls.uniform(0.03, 0.09) / 1.5
        ind += leads[[0, 1, 6, 7, 8, 9, 10, 11]] @ fw
    noise_opt = overrides.get("noise", 1.0)
    level = 0.0 if noise_opt is False or noise_opt is None else float(noise_opt)
    if level > 0:
        nz, meta["noise"] = _noise(rnoise, n, fs, level)
        ind += nz
    ind32 = ind.astype(np.float32)
    sig = np.empty((12, n), np.float32)
    i_, ii = ind32[0], ind32[1]
    sig[0], sig[1] = i_, ii
    sig[2] = ii - i_
    sig[3] = -(i_ + ii) / np.float32(2)
    sig[4] = i_ - ii / np.float32(2)
    sig[5] = ii - i_ / np.float32(2)
    sig[6:] = ind32[2:]

    on = np.array(fid["qrs_on"], float) / fs
    vis = [k for k, t0 in enumerate(on) if 0 <= t0 < duration_s]
    rrs = np.diff(on[vis]) if len(vis) > 1 else np.array([rr])
    sinus = [k for k in vis if fid["kind"][k] in ("sinus", "af")]
    qt_ms = 1e3 * _qt(m, rr)
    meta.update(
        hr=round(60.0 / float(rrs.mean()), 2), hr_set=round(hr, 2), rr_cv=round(float(rrs.std() / rrs.mean()), 4),
        pr_ms=None if subtype == "atrial_fibrillation" else round(1e3 * _pr(m, rr), 1),
        qrs_ms=round(1e3 * m.qrs, 1), qt_ms=round(qt_ms, 1), qtc_ms=round(qt_ms / math.sqrt(rr), 1),
        qtcf_ms=round(1e3 * m.qtcf, 1), n_beats=len(vis), n_ectopic=sum(fid["kind"][k] in ("pvc", "pac") for k in vis),
        n_dominant=len(sinus), fiducials=fid)
    return EcgRecord(signals=sig, fs=float(fs), leads=STANDARD_LEADS, label=label, meta=meta)
