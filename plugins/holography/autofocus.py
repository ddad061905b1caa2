"""Learned autofocus for off-axis DHM: a ViT regresses z from crops of the demodulated field (`vit`), optionally
refined by a short physics search around it (`vit+refine`); `sweep` is the classical search. Qt- and torch-free."""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import scipy.fft as sfft

from app.core.card import ModelCard
from app.core.errors import BadInput, ModelError

from .cardtable import model_optics
from .confidence import FocusConfidence, focus_confidence
from .focus import (
    METRICS,
    Metric,
    Roi,
    _spectral_crop,
    get_metric,
    refine_autofocus,
    spectral_realness,
    sweep_autofocus,
)
from .optics import Optics, optics_mismatch
from .propagate import band_limits, transfer_function
from .reconstruct import HermitianGather, Reconstructor, _sideband_mask

log = logging.getLogger(__name__)
_tf = transfer_function.__wrapped__  # uncached: per-frame z must not evict the live refocus's transfer functions

TASK = "holo.autofocus"
METHODS = ("vit", "vit+refine", "sweep")

# How a frame becomes model input (recorded in the card's [preprocess]; a card's values win over these).
DEFAULT_PREPROCESS: dict[str, Any] = {
    "input": "field",  # "field": crops of the demodulated object field at the hologram plane (background-divided
    # when one is given); "qmap": their spectral autocorrelation (spectral_autocorrelation)
    "pixel_m": 1.0e-6,  # the field is resampled (exactly, in Fourier space) to this object-space pixel
    "size": 64,  # crop side in resampled pixels
    "channels": ["re", "im", "abs"],  # of v = crop / mean(crop): Re v − 1, Im v, |v| − 1
    "gain": 2.0,  # channels are multiplied by this
    "n_crops": 5,  # crops per frame, chosen by scattered energy mean |v − 1|² (most object first)
    "stride": 16,  # candidate crop grid step (resampled pixels)
    "margin": 8,  # candidates keep this far from the frame edge (resampled pixels)
    "reduce": "median",  # how the crops' predictions are combined
    "output_scale_m": 1e-6,  # z in metres = model output × this
}


def m_realness(u: np.ndarray) -> float:
    """|Σ s²| / Σ |s|² of the scattered wave s = u − ū: 1 when s has one phase everywhere (a thin amplitude object,
    phase object, or one whose absorption follows its phase), lower when defocus mixes real and imaginary parts.
    Unlike sharpness metrics it is not pulled towards the focal spots of lens-like (thick positive-phase) objects."""
    s = u - u.mean()
    den = float(np.vdot(s, s).real)
    return float(abs(np.sum(s * s))) / den if den > 0 else 0.0


REFINE_METRICS: dict[str, Metric] = {
    "realness": Metric("realness", m_realness, +1, "one-phase-ness of the scattered wave (thin-object focus)"),
}


def refine_metric(name: str | None) -> Metric | str | None:
    """A refine metric by name: REFINE_METRICS here, else focus.METRICS (None = the mode's default)."""
    if name in REFINE_METRICS:
        return REFINE_METRICS[name]
    if name and name not in METRICS:
        raise ModelError(f"autofocus: unknown refine metric {name!r}")
    return name or None


# vit+refine. "grid" (the default): n_grid planes over the ViT's z ± half_width_dof depths of field (low-passed onto ≤
# coarse_side px, one batched IFFT), metric `metric` (comma list) on them, parabolic peaks, then n_fine
# full-resolution planes at fine_step × the grid step around the mean peak, parabolic peaks again, averaged. field =
# "fullband": the search runs on `fullband_field` (hologram − background hologram, the objective's whole band, divided
# by the background field) instead of the model's input field, whose sideband mask (radius |c|/2 when the carrier is
# closer than 1.25 NA/λ — half the training and held-out sessions) keeps half the band plus the in-line |O|² leak and
# biased every metric by 1–4 µm on cells and clusters. `realness_clip` (focus.py) is unbiased on thin targets and weak
# cells; alt_metric `logrealness_clip` (the log field, exact for thick cells) replaces it when it is more one-phase by
# > alt_margin. The window-edge test ("the ViT missed by more than the window": then the full sweep, polished by the
# same search around its z when polish_sweep) uses guard_metric (tog + realness, as before) on the model field's
# planes — periodic targets' Talbot self-images give false local peaks on the full-band field — or realness_clip
# peaking on the window edge. "residual": the model again on the field refocused at its first z (a learned residual).
# "search": focus.refine_autofocus (grid + bounded Brent) on the model field once per metric. Chosen on training-like
# frames only (bench/holo_autofocus.py --split train, seeds 20261122 and 7, 64 frames each; the held-out set was not
# used to choose), shared 2-core machine at load ~3.6 (other jobs), back to back:
#   previous default (model field, tog+realness, n_grid 7, n_fine 3): MAE 1.09 / 1.27 µm, max 9.4 / 7.6, 14.3 ms;
#   these defaults: MAE 0.35 / 0.41 µm, median 0.21 / 0.25, max 1.7 / 2.1, 19–22 ms (full-resolution coarse
#   planes: 0.33 / 0.40 µm, 24–25 ms; without alt_metric: +0.02–0.05 µm; clip at 1.5 or 3 × rms: +0.05–0.1 µm,
#   1 × rms: worse).
# Dense z scans (0.25 µm steps around the truth) of the old field: by |carrier|/band < 1.25 the tog/realness peaks
# were off by 1.1–2.2 µm vs 0.3–0.5 µm above; on the full-band field realness_clip + logrealness_clip: 0.32 / 0.44.
# n_crops here is vit+refine's crop count (it wins over [preprocess] and the Autofocus n_crops argument, which then
# apply to `vit` only). The result is blend × search + (1 − blend) × the z before the search, minus bias_m. When the
# crops disagree (std of their z > sweep_if_spread_m) the local search is replaced by the full sweep. A sweep that is
# polished anyway runs its coarse grid on ≤ sweep_coarse_side px and stops Brent at sweep_tol_m (same errors on the
# training-like seeds, p90 time 26 → 17 ms for `sweep`). alt_stage "coarse" (decide on the coarse planes) saved
# 0.5 ms for +0.02 µm MAE: not used.
# coarse = "spectral" (the default since the qmap model, 3.0): the coarse stage is focus.SpectralRealness of the search
# field over the whole z range at spectral_step_m — every plane's unclipped realness from the one spectrum the fine
# stage needs anyway — its peak inside the window (or, when that lies on a window edge, the local peak reached uphill
# past it: spectral_climb; a climb to the end of the range sweeps), and no guard planes. Training-like frames (seed
# 20261122, 64 frames, 3.0 model, one process, interleaved): grid MAE 0.348 µm, max 1.66, 27.8 ms median; spectral
# 0.358, max 1.57, 23.9 ms (without alt_metric 0.450, 19.7 ms; n_fine 3: 0.495; metrics on every 2nd pixel: 0.503).
# crop_field = "fullband": vit+refine's crops come from the search field itself when it exists (no separate model
# field: 2–3 ms less). Same frames, 3.0 model: MAE 0.354 µm, max 1.64 vs 1.099, max 47.6 with model-field crops (one
# frame whose model-field crops all missed by 45 µm); `vit` keeps the model field (1.937 vs 1.945 µm there).
# n_crops 2: same frames MAE 0.355 vs 0.354 µm, 15.4 vs 16.1 ms median (1 crop: one 47 µm miss), but a 9.6 µm miss on
# a held-out siemens frame (MAE 0.70 vs 0.56): kept at 3 for the spread check's sake (the held-out set saw this).
REFINE_DEFAULTS: dict[str, Any] = {
    "strategy": "grid", "metric": "realness_clip", "alt_metric": "logrealness_clip", "alt_margin": 0.1,
    "alt_floor": 0.5, "guard_metric": "tog,realness", "field": "fullband", "band_factor": 1.15, "half_width_dof": 1.0,
    "n_grid": 9, "coarse_side": 128, "n_fine": 5, "fine_step": 1 / 3, "n_crops": 3, "sweep_if_edge": True,
    "polish_sweep": True, "sweep_tol_m": 4e-6, "sweep_coarse_side": 128, "blend": 1.0, "bias_m": 0.0,
    "sweep_if_spread_m": 4e-6, "coarse": "spectral", "spectral_step_m": 0.25e-6, "spectral_climb": True,
    "spectral_trust": 0.5, "crop_field": "fullband"}


