"""How far to trust a focus search: from its sharpness curve over the z range, the peak's prominence and width,
whether the best z sits on an edge of the range, and a "no focus in range" verdict with a one-line reason."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

# Chosen on the training simulator (dhm-offaxis-10x, 256², 8 frames with the focus inside ±46 µm, 8 outside at
# 60–100 µm; sweep and vit+refine): outside, 14 of 16 results "no focus in range" (edge), 2 "uncertain"; inside,
# 3 of 16 right answers "uncertain" (a cluster, a target), none "no focus in range". The in-line rule holds for
# any real field: its propagation by ±z gives conjugate fields, so every in-line sharpness curve is symmetric
# about the hologram plane.
LOW_CONFIDENCE = 0.35  # below this the result says the focus is uncertain
PEAK_FLOOR = 0.1  # competing peaks count from this prominence (share of the curve's span)


@dataclass(frozen=True)
class FocusConfidence:
    """`confidence` 0–1 (prominence × narrowness of the peak; 0 when no focus is in range), `prominence` how far
    the peak rises above its flanks and every competing peak, as a share of the curve's span (_dominance),
    `width` the share of the z range above half its height, `at_edge` whether the best plane is the first or last
    of the range, `in_range` False when no focus lies in the searched range, `note` one line."""

    confidence: float
    prominence: float
    width: float
    at_edge: bool
    in_range: bool
    note: str

    def to_dict(self) -> dict[str, object]:
        return {"confidence": round(self.confidence, 3), "prominence": round(self.prominence, 3),
                "width": round(self.width, 3), "at_edge": self.at_edge, "in_range": self.in_range,
                "note": self.note}


def _dominance(s: np.ndarray, i: int, span: float) -> float:
    """How far the maximum s[i] rises above everything competing with it, as a share of the curve's span: above
    the higher of the lowest points on its two sides (its topographic prominence; one side at an end of the curve)
    and above every other peak of the curve (ends included) whose own prominence is at least PEAK_FLOOR × span —
    a second focus, a periodic specimen's self-image or noise make it small."""
    sides = [float(s[:i].min())] if i > 0 else []
    sides += [float(s[i + 1:].min())] if i < len(s) - 1 else []
    base = max(sides) if sides else float(s[i])
    low = float(s.min()) - span
    peaks, _ = find_peaks(np.concatenate([[low], s, [low]]), prominence=PEAK_FLOOR * span)
    others = [float(s[p - 1]) for p in peaks if p - 1 != i]
    return float(s[i] - max([base] + others)) / span


def focus_confidence(zs: np.ndarray, values: np.ndarray, sense: int = 1, z_range: tuple[float, float] | None = None,
                     z_m: float | None = None, inline: bool = False) -> FocusConfidence:
    """Confidence of a focus found on the sharpness curve `values` (sense +1: larger is sharper) at `zs`, searched
    over `z_range` (default: the curve's span); `z_m` the reported z (default: the curve's best plane). No focus in
    range: a flat curve, the best plane on an edge of the range, or (`inline`) on the hologram plane z = 0 inside
    the range — where every in-line curve has its mirror-symmetric extremum, focus or not. Otherwise confidence =
    prominence × min(1, 2 × (1 − width)), "uncertain" below LOW_CONFIDENCE."""
    zs = np.asarray(zs, np.float64).reshape(-1)
    s = np.asarray(values, np.float64).reshape(-1) * (1 if sense >= 0 else -1)
    ok = np.isfinite(zs) & np.isfinite(s)
    zs, s = zs[ok], s[ok]
    if len(zs) < 3:
        return FocusConfidence(0.0, 0.0, 1.0, False, True, "too few planes to judge the focus")
    order = np.argsort(zs)
    zs, s = zs[order], s[order]
    lo, hi = z_range if z_range is not None else (float(zs[0]), float(zs[-1]))
    span = float(s.max() - s.min())
    i = int(np.argmax(s))
    step = float(np.median(np.diff(zs))) if len(zs) > 1 else 0.0
    z_best = float(zs[i]) if z_m is None else float(z_m)
    at_edge = bool(i in (0, len(s) - 1) or z_best <= lo + 0.5 * step or z_best >= hi - 0.5 * step)
    if span <= 1e-12 * max(1.0, abs(float(s.max()))):
        return FocusConfidence(0.0, 0.0, 1.0, at_edge, False, "the sharpness curve is flat: no focus in range")
    prom = _dominance(s, i, span)
    width = float(np.mean(s >= float(s.min()) + 0.5 * span))
    conf = float(np.clip(prom * min(1.0, 2 * (1 - width)), 0, 1))
    rng = f"{lo * 1e6:g}…{hi * 1e6:g} µm" if max(abs(lo), abs(hi)) < 1e-3 else f"{lo * 1e3:g}…{hi * 1e3:g} mm"
    if at_edge:
        return FocusConfidence(0.0, prom, width, True, False,
                               f"no focus in range: the sharpest plane is at the edge of the z range {rng}; the focus "
                               "is probably outside it — widen the z range")
    if inline and lo < 0 < hi and abs(z_best) <= step:
        return FocusConfidence(0.0, prom, width, False, False,
                               "no focus in range: the sharpest plane is the hologram plane (z = 0), where every "
                               f"in-line sharpness curve peaks by symmetry; unless the camera image is itself in "
                               f"focus, the object lies outside the z range {rng} — widen the z range")
    if conf < LOW_CONFIDENCE:
        return FocusConfidence(conf, prom, width, False, True,
                               f"uncertain focus (confidence {conf:.2f}: a weak or broad sharpness peak)")
    return FocusConfidence(conf, prom, width, False, True, f"clear focus (confidence {conf:.2f})")
