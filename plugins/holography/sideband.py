"""Which off-axis sideband is the object wave (the sign of z): from a z-stack with known stage steps (slope of the
sweep's z against the stage's), or from the specimen itself (a phase object optically denser than its medium)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import BadInput

from .cardtable import model_optics
from .optics import Optics

if TYPE_CHECKING:
    from .reconstruct import Reconstructor

log = logging.getLogger(__name__)

# specimen_sideband: an object pixel scatters more than this many robust sigmas of the background field; a frame
# with fewer object pixels than MIN_OBJECT_SHARE, or whose phase is not at least PHASE_OVER_AMPLITUDE × its
# log-amplitude contrast (an amplitude object), cannot tell. Chosen on the training simulator's kinds only.
OBJECT_SIGMAS = 4.0
MIN_OBJECT_SHARE = 0.003
PHASE_OVER_AMPLITUDE = 1.0
MIN_PHASE_RAD = 0.05
MIN_SCATTER = 0.05  # |u/ū − 1| of an object pixel at least this (fainter specimens cannot tell)
# sign_from_stack: |Pearson r| of the sweep's z against the stage's below this = the stack cannot tell.
MIN_SLOPE_CORRELATION = 0.6


@dataclass(frozen=True)
class SignFit:
    """Outcome of sign_from_stack: the sideband ("+1"/"-1"), the slope and correlation of the sweep's z (found with
    the "+1" sideband) against the stage's, and those z."""

    sideband: str
    slope: float
    r: float
    z_found_m: np.ndarray

    @property
    def note(self) -> str:
        side = "as stated by default" if self.sideband == "+1" else "the mirrored sideband (z flipped)"
        return (f"sideband {self.sideband} ({side}): the sweep's z against the stage's has slope {self.slope:+.2f}, "
                f"r {self.r:+.2f} over {len(self.z_found_m)} frames")


def _plus(optics: Optics) -> Optics:
    """The optics with the "+1" sideband and a z range symmetric about 0 covering the original (so a mirrored
    microscope's focus, at −z, is inside it)."""
    m = max(abs(v) for v in optics.z_range_m)
    return optics.with_(sideband="+1", z_range_m=(-m, m))


def _reconstructor(optics: Optics, background: np.ndarray | None) -> Reconstructor:
    """A Reconstructor with the "+1" sideband (_plus) and, without a background hologram, the background field
    estimated from each frame (as autofocus and reconstruction use it)."""
    from .background import self_background
    from .reconstruct import Reconstructor

    return Reconstructor(_plus(optics), background, self_background=self_background(optics, background))


def sign_from_stack(frames: Sequence[np.ndarray] | np.ndarray, z_stage_m: Sequence[float] | np.ndarray,
                    optics: Optics, background: np.ndarray | None = None) -> SignFit:
    """The sideband of a microscope from a z-stack with known stage positions: the classical sweep finds every
    frame's z with the "+1" sideband over a symmetric range, and the sign of the least-squares slope of those z
    against the stage's says whether "+1" is right (slope > 0) or mirrored (< 0); an unknown focus offset of the
    stage does not matter. BadInput when the stack cannot tell (fewer than 3 distinct stage positions, in-line
    holograms, or |r| < MIN_SLOPE_CORRELATION)."""
    from .autofocus import Autofocus

    z = np.asarray(z_stage_m, np.float64).reshape(-1)
    if optics.mode != "offaxis":
        raise BadInput("the sideband (sign of z) applies to off-axis holograms only")
    if len(z) != len(frames):
        raise BadInput(f"{len(z)} stage positions for {len(frames)} frames")
    if len(np.unique(np.round(z, 9))) < 3:
        raise BadInput("the sign of z needs at least 3 frames at different stage positions")
    af = Autofocus(_reconstructor(optics, background), None, "sweep")  # the app's sweep (polished)
    found = np.array([af.predict(f).z_m for f in frames])
    zc, fc = z - z.mean(), found - found.mean()
    den = float(np.sqrt(np.sum(zc * zc) * np.sum(fc * fc)))
    r = float(np.sum(zc * fc) / den) if den > 0 else 0.0
    slope = float(np.sum(zc * fc) / np.sum(zc * zc))
    if abs(r) < MIN_SLOPE_CORRELATION:
        raise BadInput(f"cannot tell the sign of z from this stack: the sweep's z follow the stage's with r {r:+.2f} "
                       f"(< {MIN_SLOPE_CORRELATION}); is the specimen in the z range?")
    return SignFit("+1" if slope > 0 else "-1", slope, r, found)


@dataclass(frozen=True)
class SidebandGuess:
    """specimen_sideband's verdict: "+1"/"-1", or None = cannot tell; the median phase (rad) and log-amplitude
    contrast of the object pixels at the found focus, their share of the frame, and why."""

    sideband: str | None
    phase_rad: float
    amplitude: float
    object_share: float
    reason: str