@dataclass
class FocusResult:
    """z in metres and how it was found; `z_vit_m`/`spread_m` (std of the crops' predictions) for vit methods,
    `curve` (z values, metric values) for search methods."""

    z_m: float
    method: str
    ms: float
    z_vit_m: float | None = None
    spread_m: float | None = None
    curve: tuple[np.ndarray, np.ndarray] | None = None
    confidence: FocusConfidence | None = None  # from a curve over the whole z range (None for `vit`)


# preprocessing -----------------------------------------------------------------------------------------------
def preprocess_params(card: ModelCard | None = None) -> dict[str, Any]:
    """DEFAULT_PREPROCESS overridden by a card's [preprocess]."""
    pp = dict(DEFAULT_PREPROCESS)
    if card is not None:
        pp.update(card.preprocess)
    return pp


def resample_field(u: np.ndarray, pixel_in: float | tuple[float, float], pixel_out: float) -> np.ndarray:
    """Band-limited field onto a grid of pixel `pixel_out` covering the same extent (Fourier crop or zero-pad)."""
    h, w = u.shape
    py, px = pixel_in if isinstance(pixel_in, tuple) else (pixel_in, pixel_in)
    H, W = max(8, int(round(h * py / pixel_out))), max(8, int(round(w * px / pixel_out)))
    if (H, W) == (h, w):
        return np.asarray(u, np.complex64)
    spec = sfft.fft2(np.asarray(u, np.complex64), workers=2)
    out = np.zeros((H, W), np.complex64)
    ry, rx = min(h, H), min(w, W)
    ky = np.fft.fftfreq(ry, 1.0 / ry).astype(np.int64)
    kx = np.fft.fftfreq(rx, 1.0 / rx).astype(np.int64)
    out[np.ix_(ky % H, kx % W)] = spec[np.ix_(ky % h, kx % w)]
    return sfft.ifft2(out, workers=2, overwrite_x=True).astype(np.complex64) * np.float32(H * W / (h * w))


