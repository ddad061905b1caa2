"""Background (reference × illumination) field estimated without a recorded background hologram, from the frame's
own demodulated field: a smooth fit with the specimen masked out."""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

# Chosen on the training simulator's frames without a background, one microscope per frame (24 frames at 256²,
# sweep MAE 1.13 / 1.14 / 1.14 µm with σ 0.125 / 0.25 / 0.5 of the side, 1.59 µm without the fit); the independent
# simulator was not used to choose. A stream's running median of fields instead of a per-frame fit was worse on the
# training simulator's streams (3 microscopes × 4 frames: sweep MAE 17.5 vs 0.93 µm; a few frames' median keeps the
# specimens).
SMOOTH_FRACTION = 0.125  # Gaussian σ of the fit as a fraction of the field's larger side
GRID_SIDE = 64  # the fit runs on the field area-averaged onto at most this many pixels per side
ITERATIONS = 3  # fit, mask the specimen, fit again
OBJECT_SIGMAS = 3.0  # a pixel is specimen when |u/B − 1| exceeds the median by this many robust sigmas
MIN_OBJECT_SCATTER = 0.03  # ... and at least this
NO_BACKGROUND_NOTE = ("No background hologram: the background field is estimated from each frame (and the stream's "
                      "carrier is found on the first frame), so expect z errors of a few µm, more on dense or "
                      "large phase specimens; record one without the specimen for full accuracy.")
SELF_BACKGROUND = "frame"  # off-axis streams without a background hologram: Reconstructor self_background


def self_background(optics: Any, background: Any) -> str | None:
    """The Reconstructor's `self_background` for a stream: SELF_BACKGROUND (the field fitted to each frame) for
    off-axis holograms without a recorded background, else None. Every path that reconstructs a user's frames
    (autofocus, reconstruct, calibration, the sideband's determination, the live view) uses it alike."""
    return SELF_BACKGROUND if getattr(optics, "mode", None) == "offaxis" and background is None else None


def _resize(a: np.ndarray, shape: tuple[int, int], interp: int) -> np.ndarray:
    h, w = shape
    return cv2.resize(a, (w, h), interpolation=interp)


def _complex_resize(u: np.ndarray, shape: tuple[int, int], interp: int) -> np.ndarray:
    re = _resize(np.ascontiguousarray(u.real, np.float32), shape, interp)
    im = _resize(np.ascontiguousarray(u.imag, np.float32), shape, interp)
    return (re + 1j * im).astype(np.complex64)


def _axes(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in units of the frame's half size (−1…1), column y and row x: the same physical
    positions whatever the grid's sampling."""
    h, w = shape
    return ((np.arange(h) + 0.5) * 2 / h - 1)[:, None], ((np.arange(w) + 0.5) * 2 / w - 1)[None, :]


def _quadratic(coef: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """c0 + c1 y + c2 x + c3 y² + c4 xy + c5 x² on a grid of `shape` (float32)."""
    y, x = _axes(shape)
    c = [float(v) for v in coef]
    return ((c[0] + c[1] * y + c[3] * y * y) + x * (c[2] + c[4] * y + c[5] * x)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _design(shape: tuple[int, int]) -> np.ndarray:
    """(h·w, 6) terms 1, y, x, y², xy, x² of _quadratic."""
    y, x = np.broadcast_arrays(*_axes(shape))
    y, x = y.ravel(), x.ravel()
    return np.stack([np.ones_like(x), y, x, y * y, x * y, x * x], 1)


def _fit_phase(phi: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Coefficients of the weighted least-squares quadratic fit of an unwrapped phase (the reference beam's tilt
    residual and curvature), by the 6 × 6 normal equations."""
    t = _design(phi.shape)
    tw = t * weight.reshape(-1, 1).astype(np.float64)
    m = t.T @ tw
    try:
        return np.linalg.solve(m + 1e-9 * np.trace(m) * np.eye(6), tw.T @ phi.ravel().astype(np.float64))
    except np.linalg.LinAlgError:
        return np.zeros(6)


def _fit_small(u: np.ndarray, smooth_fraction: float, iterations: int) -> np.ndarray:
    """The background fit of frame_background on the field area-averaged onto ≤ GRID_SIDE pixels per side."""
    from .unwrap import unwrap_phase

    h, w = u.shape
    r = min(1.0, GRID_SIDE / max(h, w))
    gs = (max(8, int(round(h * r))), max(8, int(round(w * r))))
    small = _complex_resize(u, gs, cv2.INTER_AREA) if gs != (h, w) else u.copy()
    sigma = max(1.0, smooth_fraction * max(gs))
    weight = np.ones(gs, np.float32)
    phi = unwrap_phase(np.angle(small), congruent=False)
    mag = np.abs(small)

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    b = small
    for _ in range(max(1, iterations)):
        ramp = np.exp(1j * _quadratic(_fit_phase(phi, weight * mag), gs)).astype(np.complex64)
        flat = small * np.conj(ramp)
        den = blur(weight) + np.float32(1e-6)
        b = (blur(weight * flat.real) / den + 1j * (blur(weight * flat.imag) / den)).astype(np.complex64) * ramp
        amp = np.abs(b)
        floor = np.float32(1e-3 * max(float(amp.max()), 1e-30))
        b = np.where(amp > floor, b, floor).astype(np.complex64)
        d = np.abs(small / b - 1)
        med = float(np.median(d))
        mad = 1.4826 * float(np.median(np.abs(d - med))) + 1e-6
        obj = d > max(med + OBJECT_SIGMAS * mad, MIN_OBJECT_SCATTER)
        obj = cv2.dilate(obj.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if obj.mean() > 0.9:  # the whole field scatters: keep the plain smooth fit
            break
        weight = (~obj).astype(np.float32)
    return b


def frame_background(u: np.ndarray, smooth_fraction: float | None = None, iterations: int | None = None,
                     inverse: bool = False) -> np.ndarray:
    """Smooth complex background B of a demodulated field u (same shape, complex64; 1 / B with `inverse`): a
    quadratic phase (tilt residual and curvature of the reference beam, fitted to the unwrapped phase) times a
    normalised Gaussian convolution of what remains (the illumination envelope and slow ripples); the specimen's
    pixels (|u/B − 1| far above the frame's typical scatter) are dropped from both fits, refitted `iterations`
    times. u / B then has a flat, unit background with the specimen's structure kept. The fit runs on a grid of
    ≤ GRID_SIDE pixels per side and is interpolated onto u's (B is smooth there: < 0.2 rad per fit pixel)."""
    u = np.asarray(u, np.complex64)
    b = _fit_small(u, SMOOTH_FRACTION if smooth_fraction is None else smooth_fraction,
                   ITERATIONS if iterations is None else iterations)
    if inverse:
        b = (1 / b).astype(np.complex64)
    return _complex_resize(b, u.shape, cv2.INTER_LINEAR) if b.shape != u.shape else b
