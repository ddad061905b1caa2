"""Input gating for ECG waveforms: sampling rate, duration and usable leads decide what can be assessed — the four
classes from 12 leads, the rhythm only from a strip, or nothing (refused) — each limit stated as one line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from app.core.errors import BadInput

from .types import CLASSES, STANDARD_LEADS, EcgRecord

FS_MIN, FS_MAX = 100.0, 10_000.0     # Hz: outside this no clinical ECG recorder; a header error
MIN_READ_S = 8.0                      # a 12-lead reading wants ~10 s; shorter is read but said
MIN_RHYTHM_S = 2.5                    # fewer seconds hold too few beats for any rhythm statement
MIN_MI_LEADS = 8                      # usable standard leads (after deriving limb leads) to assess MI
RHYTHM_CLASSES: tuple[str, ...] = ("normal", "abnormal_heartbeat")
FLAT_MV = 0.03                        # peak-to-peak (robust) below this: no signal
MAX_ABS_MV = 30.0                     # beyond this the values are not millivolts
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


@dataclass
class RecordGate:
    """What a waveform allows: `scope` "12-lead" | "rhythm-only" | "refused"; `assessed` the classes that can be
    told apart; `usable` the leads fit to read (standard names; derived limb leads included), `derived` those
    computed from two others; `reasons` one line per limit; `refuse` the message when refused."""

    scope: str
    assessed: tuple[str, ...]
    reasons: list[str] = field(default_factory=list)
    refuse: str = ""
    usable: tuple[str, ...] = ()
    derived: tuple[str, ...] = ()
    bad_leads: dict[str, str] = field(default_factory=dict)   # lead → why unusable: flat / saturated / invalid
    duration_s: float = 0.0

    @property
    def refused(self) -> bool:
        return self.scope == "refused"


def check_fs(fs: object, source: str = "record") -> float:
    """The sampling rate as a float, or BadInput (one line) when it is missing, not positive or implausible."""
    try:
        f = float(fs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{source}: sampling rate {fs!r} is not a number") from None
    if not math.isfinite(f) or f <= 0:
        raise BadInput(f"{source}: sampling rate {fs!r} Hz is not positive; the header is wrong")
    if not FS_MIN <= f <= FS_MAX:
        raise BadInput(f"{source}: sampling rate {f:g} Hz is implausible for an ECG "
                       f"(expect {FS_MIN:g}–{FS_MAX:g} Hz)")
    return f


def lead_quality(x: np.ndarray, fs: float) -> str:
    """"" when a lead is fit to read, else why not: "invalid" (NaN/inf), "flat", "saturated", "not mV"."""
    n = x.size
    if n == 0:
        return "flat"
    bad = ~np.isfinite(x)
    if bad.mean() > 0.05:
        return "invalid"
    v = x[~bad].astype(np.float64)
    if np.abs(v).max() > MAX_ABS_MV and np.percentile(np.abs(v), 50) > MAX_ABS_MV / 10:
        return "not mV"
    lo, hi = np.percentile(v, [1, 99])
    if hi - lo < FLAT_MV:
        return "flat"
    # long runs pinned at the extreme values: the amplifier clipped
    pinned = (v >= v.max() - 1e-6) | (v <= v.min() + 1e-6)
    if pinned.mean() > 0.05 and np.ptp(v) > 0:
        return "saturated"
    # nothing but zeros after the reader replaced missing samples
    if (v == 0).mean() > 0.5:
        return "flat"
    return ""


def derive_limb_leads(signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Missing limb leads computed from two present ones (Einthoven/Goldberger); returns only the new leads."""
    i, ii, iii = signals.get("I"), signals.get("II"), signals.get("III")
    if i is None and ii is not None and iii is not None:
        i = ii - iii
    if ii is None and i is not None and iii is not None:
        ii = i + iii
    if i is None or ii is None:
        return {}
    full = {"I": i, "II": ii, "III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
    return {k: v.astype(np.float32) for k, v in full.items() if k not in signals}


def gate_record(record: EcgRecord, source: str = "record") -> RecordGate:
    """Check sampling rate (BadInput when implausible), shape, duration and leads of `record`."""
    fs = check_fs(record.fs, source)
    x = np.asarray(record.signals)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise BadInput(f"{source}: ECG signals must be (leads, samples) with data; got shape {x.shape}")
    if len(record.leads) != x.shape[0]:
        raise BadInput(f"{source}: {x.shape[0]} signal rows but {len(record.leads)} lead names")
    dur = x.shape[1] / fs
    reasons: list[str] = []
    bad: dict[str, str] = {}
    good: dict[str, np.ndarray] = {}
    for name, row in zip(record.leads, x, strict=True):
        why = lead_quality(row, fs)
        if why:
            bad[name] = why
        elif name not in good:
            good[name] = row
    if bad:
        reasons.append("unusable lead" + ("s " if len(bad) > 1 else " ")
                       + ", ".join(f"{k} ({v})" for k, v in bad.items()))
    if not good:
        msg = f"{source}: no usable lead ({', '.join(f'{k} {v}' for k, v in bad.items())})"
        return RecordGate("refused", (), reasons, msg, (), (), bad, dur)
    if dur < MIN_RHYTHM_S:
        msg = f"{source}: only {dur:.1f} s recorded; at least {MIN_RHYTHM_S:g} s are needed to read an ECG"
        return RecordGate("refused", (), reasons + [msg.split(': ', 1)[1]], msg, tuple(good), (), bad, dur)
    std = {k: v for k, v in good.items() if k in STANDARD_LEADS}
    derived = derive_limb_leads({k: v for k, v in std.items() if k in LIMB})
    usable = tuple(k for k in STANDARD_LEADS if k in std or k in derived)
    if len(usable) >= MIN_MI_LEADS:
        scope, assessed = "12-lead", CLASSES
        missing = [k for k in STANDARD_LEADS if k not in usable]
        if missing:
            reasons.append(f"leads {', '.join(missing)} missing: MI in their territory may be missed")
        if derived:
            reasons.append(f"leads {', '.join(derived)} derived from the other limb leads")
    else:
        scope, assessed = "rhythm-only", RHYTHM_CLASSES
        n = len(good)
        reasons.append(f"MI cannot be assessed from {n} lead{'s' if n != 1 else ''}"
                       f" ({', '.join(good)}); rhythm only")
    if dur < MIN_READ_S:
        reasons.append(f"only {dur:.1f} s recorded (a reading wants ≥ {MIN_READ_S:g} s): rhythm from few beats")
    return RecordGate(scope, assessed, reasons, "", usable if scope == "12-lead" else tuple(good), tuple(derived),
                      bad, dur)


def gated_signals(record: EcgRecord, gate: RecordGate) -> tuple[np.ndarray, tuple[str, ...]]:
    """The usable leads of `record` as (leads, samples) float32 with NaN replaced, derived limb leads filled in,
    in standard order for a 12-lead scope."""
    rows = {}
    for name, row in zip(record.leads, np.asarray(record.signals), strict=True):
        if name in gate.usable and name not in rows:
            rows[name] = np.nan_to_num(np.asarray(row, np.float32))
    if gate.derived:
        rows.update(derive_limb_leads({k: v for k, v in rows.items() if k in LIMB}))
    names = tuple(k for k in gate.usable if k in rows)
    return np.stack([rows[k] for k in names]).astype(np.float32), names