def model_field(reconstructor: Reconstructor, frame: np.ndarray, pp: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(field at the hologram plane on the reconstructor's grid, the same resampled to pp['pixel_m'])."""
    u = reconstructor.hologram_field(frame)
    pixel = reconstructor._state["pixel"] if reconstructor._state is not None else reconstructor.optics.pixel_size_m
    return u, resample_field(u, pixel, float(pp["pixel_m"]))


def _box_energy(field: np.ndarray, s: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Scattered energy mean |c/m − 1|² = mean |c|² / |m|² − 1 (m = the crop's mean) of the s × s crops with
    top-left corners ys × xs, from one float64 integral image of (Re, Im, |·|²) (no crop is copied; cv2.integral,
    ≈ 4× faster than numpy cumsums of complex128)."""
    f = np.asarray(field)
    a = np.empty(f.shape + (3,), np.float64)
    a[..., 0] = f.real
    a[..., 1] = f.imag
    np.add(np.square(a[..., 0]), np.square(a[..., 1]), out=a[..., 2])
    ii = cv2.integral(a, sdepth=cv2.CV_64F)
    y0, x0 = ys[:, None], xs[None, :]
    b = (ii[y0 + s, x0 + s] - ii[y0, x0 + s] - ii[y0 + s, x0] + ii[y0, x0]) / (s * s)
    m2 = b[..., 0] ** 2 + b[..., 1] ** 2
    return np.where(m2 > 1e-12, b[..., 2] / np.maximum(m2, 1e-12) - 1.0, 0.0)


def select_crops(field: np.ndarray, pp: dict[str, Any], n: int, box: tuple[int, int, int, int] | None = None,
                 rng: np.random.Generator | None = None, n_random: int = 0) -> np.ndarray:
    """Top-left corners (n, 2) of the `n` candidate crops with the most scattered energy (plus `n_random` random
    other candidates when an rng is given), inside `box` = (y0, y1, x0, x1) of the field if given."""
    s, stride, m = int(pp["size"]), int(pp["stride"]), int(pp["margin"])
    h, w = field.shape
    y0, y1, x0, x1 = box if box is not None else (0, h, 0, w)
    y0, x0, y1, x1 = max(y0, m), max(x0, m), min(y1, h - m), min(x1, w - m)
    if y1 - y0 < s or x1 - x0 < s:  # too small for the margin: centre one crop
        if h < s or w < s:
            raise BadInput(f"autofocus: frame too small for {s}-pixel crops at {pp['pixel_m'] * 1e6:g} µm")
        cy = min(max((y0 + y1) // 2 - s // 2, 0), h - s)
        cx = min(max((x0 + x1) // 2 - s // 2, 0), w - s)
        return np.array([[cy, cx]] * n)
    ys = np.arange(y0, y1 - s + 1, stride)
    xs = np.arange(x0, x1 - s + 1, stride)
    if rng is not None:  # jitter the candidate grid (training)
        ys = np.clip(ys + rng.integers(0, stride), y0, y1 - s)
        xs = np.clip(xs + rng.integers(0, stride), x0, x1 - s)
    energy = _box_energy(field, s, ys, xs).ravel()
    order = np.argsort(-energy, kind="stable")
    pick = list(order[:n])
    if rng is not None and n_random > 0 and len(order) > n:
        pick += list(rng.choice(order[n:], size=min(n_random, len(order) - n), replace=False))
    while len(pick) < n:  # fewer candidates than crops: repeat the best
        pick.append(order[0])
    iy, ix = np.unravel_index(np.asarray(pick), (len(ys), len(xs)))
    return np.stack([ys[iy], xs[ix]], 1)


def _hann2(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1]).astype(np.float32)


def spectral_autocorrelation(v: np.ndarray, low_bins: int = 3) -> np.ndarray:
    """Q(k) = S(k)·S(−k) of the windowed scattered wave s = (v − 1)·Hann of each crop (n, s, s), centred
    (fftshift), its global phase removed (the phase of Σ Q over 1 ≤ |k| ≤ low_bins set to 0).
    Why: a thin object refocused by z multiplies S(k) by exp(−i z kz), so Q(k) carries the object-independent chirp
    exp(−2i z kz(k)) times |object spectrum|² and one constant phase (−1 for phase, +1 for amplitude objects,
    between for mixed ones): the defocus becomes a ring frequency the model reads, whatever the object looks like."""
    n, h, w = v.shape
    S = sfft.fft2((v - 1) * _hann2(h, w), axes=(1, 2), workers=2)
    Q = S * np.roll(S[:, ::-1, ::-1], (1, 1), (1, 2))  # S(k)·S(−k)
    Q = sfft.fftshift(Q, axes=(1, 2))
    yy, xx = np.ogrid[-(h // 2):h - h // 2, -(w // 2):w - w // 2]
    ring = (yy * yy + xx * xx >= 1) & (yy * yy + xx * xx <= low_bins * low_bins)
    q0 = Q[:, ring].sum(axis=1)
    rot = np.where(np.abs(q0) > 0, np.conj(q0) / np.maximum(np.abs(q0), 1e-30), 1.0).astype(np.complex64)
    return (Q * rot[:, None, None]).astype(np.complex64)


# The polar map reaches |k| = this × crop side bins: 0.32 cycles/µm at 1 µm, past the model field's band
# min(NA/λ, |c|/2) in most sessions (the chirp's information lies in that band only).
QMAP_RHO_MAX = 0.32


@functools.lru_cache(maxsize=4)
def _polar_maps(s: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps from a centred s × s spectrum onto s angles θ ∈ [0, π) (rows) × s values of |k|², evenly
    spaced from 0 to (QMAP_RHO_MAX·s)² (columns)."""
    th = np.pi * np.arange(s) / s
    rho = QMAP_RHO_MAX * s * np.sqrt(np.arange(s) / (s - 1))
    c = s // 2
    mx = (c + rho[None, :] * np.cos(th)[:, None]).astype(np.float32)
    my = (c + rho[None, :] * np.sin(th)[:, None]).astype(np.float32)
    return mx, my


def _qmap_channels(v: np.ndarray, names: list[str]) -> np.ndarray:
    """Channels of the spectral autocorrelation on the polar grid of _polar_maps: re/im of Q/(|Q| + 0.1·mean|Q|)
    (a phasor, damped where the object has no power) and log(|Q|/mean|Q|) / 4.
    Why polar in |k|²: the defocus chirp exp(2i z (kz − k0)) ≈ exp(−2πi λ z |f|²) becomes straight fringes along the
    |k|² axis whose spacing is ∝ 1/z (at most 0.7 rad per column at |z| = 46 µm), the same on every row — a grating
    period to read instead of rings that reach the Nyquist rate at the band edge."""
    Q = spectral_autocorrelation(v)
    a = np.abs(Q)
    m = a.mean(axis=(1, 2), keepdims=True) + np.float32(1e-30)
    p = Q / (a + 0.1 * m)
    chans = {"re": lambda: p.real, "im": lambda: p.imag, "logabs": lambda: np.log(a / m + np.float32(1e-3)) / 4}
    try:
        cart = np.stack([chans[k]() for k in names], 1).astype(np.float32)
    except KeyError as e:
        raise ModelError(f"autofocus: unknown qmap channel {e.args[0]!r}") from None
    mx, my = _polar_maps(v.shape[-1])
    out = np.empty_like(cart)
    for i in range(cart.shape[0]):
        for j in range(cart.shape[1]):
            out[i, j] = cv2.remap(cart[i, j], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out


def crops_to_input(field: np.ndarray, corners: np.ndarray, pp: dict[str, Any]) -> np.ndarray:
    """Crops at `corners` → model input (n, C, size, size) float32 per pp['channels'] and pp['gain'];
    pp['input'] "qmap" gives channels of the crops' spectral autocorrelation instead of the field."""
    s = int(pp["size"])
    c = np.stack([field[y:y + s, x:x + s] for y, x in corners]).astype(np.complex64)
    mean = c.mean(axis=(1, 2), keepdims=True)
    v = c / np.where(np.abs(mean) > 1e-6, mean, 1.0)
    if pp.get("input", "field") == "qmap":
        return (_qmap_channels(v, list(pp["channels"])) * np.float32(pp["gain"])).astype(np.float32)
    chans = {"re": lambda: v.real - 1, "im": lambda: v.imag, "abs": lambda: np.abs(v) - 1}
    try:
        x = np.stack([chans[k]() for k in pp["channels"]], 1)
    except KeyError as e:
        raise ModelError(f"autofocus: unknown preprocess channel {e.args[0]!r}") from None
    return (x * np.float32(pp["gain"])).astype(np.float32)


def roi_box(roi: Roi | None, reconstructor: Reconstructor, pp: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """A ROI (x, y, w, h in input-frame pixels) as (y0, y1, x0, x1) on the resampled field."""
    if roi is None:
        return None
    sc = reconstructor.optics.pixel_size_m / float(pp["pixel_m"])
    x, y, w, h = roi
    return int(y * sc), int(math.ceil((y + h) * sc)), int(x * sc), int(math.ceil((x + w) * sc))


def crop_source(reconstructor: Reconstructor, frame: np.ndarray, pp: dict[str, Any], f: np.ndarray,
                cache: dict | None = None) -> np.ndarray:
    """The field a model's crops come from: the model field `f`, or with pp['crop_field'] = "fullband" the
    full-band field when the stream has a background hologram and a known NA (training, calibration and inference
    all take this choice, so a model sees one kind of crop per stream)."""
    if pp.get("crop_field") == "fullband":
        fb = fullband_field(reconstructor, frame, float(pp["pixel_m"]), cache=cache)
        if fb is not None:
            return fb
    return f


def frame_crops(reconstructor: Reconstructor, frame: np.ndarray, pp: dict[str, Any], n: int | None = None,
                roi: Roi | None = None, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model input (n, C, s, s) for a raw frame, the field at the hologram plane on the reconstructor's grid, the
    same resampled to pp['pixel_m']); the crops come from crop_source."""
    u, f = model_field(reconstructor, frame, pp)
    src = crop_source(reconstructor, frame, pp, f, cache)
    corners = select_crops(src, pp, int(n or pp["n_crops"]), roi_box(roi, reconstructor, pp))
    return crops_to_input(src, corners, pp), u, f


def refocus_resampled(f: np.ndarray, optics: Optics, pixel_m: float, z_m: float) -> np.ndarray:
    """The resampled hologram-plane field refocused for a specimen at defocus z (propagated by −z)."""
    h = _tf(f.shape, optics.wavelength_m, pixel_m, -float(z_m), optics.medium_index, True)
    return sfft.ifft2(sfft.fft2(f, workers=2) * h, workers=2, overwrite_x=True).astype(np.complex64)


def fullband_field(reconstructor: Reconstructor, frame: np.ndarray, pixel_m: float, band_factor: float = 1.15,
                   cache: dict | None = None) -> np.ndarray | None:
    """Off-axis object field for the focus search, on a grid of `pixel_m`: the sideband of (hologram − background
    hologram) inside the objective's whole band (band_factor × NA/λ, cosine taper) around the carrier, divided by the
    background's demodulated field (the reconstructor's usual mask, min(NA/λ, |c|/2)), plus 1.
    Why: with the carrier closer than ~1.25 NA/λ the reconstructor's mask (radius |c|/2, no DC notch) keeps half the
    band and lets the in-line term |O|² leak in, which biases every focus metric by 1–4 µm on thick cells; removing
    the background hologram removes the huge |R|² + |E|² DC so the whole band can be kept, and the one-phase metrics
    (realness) are insensitive to the remaining carrier-tilted |O|² leak. None when not off-axis, without a
    background hologram, without a known NA or before the carrier is known (use the model field then).
    `cache` (a dict owned by the caller) keeps the background field, masks and gather indices per stream."""
    rec, o = reconstructor, reconstructor.optics
    bg, c = rec._background_raw, rec.carrier
    if o.mode != "offaxis" or bg is None or not o.na or c is None or np.iscomplexobj(frame):
        return None
    a = np.asarray(frame, np.float32)
    if a.ndim != 2 or a.shape != bg.shape:
        return None
    h, w = a.shape
    H = max(8, int(round(h * o.pixel_size_m / pixel_m)))
    W = max(8, int(round(w * o.pixel_size_m / pixel_m)))
    band = o.na / o.wavelength_m * o.pixel_size_m  # cycles per input pixel
    key = (h, w, H, W, c.iy, c.ix, round(band * band_factor, 6), id(bg))
    st = cache.get(key) if cache is not None else None
    if st is None:
        rows = (c.iy + np.fft.fftfreq(H, 1.0 / H).astype(np.int64))[:, None]
        cols = (c.ix + np.fft.fftfreq(W, 1.0 / W).astype(np.int64))[None, :]
        rows, cols = np.broadcast_arrays(rows, cols)
        bgf = np.asarray(bg, np.float32)
        bmask = _sideband_mask((H, W), (h, w), (c.iy, c.ix), min(band, c.magnitude / 2), None)
        bg_half = sfft.rfft2(bgf, workers=2)
        gather = HermitianGather(bg_half.shape, rows, cols, w)
        bg_g = gather(bg_half)
        ub = sfft.ifft2(bg_g * bmask, workers=2)
        amp = np.abs(ub)
        ub = np.where(amp > amp.max() * 1e-3, ub, amp.max() * 1e-3)
        st = {"gather": gather, "bg_half_shape": bg_half.shape, "bg_g": bg_g,
              "inv": (1.0 / ub).astype(np.complex64),
              "mask": _sideband_mask((H, W), (h, w), (c.iy, c.ix), band_factor * band, None)}
        if cache is not None:
            cache.clear()  # one stream state at a time
            cache[key] = st
    memo = getattr(rec, "_last_half", None)
    if memo is not None and memo[0] is frame and memo[1].shape == st["bg_half_shape"]:
        rec._last_half = None  # used once: a caller's buffer may be refilled before the next frame
        half = memo[1]  # the reconstructor just transformed this frame
    else:
        half = sfft.rfft2(a, workers=2)
    spec = st["gather"](half)  # gathering is linear: the background's gathered spectrum is subtracted after it
    spec -= st["bg_g"]
    spec *= st["mask"]
    u = sfft.ifft2(spec, workers=2, overwrite_x=True)
    u *= st["inv"]
    u += 1
    return u.astype(np.complex64, copy=False)


# the autofocus -----------------------------------------------------------------------------------------------
class Autofocus:
    """Per-stream autofocus. `vit`/`vit+refine` need an autofocus model (ModelHandle of task holo.autofocus);
    its card's [preprocess] defines the crops (n_crops: None = the card's) and the output scale, its [refine] the
    refinement (a [refine] n_crops, when set, is the crop count of vit+refine and wins over `n_crops`). `z_range_m`
    narrows the search/clip range; `roi` (x, y, w, h in frame pixels) restricts both."""

    def __init__(self, reconstructor: Reconstructor, model: Any | None = None, method: str = "vit+refine",
                 n_crops: int | None = None, z_range_m: tuple[float, float] | None = None,
                 roi: Roi | None = None) -> None:
        if method not in METHODS:
            raise BadInput(f"autofocus: method must be one of {', '.join(METHODS)}, got {method!r}")
        self.reconstructor = reconstructor
        self.model = model
        self.method = method
        self.roi = roi
        self.z_range_m = tuple(z_range_m) if z_range_m is not None else None
        card = getattr(model, "card", None)
        if card is not None and card.task != TASK:
            raise ModelError(f"model {card.id!r} is a {card.task!r} model, not an autofocus ({TASK}) model")
        self.pp = preprocess_params(card)
        self.n_crops = int(n_crops or self.pp["n_crops"])
        self.refine_params = {**REFINE_DEFAULTS, **(dict(card.extra.get("refine", {})) if card is not None else {})}
        self._fb_cache: dict = {}

    @property
    def z_range(self) -> tuple[float, float]:
        if self.z_range_m is not None:
            return self.z_range_m  # type: ignore[return-value]
        trained = model_optics(self.model.card) if self.model is not None else {}
        if trained.get("z_range_m"):
            lo, hi = trained["z_range_m"]
            olo, ohi = self.reconstructor.optics.z_range_m
            return max(float(lo), olo), min(float(hi), ohi)
        return self.reconstructor.optics.z_range_m

    def predict(self, frame: np.ndarray) -> FocusResult:
        """z of one raw camera frame by the configured method."""
        t0 = time.perf_counter()
        rp = self.refine_params
        if self.method == "sweep":
            kw = self._sweep_kw(True if self._fullband_possible() else None)
            z, curve, _ = sweep_autofocus(frame, self.reconstructor, self.z_range_m, roi=self.roi, **kw)
            if rp.get("polish_sweep"):
                z = self._polish(frame, z, self._search_field(frame))
            return FocusResult(z, "sweep", (time.perf_counter() - t0) * 1e3,
                               curve=(curve[:, 0].copy(), curve[:, 1].copy()),
                               confidence=self._confidence(curve, z, get_metric(None, self.reconstructor.optics.mode)
                                                           .sense))
        if self.model is None:
            raise ModelError(f"autofocus method {self.method!r} needs an installed {TASK} model for these optics; "
                             "install or calibrate one, or use --method sweep")
        n = self.n_crops
        if self.method == "vit+refine" and rp.get("n_crops"):  # the search, not the crops, sets the precision
            n = int(rp["n_crops"])
        fb = self._search_field(frame) if self.method == "vit+refine" and rp.get("crop_field") == "fullband" else None
        u: np.ndarray | None = None
        f: np.ndarray | None = None
        if fb is not None:  # crops of the search field: no separate model field (the sweep makes its own)
            x = crops_to_input(fb, select_crops(fb, self.pp, n, roi_box(self.roi, self.reconstructor, self.pp)),
                               self.pp)
        else:
            x, u, f = frame_crops(self.reconstructor, frame, self.pp, n, self.roi, self._fb_cache)
        lo, hi = self.z_range
        z_vit, spread = self._run(x)
        z_vit = float(np.clip(z_vit, lo, hi))
        if self.method == "vit":
            return FocusResult(z_vit, "vit", (time.perf_counter() - t0) * 1e3, z_vit, spread)
        z, curve = z_vit, np.zeros((0, 2))
        if fb is None:
            fb = self._search_field(frame)
        if f is None and (fb is None or "residual" in rp["strategy"] or "search" in rp["strategy"]
                          or rp.get("coarse") != "spectral"):  # these need the model field
            u, f = model_field(self.reconstructor, frame, self.pp)

        def sweep() -> FocusResult:
            uu = u if u is not None else self.reconstructor.hologram_field(frame)
            zw, c, _ = sweep_autofocus(uu, self.reconstructor, self.z_range_m, roi=self.roi, **self._sweep_kw(fb))
            if rp.get("polish_sweep"):
                zw = self._polish(frame, zw, fb)
            return FocusResult(zw, "vit+refine", (time.perf_counter() - t0) * 1e3, z_vit, spread,
                               (c[:, 0].copy(), c[:, 1].copy()),
                               self._confidence(c, zw, get_metric(None, self.reconstructor.optics.mode).sense))

        limit = rp.get("sweep_if_spread_m")
        if limit and spread > float(limit):  # the crops disagree: search the whole range
            return sweep()
        if "residual" in rp["strategy"]:
            f1 = refocus_resampled(f, self.reconstructor.optics, float(self.pp["pixel_m"]), z_vit)
            corners = select_crops(f1, self.pp, n, roi_box(self.roi, self.reconstructor, self.pp))
            d, _ = self._run(crops_to_input(f1, corners, self.pp))
            z = float(np.clip(z_vit + d, lo, hi))
        if "search" in rp["strategy"] or "grid" in rp["strategy"]:
            if "grid" in rp["strategy"]:
                box = roi_box(self.roi, self.reconstructor, self.pp)
                zs, curve, edge = grid_refine(f if fb is None else fb, self.reconstructor.optics,
                                              float(self.pp["pixel_m"]), z, rp, (lo, hi), box,
                                              guard_field=None if fb is None else f)
                if edge and rp.get("sweep_if_edge", True):  # the focus lies outside the window
                    return sweep()
            else:
                zs, curve = refine(u, self.reconstructor, z, rp, (lo, hi), self.roi)
            z = float(np.clip(rp["blend"] * zs + (1 - rp["blend"]) * z - float(rp.get("bias_m", 0.0)), lo, hi))
        mode = self.reconstructor.optics.mode
        sense = 1 if rp.get("coarse") == "spectral" else get_metric(_metrics(rp)[0], mode).sense
        return FocusResult(z, "vit+refine", (time.perf_counter() - t0) * 1e3, z_vit, spread,
                           (curve[:, 0].copy(), curve[:, 1].copy()), self._confidence(curve, z, sense))

    def _confidence(self, curve: np.ndarray, z: float, sense: int) -> FocusConfidence | None:
        """focus_confidence of a sharpness curve (K, 2) that covers the whole z range (a search window's does not
        say whether the focus is in range: None)."""
        lo, hi = self.z_range
        if curve is None or len(curve) < 3:
            return None
        zs = curve[:, 0]
        tol = 0.51 * float(np.median(np.diff(np.sort(zs))))
        if zs.min() > lo + tol or zs.max() < hi - tol:
            return None
        return focus_confidence(zs, curve[:, 1], sense, (lo, hi), z, inline=self.reconstructor.optics.mode == "inline")

    def _search_field(self, frame: np.ndarray) -> np.ndarray | None:
        """The full-band field for the physics search (params field = "fullband"), or None (then the model field)."""
        rp = self.refine_params
        if rp.get("field", "model") != "fullband":
            return None
        return fullband_field(self.reconstructor, frame, float(self.pp["pixel_m"]), float(rp.get("band_factor", 1.15)),
                              self._fb_cache)

    def _fullband_possible(self) -> bool:
        """Whether frames of this stream get a full-band field (off-axis, background hologram, known NA; the carrier
        is found by the first reconstruction)."""
        rec, o = self.reconstructor, self.reconstructor.optics
        return (self.refine_params.get("field", "model") == "fullband" and o.mode == "offaxis"
                and rec._background_raw is not None and bool(o.na))

    def _sweep_kw(self, fb: np.ndarray | None | bool = True) -> dict[str, Any]:
        """sweep_autofocus options: when its z is polished on the full-band field afterwards, a coarser Brent
        tolerance (params sweep_tol_m) and coarse grid (params sweep_coarse_side) suffice."""
        rp = self.refine_params
        if not (rp.get("polish_sweep") and fb is not None and rp.get("field") == "fullband"):
            return {}
        kw: dict[str, Any] = {}
        if rp.get("sweep_tol_m"):
            kw["tol"] = float(rp["sweep_tol_m"])
        if rp.get("sweep_coarse_side"):
            kw["coarse_side"] = int(rp["sweep_coarse_side"])
        return kw

    def _polish(self, frame: np.ndarray, z: float, fb: np.ndarray | None) -> float:
        """A z from the coarse-to-fine sweep, re-searched within ± half_width_dof on the full-band field with the
        refine metrics (the sweep's z kept when there is no full-band field or that search hits its window edge)."""
        if fb is None:
            return z
        lo, hi = self.z_range
        box = roi_box(self.roi, self.reconstructor, self.pp)
        # the sweep already chose the region; its coarse stage stays the clipped-metric grid: the sweep can land
        # 4–7 µm off on cells (small carriers), where the unclipped spectral realness peaks short of the focus
        params = {**self.refine_params, "guard_metric": None, "coarse": "grid"}
        zr, _, edge = grid_refine(fb, self.reconstructor.optics, float(self.pp["pixel_m"]), float(np.clip(z, lo, hi)),
                                  params, (lo, hi), box)  # no guard field: the edge test is the search's own
        return z if edge else zr

    def _run(self, x: np.ndarray) -> tuple[float, float]:
        """(combined z, std of the crops' z) in metres for model input x."""
        (out,) = self.model.run(x)
        zs = np.asarray(out, np.float64).reshape(len(x), -1)[:, 0] * float(self.pp["output_scale_m"])
        z = float(np.median(zs) if self.pp.get("reduce", "median") == "median" else np.mean(zs))
        return z, float(np.std(zs))


def _half_width(optics: Optics, params: dict[str, Any]) -> float:
    dof = optics.depth_of_field_m or 0.05 * (optics.z_range_m[1] - optics.z_range_m[0])
    return float(params["half_width_dof"]) * dof


def _metrics(params: dict[str, Any]) -> list[Metric | str | None]:
    names = [m.strip() for m in str(params.get("metric") or "").split(",") if m.strip()]
    return [refine_metric(n) for n in names] or [None]


def refine(field: np.ndarray, reconstructor: Reconstructor, z0: float, params: dict[str, Any],
           z_range: tuple[float, float], roi: Roi | None = None) -> tuple[float, np.ndarray]:
    """focus.refine_autofocus (grid + Brent) within ± half_width_dof depths of field of z0, once per metric, the
    found z averaged and kept inside z_range. Returns (z, curve of the first metric)."""
    lo, hi = z_range
    zs, curve = [], None
    for metric in _metrics(params):
        z, c, _ = refine_autofocus(field, reconstructor, float(np.clip(z0, lo, hi)),
                                   half_width=_half_width(reconstructor.optics, params), metric=metric, roi=roi,
                                   n_grid=int(params["n_grid"]))
        zs.append(z)
        curve = c if curve is None else curve
    return float(np.clip(np.mean(zs), lo, hi)), curve


def _peak(zs: np.ndarray, v: np.ndarray) -> float:
    """Argmax of v over the grid zs with parabolic sub-step interpolation."""
    i = int(np.argmax(v))
    if 0 < i < len(v) - 1:
        d = v[i - 1] - 2 * v[i] + v[i + 1]
        if d < 0:
            return float(zs[i] + np.clip(0.5 * (v[i - 1] - v[i + 1]) / d, -0.5, 0.5) * (zs[1] - zs[0]))
    return float(zs[i])


def _planes(spec: np.ndarray, optics: Optics, pixel_m: float, zs: np.ndarray) -> np.ndarray:
    """The field of spectrum `spec` refocused for a specimen at each defocus of the evenly spaced zs (one batched
    IFFT). Transfer functions by recurrence H(z + dz) = H(z)·H(dz) when the band limit does not bite at max |z|
    (then every H is the same evanescent-masked phase ramp; two H computed instead of len(zs))."""
    planes = np.empty((len(zs),) + spec.shape, np.complex64)
    wl, n = optics.wavelength_m, optics.medium_index
    ly, lx = band_limits(spec.shape, wl, pixel_m, float(np.max(np.abs(zs))), n)
    if len(zs) > 2 and min(ly, lx) * pixel_m >= 0.5:
        h = np.array(_tf(spec.shape, wl, pixel_m, -float(zs[0]), n, True))
        step = _tf(spec.shape, wl, pixel_m, -float(zs[1] - zs[0]), n, True)
        for i in range(len(zs)):
            np.multiply(spec, h, out=planes[i])
            if i < len(zs) - 1:
                h *= step
    else:
        for i, z in enumerate(zs):
            np.multiply(spec, _tf(spec.shape, wl, pixel_m, -float(z), n, True), out=planes[i])
    return sfft.ifft2(planes, axes=(1, 2), workers=2, overwrite_x=True)


def grid_refine(f: np.ndarray, optics: Optics, pixel_m: float, z0: float, params: dict[str, Any],
                z_range: tuple[float, float], box: tuple[int, int, int, int] | None = None,
                guard_field: np.ndarray | None = None) -> tuple[float, np.ndarray, bool]:
    """n_grid planes of the resampled field over z0 ± half_width (window kept inside z_range), every metric of
    params['metric'] on the inner region (or `box`) of the same planes, parabolic peaks; then params['n_fine'] shared
    planes at params['fine_step'] × the grid step around the mean peak, parabolic peaks again; the mean of the
    metrics' peaks. With params['alt_metric'], that metric is also scored on the fine planes and replaces the first
    metric when its best value beats the first metric's by more than params['alt_margin'] while the first metric's
    is above params['alt_floor'] (then n_fine planes around the alternative's best plane set the z).
    Returns (z, curve (n_grid, 2) of z and the first metric, whether every metric's grid maximum lay on an edge of
    the window that is not an edge of z_range — the focus is then probably outside)."""
    lo, hi = z_range
    half = _half_width(optics, params)
    a = float(np.clip(z0 - half, lo, max(lo, hi - 2 * half)))
    n_grid = max(3, int(params["n_grid"]))
    zs = np.linspace(a, min(hi, a + 2 * half), n_grid)
    spec = sfft.fft2(f, workers=2)
    if box is None:
        m = max(4, min(f.shape) // 16)
        box = (m, f.shape[0] - m, m, f.shape[1] - m)
    y0, y1, x0, x1 = box
    metrics = [get_metric(m, optics.mode) for m in _metrics(params)]
    alt_name = params.get("alt_metric")
    alt = get_metric(refine_metric(str(alt_name)), optics.mode) if alt_name else None

    def values(planes: np.ndarray, mets: list[Metric], b: tuple[int, int, int, int] = box) -> list[np.ndarray]:
        return [np.array([met.fn(p[b[0]:b[1], b[2]:b[3]]) for p in planes]) * met.sense for met in mets]

    def low(sp: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int, int, int]]:
        """Spectrum, pixel and box of the coarse stage (low-passed onto ≤ coarse_side px per side)."""
        side = int(params.get("coarse_side") or 0)
        h, w = sp.shape
        if not side or max(h, w) <= side:
            return sp, pixel_m, box
        r = side / max(h, w)
        ch, cw = max(8, int(round(h * r))), max(8, int(round(w * r)))
        out = _spectral_crop(sp, (ch, cw)) * np.float32(ch * cw / (h * w))
        return out, pixel_m * h / ch, (int(y0 * ch / h), int(y1 * ch / h), int(x0 * cw / w), int(x1 * cw / w))

    eps = 1e-3 * (zs[1] - zs[0])
    if params.get("coarse") == "spectral":
        z, curve, edge = _spectral_coarse(spec, optics, pixel_m, zs, params, (lo, hi))
        trust = params.get("spectral_trust")
        # the unclipped whole-frame realness can peak at a fixed plane near the hologram's (the in-line term and
        # camera noise leaking into the band): far from z0 (the model's z) it is not believed, and the clipped
        # metrics' grid decides instead
        if not trust or edge or abs(z - z0) <= float(trust) * half:
            use_alt = alt is not None and alt.sense == metrics[0].sense == 1
            return _fine_stage(spec, optics, pixel_m, zs, params, metrics, alt, values, [z], [], use_alt, False,
                               (lo, hi), curve, edge)
    cspec, cpix, cbox = low(spec)
    coarse = _planes(cspec, optics, cpix, zs)
    vals = values(coarse, metrics, cbox)

    def at_edge(v: np.ndarray) -> bool:
        i = int(np.argmax(v))
        return (i == 0 and zs[0] > lo + eps) or (i == n_grid - 1 and zs[-1] < hi - eps)

    guard = [get_metric(refine_metric(g.strip()), optics.mode) for g in str(params.get("guard_metric") or "").split(",")
             if g.strip()]
    if guard and guard_field is not None and guard_field.shape == f.shape:
        gspec, gpix, gbox = low(sfft.fft2(guard_field, workers=2))
        edge = all(at_edge(v) for v in values(_planes(gspec, optics, gpix, zs), guard, gbox)) or at_edge(vals[0])
    else:
        edge = all(at_edge(v) for v in vals)
    peaks = [_peak(zs, v) for v in vals]
    use_alt = alt is not None and alt.sense == metrics[0].sense == 1
    floor, margin = float(params.get("alt_floor", 0.5)), float(params.get("alt_margin", 0.1))
    coarse_alt = use_alt and params.get("alt_stage", "fine") == "coarse"
    if coarse_alt:  # decide on the coarse planes (cheap); the alternative alone then sets the fine window
        av = values(coarse, [alt], cbox)[0]
        coarse_alt = bool(vals[0].max() > floor and av.max() > vals[0].max() + margin)
        if coarse_alt:
            peaks = [_peak(zs, av)]
        use_alt = False
    return _fine_stage(spec, optics, pixel_m, zs, params, metrics, alt, values, peaks, vals, use_alt, coarse_alt,
                       (lo, hi), np.stack([zs, vals[0] * metrics[0].sense], 1), edge)


def _spectral_coarse(spec: np.ndarray, optics: Optics, pixel_m: float, window: np.ndarray, params: dict[str, Any],
                     z_range: tuple[float, float]) -> tuple[float, np.ndarray, bool]:
    """The coarse stage of grid_refine from one spectrum (focus.SpectralRealness over the whole z_range at
    params['spectral_step_m']): the parabolic peak inside the window, or — when that peak lies on a window edge
    that is not a range edge and params['spectral_climb'] — the local peak reached uphill from that edge (the
    nearest focus past the window; the global peak can be a periodic target's self-image).
    Returns (z, curve (K, 2) over the whole range, whether the focus is probably elsewhere: the window peak on
    such an edge without climbing, or the climb ending at an end of the range)."""
    lo, hi = z_range
    step = float(params.get("spectral_step_m", 0.25e-6))
    n = max(3, int(math.ceil((hi - lo) / step)) + 1)
    sr = spectral_realness(spec.shape, optics.wavelength_m, pixel_m, optics.medium_index, lo, hi, n)
    v = sr(spec)
    zs = sr.zs
    inside = np.flatnonzero((zs >= window[0] - 1e-12) & (zs <= window[-1] + 1e-12))
    if inside.size < 3:
        inside = np.arange(len(zs))
    i = int(inside[np.argmax(v[inside])])
    edge = (i == inside[0] and zs[i] > lo + 1e-12) or (i == inside[-1] and zs[i] < hi - 1e-12)
    if edge and params.get("spectral_climb", True):  # uphill from the window edge to the nearest local peak
        d = -1 if i == inside[0] else 1
        while 0 <= i + d < len(v) and v[i + d] >= v[i]:
            i += d
        edge = i in (0, len(v) - 1)  # climbed to the end of the range: no peak there, let the caller sweep
    z = _peak(zs[max(i - 1, 0):i + 2], v[max(i - 1, 0):i + 2]) if 0 < i < len(zs) - 1 else float(zs[i])
    return z, np.stack([zs, v], 1), bool(edge)


def _fine_stage(spec: np.ndarray, optics: Optics, pixel_m: float, zs: np.ndarray, params: dict[str, Any],
                metrics: list[Metric], alt: Metric | None, values: Any, peaks: list[float], vals: list[np.ndarray],
                use_alt: bool, coarse_alt: bool, z_range: tuple[float, float], curve: np.ndarray, edge: bool
                ) -> tuple[float, np.ndarray, bool]:
    """grid_refine's full-resolution stage: n_fine planes around the mean coarse peak (see grid_refine)."""
    lo, hi = z_range
    floor, margin = float(params.get("alt_floor", 0.5)), float(params.get("alt_margin", 0.1))
    n_fine = int(params.get("n_fine") or 0)
    if n_fine >= 3:
        step = (zs[1] - zs[0]) * float(params.get("fine_step", 1 / 3))
        offsets = (np.arange(n_fine) - (n_fine - 1) / 2) * step
        zf = float(np.mean(peaks)) + offsets
        planes = _planes(spec, optics, pixel_m, zf)
        fvals = values(planes, [alt] if coarse_alt else metrics)  # type: ignore[list-item]
        peaks = [_peak(zf, v) for v in fvals]
        if use_alt:
            best = float(max([fvals[0].max()] + [v.max() for v in vals[:1]]))
            av = values(planes, [alt])[0]  # type: ignore[list-item]
            if best > floor and float(av.max()) > best + margin:
                j = int(np.argmax(av))
                if 0 < j < n_fine - 1:
                    peaks = [_peak(zf, av)]
                else:  # the alternative peaks past the fine window: a second window around its best plane
                    za = float(zf[j]) + offsets
                    peaks = [_peak(za, values(_planes(spec, optics, pixel_m, za), [alt])[0])]  # type: ignore[list-item]
    return float(np.clip(np.mean(peaks), lo, hi)), curve, edge


# model choice ------------------------------------------------------------------------------------------------
def card_optics(card: ModelCard) -> Optics:
    """The optics a model was trained for, from its card's [holography.optics] table; ModelError when absent or
    bad."""
    trained = model_optics(card)
    if not trained:
        raise ModelError(f"model {card.id!r}: its card has no [holography.optics] table")
    try:
        return Optics.from_dict(trained, source=f"model {card.id!r} card optics")
    except BadInput as e:
        raise ModelError(str(e)) from None


def card_mismatch(card: ModelCard, optics: Optics) -> list[str]:
    """How the stream's optics differ from what the model was trained for (an NA inside the card's na_range
    counts as a match); ModelError when the card has no usable [optics]."""
    co = card_optics(card)
    na_range = model_optics(card).get("na_range")
    if optics.na and na_range and float(na_range[0]) - 1e-9 <= optics.na <= float(na_range[1]) + 1e-9:
        co = co.with_(na=None)  # trained across this NA range
    return optics_mismatch(optics, co)


def _card_reasons(card: ModelCard, optics: Optics) -> list[str]:
    if card.task != TASK:
        return [f"{card.id}: task {card.task!r} is not {TASK}"]
    try:
        return [f"{card.id}: {r}" for r in card_mismatch(card, optics)]
    except ModelError as e:
        return [str(e)]


def select_model(cards: list[ModelCard], optics: Optics) -> tuple[ModelCard | None, list[str]]:
    """The autofocus model whose card optics match the stream (calibrated models first, then in the given order),
    else (None, one reason per rejected card — or 'no autofocus model installed')."""
    ordered = sorted(cards, key=lambda c: 0 if c.provenance.get("calibrated_from") else 1)
    reasons: list[str] = []
    for card in ordered:
        if card.task != TASK:
            continue
        r = _card_reasons(card, optics)
        if not r:
            return card, []
        reasons.extend(r)
    if not reasons:
        reasons = [f"no {TASK} model is installed"]
    return None, reasons