def _phase_stats(u: np.ndarray) -> tuple[float, float, float]:
    """(median phase, median |log amplitude|, share) of the object pixels of a refocused field, relative to its
    background (the complex median: objects cover less than half of the frame)."""
    u = np.asarray(u, np.complex64)
    m = max(4, min(u.shape) // 16)
    u = u[m:-m, m:-m]  # edge ringing of the circular propagation
    bg = complex(float(np.median(u.real)), float(np.median(u.imag)))
    if abs(bg) < 1e-12:
        return 0.0, 0.0, 0.0
    v = u / np.complex64(bg)
    d = np.abs(v - 1)
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d)))) + 1e-6
    obj = d > max(float(np.median(d)) + OBJECT_SIGMAS * sigma, MIN_SCATTER)
    share = float(obj.mean())
    if not obj.any():
        return 0.0, 0.0, share
    ph = np.angle(v[obj])
    la = np.abs(np.log(np.maximum(np.abs(v[obj]), 1e-6)))
    return float(np.median(ph)), float(np.median(la)), share


def specimen_sideband(frame: np.ndarray, optics: Optics, background: np.ndarray | None = None,
                      z_m: float | None = None) -> SidebandGuess:
    """Guess the sideband from one off-axis frame of a specimen: refocus with the "+1" sideband at the sweep's z
    (polished on the full-band field when there is a background; or at the given z) and read the sign of the
    object's phase. A phase object optically denser than its medium (cells, beads) delays the wave: its phase is
    positive in the true object wave and negative in the conjugate, whose focus the sweep finds at −z. Pure
    amplitude objects and faint specimens cannot tell: None with the reason (specimens less dense than the
    medium, e.g. bubbles or etched targets of the other polarity, give the wrong verdict)."""
    from .autofocus import Autofocus

    if optics.mode != "offaxis":
        return SidebandGuess(None, 0.0, 0.0, 0.0, "in-line holograms have no sideband")
    rec = _reconstructor(optics, background)
    z = Autofocus(rec, None, "sweep").predict(frame).z_m if z_m is None else float(z_m)
    u = rec.reconstruct(frame, z, phase=False, keep_field=True).field
    ph, amp, share = _phase_stats(u)
    if share < MIN_OBJECT_SHARE:
        return SidebandGuess(None, ph, amp, share, "no specimen in view, or one too faint")
    if abs(ph) < max(MIN_PHASE_RAD, PHASE_OVER_AMPLITUDE * amp):
        return SidebandGuess(None, ph, amp, share,
                             f"an amplitude object (phase {ph:+.2f} rad vs log-amplitude {amp:.2f}): no phase sign")
    side = "+1" if ph > 0 else "-1"
    return SidebandGuess(side, ph, amp, share, f"phase object, phase {ph:+.2f} rad at the focus of the +1 sideband")


def stream_sideband(frames: Sequence[np.ndarray], optics: Optics, background: np.ndarray | None = None,
                    max_frames: int = 3) -> tuple[str | None, str]:
    """Majority verdict of specimen_sideband over up to `max_frames` frames: (sideband or None, one-line reason)."""
    guesses = [specimen_sideband(f, optics, background) for f in list(frames)[:max_frames]]
    votes = [g.sideband for g in guesses if g.sideband is not None]
    if not votes:
        return None, f"cannot tell the sideband from the specimen ({guesses[0].reason if guesses else 'no frames'})"
    plus, minus = votes.count("+1"), votes.count("-1")
    if plus == minus:
        return None, f"cannot tell the sideband from the specimen ({plus} frame(s) say +1, {minus} say -1)"
    side = "+1" if plus > minus else "-1"
    return side, (f"sideband {side} from the specimen's phase sign ({max(plus, minus)} of {len(guesses)} frame(s); "
                  "assumes a specimen optically denser than its medium)")


def with_model_sideband(optics: Optics, card: object | None) -> tuple[Optics, str]:
    """(optics, where its sideband comes from). A stream that states "+1"/"-1" keeps it; otherwise a calibrated
    model card's sideband (measured on its microscope) applies, also over "auto"; otherwise the stream's "auto"
    (for resolve_auto) or None (behaves as "+1")."""
    if optics.mode != "offaxis":
        return optics, "in-line: no sideband"
    if optics.sideband in ("+1", "-1"):
        return optics, f"sideband {optics.sideband} (stated by the stream's optics)"
    card_side = None
    if card is not None:
        card_side = model_optics(card).get("sideband")
    if card_side in ("+1", "-1", 1, -1):
        o = optics.with_(sideband=str(card_side) if str(card_side).startswith(("+", "-")) else f"{int(card_side):+d}")
        return o, f"sideband {o.sideband} (from model {getattr(card, 'id', '?')}, calibrated on this microscope)"
    if optics.sideband == "auto":
        return optics, "sideband auto (to be decided from the specimen)"
    return optics, "sideband +1 (default: not stated by the stream; flip it if z comes out mirrored)"


def resolve_auto(optics: Optics, frames: Sequence[np.ndarray], background: np.ndarray | None = None
                 ) -> tuple[Optics, str]:
    """Optics whose "auto" sideband is decided from the first frames (stream_sideband; "+1" when it cannot tell);
    other optics unchanged. Returns (optics, one-line note)."""
    if optics.mode != "offaxis" or optics.sideband != "auto":
        return optics, ""
    side, why = stream_sideband(frames, optics, background)
    if side is None:
        return optics.with_(sideband="+1"), f"{why}; using +1 — calibrate on a z-stack or flip z if it is mirrored"
    return optics.with_(sideband=side), why
