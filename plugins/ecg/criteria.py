"""Per-lead ECG criteria on the median beat: J-point ST deviation against the PR segment with contiguous-lead STEMI
thresholds, pathological Q waves (Minnesota-code style), QRS width — each with the leads that meet it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

# Contiguous lead pairs: neighbours in the Cabrera limb order (aVL, I, -aVR, II, aVF, III) and the precordial order.
CONTIGUOUS: tuple[tuple[str, str], ...] = (
    ("aVL", "I"), ("II", "aVF"), ("aVF", "III"), ("II", "III"),
    ("V1", "V2"), ("V2", "V3"), ("V3", "V4"), ("V4", "V5"), ("V5", "V6"), ("I", "V6"))
TERRITORY: dict[str, tuple[str, ...]] = {
    "inferior": ("II", "III", "aVF"),
    "septal": ("V1", "V2"),
    "anterior": ("V3", "V4"),
    "lateral": ("I", "aVL", "V5", "V6"),
}
RECIPROCAL: dict[str, tuple[str, ...]] = {  # where ST depression mirrors an injury current
    "inferior": ("I", "aVL"), "lateral": ("II", "III", "aVF"), "anterior": ("II", "III", "aVF"),
    "septal": ("II", "III", "aVF")}
Q_LEADS = ("I", "II", "III", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")   # aVR never counts
WIDE_QRS_MS = 120.0
Q_ST_MV = 0.05           # ST still this elevated 60 ms after J in the Q-wave leads: a recent infarction


def territory_of(leads: list[str] | tuple[str, ...]) -> str:
    """A wall name for a set of leads ("inferior", "anterior", "septal", "lateral" or a combination)."""
    walls = [w for w, ls in TERRITORY.items() if any(x in ls for x in leads)]
    if "septal" in walls and "anterior" in walls:
        walls = ["anteroseptal" if w == "septal" else w for w in walls if w != "anterior"]
    if walls and walls[-1] == "lateral" and any(w.startswith("ante") for w in walls):
        walls = [w for w in walls if w != "lateral"]
        walls[-1] = walls[-1] + "-lateral" if walls else "lateral"
    return "/".join(walls)


def st_threshold_mv(lead: str, sex: str | None = None, age: float | None = None) -> float:
    """ST elevation at the J point that counts towards STEMI: 0.1 mV; in V2–V3 0.2 mV (men ≥ 40 and sex unknown),
    0.25 mV (men < 40), 0.15 mV (women)."""
    if lead not in ("V2", "V3"):
        return 0.1
    if sex == "F":
        return 0.15
    if sex == "M" and age is not None and age < 40:
        return 0.25
    return 0.2


def _lowpass(x: np.ndarray, fs: float, hi: float = 40.0) -> np.ndarray:
    sos = signal.butter(2, min(hi, 0.45 * fs), btype="lowpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=min(x.shape[-1] - 1, int(fs)))


@dataclass
class LeadCriteria:
    """Per-lead values from the dominant beats (mV, ms) and the criteria they meet."""

    st_j: dict[str, float] = field(default_factory=dict)      # ST deviation at the J point, against the PR level
    st_60: dict[str, float] = field(default_factory=dict)     # 60 ms after J
    q_ms: dict[str, float] = field(default_factory=dict)      # initial negative deflection: duration
    q_mv: dict[str, float] = field(default_factory=dict)      # and depth (positive number)
    r_mv: dict[str, float] = field(default_factory=dict)      # largest positive deflection in the QRS
    qs: dict[str, bool] = field(default_factory=dict)         # no R wave at all
    stemi_leads: list[str] = field(default_factory=list)
    reciprocal_leads: list[str] = field(default_factory=list)
    q_leads: list[str] = field(default_factory=list)
    qrs_ms: float | None = None


def st_deviation(x: np.ndarray, fs: float, names: tuple[str, ...], r_peaks: np.ndarray, on_rel: int, off_rel: int
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """Median over beats of (level at J, level 60 ms after J) minus the PR-segment level (the 30 ms before QRS
    onset) per lead; each beat against its own PR segment, so baseline wander cancels."""
    lp = _lowpass(np.asarray(x, np.float64), fs)
    n = lp.shape[1]
    pr0, pr1 = on_rel - int(0.03 * fs), on_rel - int(0.005 * fs)
    j, j60, w = off_rel, off_rel + int(0.06 * fs), max(1, int(0.004 * fs))
    vals_j, vals_60 = [], []
    for r in r_peaks:
        if r + pr0 < 0 or r + j60 + w >= n:
            continue
        base = lp[:, r + pr0:r + pr1 + 1].mean(axis=1)
        vals_j.append(lp[:, r + j - w:r + j + w + 1].mean(axis=1) - base)
        vals_60.append(lp[:, r + j60 - w:r + j60 + w + 1].mean(axis=1) - base)
    if not vals_j:
        return {}, {}
    mj, m60 = np.median(np.array(vals_j), axis=0), np.median(np.array(vals_60), axis=0)
    return ({k: float(v) for k, v in zip(names, mj, strict=True)},
            {k: float(v) for k, v in zip(names, m60, strict=True)})


def q_wave(beat: np.ndarray, fs: float, on: int, off: int) -> tuple[float, float, float, bool]:
    """(Q duration ms, Q depth mV, R amplitude mV, QS) of one lead's median beat between QRS onset and offset,
    against the PR level just before onset."""
    base = float(beat[max(0, on - int(0.02 * fs)):on + 1].mean())
    q = beat[on:off + 1] - base
    if q.size < 3:
        return 0.0, 0.0, 0.0, False
    r_amp = float(max(q.max(), 0.0))
    thr = 0.02
    dev = np.flatnonzero(np.abs(q) > thr)
    if dev.size == 0 or q[dev[0]] > 0:
        return 0.0, 0.0, r_amp, False
    k0 = dev[0]
    # walk back to where the deflection leaves the PR level
    while k0 > 0 and q[k0 - 1] < -0.005:
        k0 -= 1
    pos = np.flatnonzero(q[dev[0]:] >= 0)
    if pos.size == 0:  # never back above the PR level: QS
        return 1e3 * (q.size - k0) / fs, float(-q.min()), r_amp, True
    end = dev[0] + int(pos[0])
    depth = float(-q[k0:end].min())
    qs = r_amp < 0.05 and depth > 0.3
    return 1e3 * (end - k0) / fs, depth, r_amp, qs


def stemi_met(st_j: dict[str, float], sex: str | None = None, age: float | None = None
              ) -> tuple[list[str], list[str]]:
    """Leads whose J-point elevation meets the threshold in at least one contiguous pair (aVR excluded), and the
    leads with reciprocal ST depression (≥ 0.05 mV) opposite that territory."""
    up = {k for k, v in st_j.items() if k != "aVR" and v >= st_threshold_mv(k, sex, age)}
    leads = sorted({x for a, b in CONTIGUOUS if a in up and b in up for x in (a, b)}, key=_order)
    recip: set[str] = set()
    for wall, ls in TERRITORY.items():
        if any(x in leads for x in ls):
            recip |= {x for x in RECIPROCAL[wall] if st_j.get(x, 0.0) <= -0.05 and x not in leads}
    return leads, sorted(recip, key=_order)


def q_met(q_ms: dict[str, float], q_mv: dict[str, float], qs: dict[str, bool]) -> list[str]:
    """Leads with a pathological Q wave in at least one contiguous pair: Q ≥ 30 ms and ≥ 0.1 mV deep or QS in
    I, II, III, aVL, aVF, V4–V6; Q ≥ 20 ms or QS in V2–V3 (V1 counts only beside a Q in V2)."""
    def path(k: str) -> bool:
        if k not in q_ms:
            return False
        if k in ("V1", "V2", "V3"):
            return q_ms[k] >= 20.0 and q_mv[k] >= 0.05 or qs.get(k, False)
        return q_ms[k] >= 30.0 and q_mv[k] >= 0.1 or qs.get(k, False)
    hit = {k for k in Q_LEADS if path(k)}
    pairs = [(a, b) for a, b in CONTIGUOUS if a in hit and b in hit and (a, b) != ("II", "III")]
    return sorted({x for p in pairs for x in p}, key=_order)


def _order(lead: str) -> int:
    order = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    return order.index(lead) if lead in order else len(order)
