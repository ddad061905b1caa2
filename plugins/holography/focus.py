"""Focus metrics (amplitude or complex field) and the classical autofocus: a coarse grid over the whole z range, then
bounded Brent inside the best cell (`sweep_autofocus`), or a search near a given z (`refine_autofocus`)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sfft
from scipy.optimize import minimize_scalar

from app.core.errors import BadInput

from .propagate import Pixel, _pad, _pxy, band_limits, pad_shape, transfer_function
from .reconstruct import Reconstructor

_tf = transfer_function.__wrapped__  # uncached: sweeps must not evict the live refocus's transfer functions


def _amp(u: np.ndarray) -> np.ndarray:
    return np.abs(u) if np.iscomplexobj(u) else np.asarray(u, np.float32)


def _grad2(a: np.ndarray) -> np.ndarray:
    """|∇a|² by central differences (complex-aware), on the interior."""
    gy = a[2:, 1:-1] - a[:-2, 1:-1]
    gx = a[1:-1, 2:] - a[1:-1, :-2]
    if np.iscomplexobj(a):
        return (gy.real ** 2 + gy.imag ** 2 + gx.real ** 2 + gx.imag ** 2).astype(np.float32)
    return (gy * gy + gx * gx).astype(np.float32)


def m_normvar(u: np.ndarray) -> float:
    a = _amp(u)
    m = float(a.mean())
    return float(a.var()) / max(m, 1e-12)


def m_tamura(u: np.ndarray) -> float:
    a = _amp(u)
    return math.sqrt(float(a.std()) / max(float(a.mean()), 1e-12))


def m_brenner(u: np.ndarray) -> float:
    a = _amp(u)
    return float(np.mean((a[:, 2:] - a[:, :-2]) ** 2) + np.mean((a[2:] - a[:-2]) ** 2))


def m_tenengrad(u: np.ndarray) -> float:
    a = _amp(u).astype(np.float32)
    gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def m_darkfocus(u: np.ndarray) -> float:
    """DarkFocus (Trusiak et al. 2020): variance of the squared gradient of the dark-field amplitude."""
    a = _amp(u).astype(np.float32)
    dark = a - cv2.GaussianBlur(a, (0, 0), max(2.0, min(a.shape) / 16))
    return float(np.var(_grad2(dark)))


def m_dubois(u: np.ndarray) -> float:
    """Dubois integrated amplitude ΣA / N (extremal at focus: minimum for amplitude, maximum for phase objects)."""
    return float(_amp(u).mean())


def m_spectral(u: np.ndarray) -> float:
    """Mean log spectrum of the amplitude in a mid band (0.05–0.5 of Nyquist), cf. nrefocus 'spectrum'."""
    a = _amp(u)
    f = np.abs(sfft.rfft2(a - a.mean(), workers=2))
    fy = np.fft.fftfreq(a.shape[0])[:, None]
    fx = np.fft.rfftfreq(a.shape[1])[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2)
    band = (r > 0.025) & (r < 0.25)
    return float(np.mean(np.log1p(f[band] / a.size)))


def m_tog(u: np.ndarray) -> float:
    """Tamura coefficient of the complex-field gradient magnitude (Memmolo et al. 2011): maximal at focus for
    amplitude and phase objects alike."""
    g = np.sqrt(_grad2(u))
    return math.sqrt(float(g.std()) / max(float(g.mean()), 1e-12))


def _gini(values: np.ndarray) -> float:
    """Gini index of non-negative values: 0 when all are equal, towards 1 when few carry the sum (sparse)."""
    g = np.sort(values.ravel())
    n = g.size
    s = float(g.sum())
    if s <= 0:
        return 0.0
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(1 - 2 * np.sum((g / s) * (n - k + 0.5) / n))


def m_gini(u: np.ndarray) -> float:
    """Gini index of the complex-field gradient magnitude (edge sparsity; maximal at focus)."""
    return _gini(np.sqrt(_grad2(u)))


def m_l1(u: np.ndarray) -> float:
    """Mean |u − ū|: L1 norm of the scattered wave, minimal at focus (sparsest) for amplitude and phase objects."""
    if not np.iscomplexobj(u):
        u = np.asarray(u, np.float32)
    return float(np.mean(np.abs(u - u.mean())))


def m_gini_scatter(u: np.ndarray) -> float:
    """Gini index of |u − ū| (sparsity of the scattered wave; maximal at focus)."""
    return _gini(np.abs(u - u.mean()))


def _clip_rms(s: np.ndarray, k: float) -> np.ndarray:
    """s with every |s| above k × rms(s) scaled down to it (the brightest few pixels — focal spots of lens-like
    cells, the strongest edges — no longer decide the metric)."""
    a2 = s.real * s.real + s.imag * s.imag
    t2 = np.float32(k * k * float(a2.mean()))
    big = a2 > t2
    if big.any():
        s = s.copy()
        s[big] *= np.sqrt(t2 / a2[big])
    return s


def _one_phase(s: np.ndarray) -> float:
    """|Σ s²| / Σ |s|²: 1 when s has one phase everywhere (up to sign)."""
    den = float(np.vdot(s, s).real)
    return float(abs(np.sum(s * s, dtype=np.complex128))) / den if den > 0 else 0.0


def _one_phase_clipped(sr: np.ndarray, si: np.ndarray, k: float) -> float:
    """_one_phase(_clip_rms(sr + i·si, k)) from the real and imaginary parts (contiguous float32) without building the
    clipped copy: the sums Σ sr², Σ si², Σ sr·si are dot products, corrected on the few clipped pixels only (a clipped
    pixel's terms scale by t²/|s|²). Same value to float32 rounding; together with the fused log field below the
    fine stage's metric time per 512² frame went from 4.3 to 2.8 ms."""
    sr, si = sr.ravel(), si.ravel()
    a2 = sr * sr
    a2 += si * si
    n = a2.size
    rr, ii, ri = (float(np.dot(sr, sr)), float(np.dot(si, si)), float(np.dot(sr, si)))
    den = rr + ii
    if n == 0 or den <= 0:
        return 0.0
    t2 = k * k * den / n
    idx = np.flatnonzero(a2 > np.float32(t2))
    if idx.size:
        f = (t2 / a2[idx].astype(np.float64)) - 1.0  # per clipped pixel: scaled terms minus the unscaled ones
        r, i = sr[idx].astype(np.float64), si[idx].astype(np.float64)
        rr += float(np.dot(f, r * r))
        ii += float(np.dot(f, i * i))
        ri += float(np.dot(f, r * i))
        den = rr + ii
    return math.hypot(rr - ii, 2 * ri) / den if den > 0 else 0.0


CLIP_RMS = 2.0  # chosen on training-like frames (bench/holo_autofocus.py --split train); 1.5 and 3 were worse


def m_realness_clip(u: np.ndarray) -> float:
    """One-phase-ness |Σ s²| / Σ |s|² of the scattered wave s = u − ū with |s| clipped at CLIP_RMS × rms: 1 at the
    focus of a thin object whose absorption follows its phase (amplitude, phase or mixed targets, weak cells), lower
    when defocus mixes real and imaginary parts. Complex field only (an amplitude is always one-phase)."""
    u = np.asarray(u)
    if not np.iscomplexobj(u):
        return _one_phase(_clip_rms(u - u.mean(), CLIP_RMS))
    re, im = u.real.astype(np.float32), u.imag.astype(np.float32)
    re -= np.float32(re.mean(dtype=np.float64))
    im -= np.float32(im.mean(dtype=np.float64))
    return _one_phase_clipped(re, im, CLIP_RMS)


def m_logrealness_clip(u: np.ndarray) -> float:
    """The same on the log field L = ln(u/ū) (ln amplitude + i phase, amplitude floored at 1e-3 ū): exact for thick
    (strong-phase) objects whose transmittance is exp((−κ + ik·Δn)·h) — L ∝ h has one phase at focus for any phase
    depth — but noisy where the amplitude is dark (chrome targets), so used only when it is clearly more one-phase
    than `realness_clip` (autofocus grid_refine's alt_metric)."""
    u = np.asarray(u)
    m = complex(u.mean(dtype=np.complex128))
    am = abs(m)
    if am <= 0:
        return 0.0
    a = np.abs(u).astype(np.float32, copy=False)
    ph = np.arctan2(u.imag, u.real).astype(np.float32, copy=False)
    # the phase of u/ū, wrapped to (−π, π] as np.angle would give it
    ph -= np.float32(math.atan2(m.imag, m.real))
    ph[ph > np.float32(math.pi)] -= np.float32(2 * math.pi)
    ph[ph <= np.float32(-math.pi)] += np.float32(2 * math.pi)
    np.maximum(a, np.float32(1e-3 * am), out=a)
    lr = np.log(a, out=a)  # ln(a/am) differs by a constant, which the mean removes
    lr -= np.float32(lr.mean(dtype=np.float64))
    ph -= np.float32(ph.mean(dtype=np.float64))
    return _one_phase_clipped(lr, ph, CLIP_RMS)


class SpectralRealness:
    """The unclipped realness |Σ s_z²| / Σ |s_z|² of the scattered wave refocused to every z of an even grid, from the
    field's one spectrum S: refocusing multiplies S(k) by exp(−i z kz(k)) and Σ_x s² = Σ_k S(k)·S(−k) / N, so
    realness(z) = |Σ_κ q(κ) exp(−2i z κ)| / Σ |S|² with q the products S(k)·S(−k) binned by κ = kz − k0 — one
    complex product, one bincount and one small matrix-vector product instead of one IFFT per plane (a 92 µm sweep
    at 0.25 µm steps in about a millisecond). Periodic boundaries: the whole frame counts, edges included."""

    def __init__(self, shape: tuple[int, int], wavelength_m: float, pixel_m: float, medium_index: float,
                 zs: np.ndarray, n_bins: int = 512) -> None:
        h, w = shape
        fy = np.fft.fftfreq(h, pixel_m)[:, None]
        fx = np.fft.fftfreq(w, pixel_m)[None, :]
        k0 = medium_index / wavelength_m
        k2 = k0 * k0 - fy * fy - fx * fx
        self.ok = (k2 > 0).ravel()
        self.ok[0] = False  # the mean is not part of the scattered wave
        kap = 2 * np.pi * (np.sqrt(np.clip(k2, 0, None)) - k0).ravel()[self.ok]  # ≤ 0
        kmin = float(kap.min()) if kap.size else -1.0
        self.idx = np.minimum(np.round((kap - kmin) / -kmin * (n_bins - 1)).astype(np.int64), n_bins - 1)
        kb = kmin + np.arange(n_bins) * (-kmin / (n_bins - 1))
        self.n_bins = n_bins
        self.zs = np.asarray(zs, np.float64)
        self.kernel = np.exp(-2j * np.outer(self.zs, kb)).astype(np.complex64)
        self.neg = (-np.arange(h)) % h, (-np.arange(w)) % w

    def __call__(self, spec: np.ndarray) -> np.ndarray:
        """Realness at every z of `zs` for a field of FFT-ordered spectrum `spec` (shape as constructed)."""
        sm = spec[self.neg[0]][:, self.neg[1]]
        q = (spec * sm).ravel()[self.ok]
        qb = (np.bincount(self.idx, q.real, self.n_bins) + 1j * np.bincount(self.idx, q.imag, self.n_bins))
        e = float(np.vdot(spec, spec).real) - float(abs(spec[0, 0]) ** 2)
        return np.abs(self.kernel @ qb.astype(np.complex64)) / max(e, 1e-30)


@functools.lru_cache(maxsize=8)
def spectral_realness(shape: tuple[int, int], wavelength_m: float, pixel_m: float, medium_index: float,
                      z0: float, z1: float, n: int) -> SpectralRealness:
    """A cached SpectralRealness over np.linspace(z0, z1, n) (one per stream geometry)."""
    return SpectralRealness(shape, wavelength_m, pixel_m, medium_index, np.linspace(z0, z1, n))


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray], float]
    sense: int  # +1: maximal at focus, −1: minimal at focus
    doc: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("normvar", m_normvar, +1, "normalised variance of the amplitude (amplitude objects)"),
    Metric("min_normvar", m_normvar, -1, "minimum normalised variance (phase objects: least contrast at focus)"),
    Metric("tamura", m_tamura, +1, "Tamura coefficient √(σ/μ) of the amplitude"),
    Metric("brenner", m_brenner, +1, "Brenner gradient of the amplitude"),
    Metric("tenengrad", m_tenengrad, +1, "Tenengrad / Sobel energy of the amplitude"),
    Metric("darkfocus", m_darkfocus, +1, "DarkFocus: var(|∇A_dark|²) of the dark-field amplitude"),
    Metric("dubois", m_dubois, +1, "Dubois ΣA, maximum (phase objects)"),
    Metric("min_dubois", m_dubois, -1, "Dubois ΣA, minimum (amplitude objects)"),
    Metric("spectral", m_spectral, +1, "mid-band log spectrum of the amplitude"),
    Metric("tog", m_tog, +1, "Tamura of the complex gradient (amplitude and phase objects)"),
    Metric("gini", m_gini, +1, "Gini sparsity of the complex gradient"),
    Metric("l1", m_l1, -1, "L1 norm of the scattered wave u − ū (sparsest at focus)"),
    Metric("gini_scatter", m_gini_scatter, +1, "Gini sparsity of the scattered wave u − ū"),
    Metric("realness_clip", m_realness_clip, +1, "one-phase-ness of the (clipped) scattered wave; complex field"),
    Metric("logrealness_clip", m_logrealness_clip, +1, "one-phase-ness of the (clipped) log field; complex field"),
)}

DEFAULT_METRIC = {"offaxis": "tog", "inline": "tog"}  # measured: bench/holo_autofocus_classical.py


def get_metric(metric: str | Metric | None, mode: str = "offaxis") -> Metric:
    if isinstance(metric, Metric):
        return metric
    name = metric or DEFAULT_METRIC.get(mode, "tog")
    try:
        return METRICS[name]
    except KeyError:
        raise BadInput(f"unknown focus metric {name!r}; known: {', '.join(METRICS)}") from None


Roi = tuple[int, int, int, int]  # x, y, width, height in input-frame pixels


def _spectral_crop(spec: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Keep the lowest frequencies of an FFT-ordered spectrum on a smaller grid (exact resampling of a band-limited
    field)."""
    rows = np.fft.fftfreq(shape[0], 1.0 / shape[0]).astype(np.int64) % spec.shape[0]
    cols = np.fft.fftfreq(shape[1], 1.0 / shape[1]).astype(np.int64) % spec.shape[1]
    return spec[rows[:, None], cols[None, :]]


COARSE_SIDE = 384  # coarse-grid planes are resampled to at most this many pixels per side
FINE_SIDE = 1024  # refinement planes at most this many


def _roi_spectrum(field: np.ndarray, pad: float, roi: Roi | None, scale: tuple[float, float], spread: int
                  ) -> tuple[np.ndarray, tuple[int, int], list[int]]:
    """FFT of the field (ROI + margin only when a ROI is given, padded if asked) and the scored inner region
    [y0, y1, x0, x1] (the ROI, or the frame minus the defocus spread at the edges)."""
    h, w = field.shape
    if roi is not None:
        sy, sx = scale
        x, y = int(round(roi[0] / sx)), int(round(roi[1] / sy))
        rw, rh = int(round(roi[2] / sx)), int(round(roi[3] / sy))
        if rw < 8 or rh < 8 or x < 0 or y < 0 or x + rw > w or y + rh > h:
            raise BadInput(f"focus ROI {roi} is outside the frame or too small")
        m = min(spread, 64)
        y0, x0, y1, x1 = max(0, y - m), max(0, x - m), min(h, y + rh + m), min(w, x + rw + m)
        field = field[y0:y1, x0:x1]
        inner = [y - y0, y - y0 + rh, x - x0, x - x0 + rw]
    else:
        m = min(spread, h // 4, w // 4)
        inner = [m, h - m, m, w - m]
    field = np.asarray(field, np.complex64)
    grid = pad_shape(field.shape, pad)
    if grid != field.shape:
        field, sl = _pad(field, grid)
        inner = [inner[0] + sl[0].start, inner[1] + sl[0].start, inner[2] + sl[1].start, inner[3] + sl[1].start]
    return sfft.fft2(field, workers=2), grid, inner


class _Scorer:
    """Scores planes of one field from its spectrum (band-limited fields resampled to 1.25× critical sampling,
    coarse stages low-passed to `max_side`): per z a transfer function, multiply, batched IFFT, metric."""

    def __init__(self, spec: np.ndarray, grid: tuple[int, int], inner: list[int], shift: tuple[float, float],
                 wavelength_m: float, pixel: Pixel, n: float, band_limit: bool, metric: Metric,
                 band_cpp: float | None, max_side: int | None = None) -> None:
        self.metric = metric
        self.wl, self.n, self.band_limit, self.shift = wavelength_m, n, band_limit, shift
        py, px = _pxy(pixel)
        gh, gw = grid
        if max_side and max(gh, gw) * 2.5 * (band_cpp or 0.4) > max_side:  # coarse stage: low-pass harder
            band_cpp = max_side / (2.5 * max(gh, gw))
        if band_cpp:  # the field holds no frequency past band_cpp cycles/pixel: resample onto a smaller grid
            mh = min(gh, sfft.next_fast_len(int(math.ceil(2.5 * band_cpp * gh)) + 2))
            mw = min(gw, sfft.next_fast_len(int(math.ceil(2.5 * band_cpp * gw)) + 2))
            if (mh, mw) != (gh, gw):
                spec = _spectral_crop(spec, (mh, mw)) * np.float32(mh * mw / (gh * gw))
                py, px = py * gh / mh, px * gw / mw
                inner = [int(inner[0] * mh / gh), int(math.ceil(inner[1] * mh / gh)),
                         int(inner[2] * mw / gw), int(math.ceil(inner[3] * mw / gw))]
                grid = (mh, mw)
        self.grid = grid
        self.pixel = (py, px) if abs(py - px) > 1e-9 * py else py
        self.inner = (slice(inner[0], inner[1]), slice(inner[2], inner[3]))
        self.spec = spec
        self.cache: dict[float, float] = {}

    def scores(self, zs: np.ndarray, batch: int = 8) -> np.ndarray:
        out = np.empty(len(zs))
        for b in range(0, len(zs), batch):
            chunk = zs[b:b + batch]
            stack = np.empty((len(chunk),) + self.grid, np.complex64)
            for i, z in enumerate(chunk):  # recorded at z → refocus by −z
                np.multiply(self.spec, _tf(self.grid, self.wl, self.pixel, float(-z), self.n, self.band_limit,
                                           self.shift), out=stack[i])
            fields = sfft.ifft2(stack, workers=2, overwrite_x=True)
            for i, z in enumerate(chunk):
                v = self.metric.fn(fields[i][self.inner])
                self.cache[float(z)] = v
                out[b + i] = v
        return out

    def score(self, z: float) -> float:
        z = float(z)
        if z not in self.cache:
            self.scores(np.array([z]))
        return self.cache[z]


class _Scorers:
    """Everything scorers of one field share; `make(lo, hi, max_side)` builds a scorer for planes in [lo, hi]
    (in-line: resampled to the band limit at the smallest |z| of that interval — nothing above it survives)."""

    def __init__(self, field_or_hologram: np.ndarray, rec: Reconstructor, metric: str | Metric | None,
                 roi: Roi | None, zmax: float) -> None:
        o = rec.optics
        self.o, self.rec, self.roi = o, rec, roi
        self.metric = get_metric(metric, o.mode)
        a = np.asarray(field_or_hologram)
        self.band = None
        if np.iscomplexobj(a):
            if a.ndim != 2 or not np.isfinite(a).all():
                raise BadInput(f"autofocus: expected a finite 2-D complex field, got shape {a.shape}")
            self.field, self.shift = a.astype(np.complex64), (0.0, 0.0)
            if rec._state is not None and rec.out_shape == a.shape:
                self.pixel, self.scale = rec._state["pixel"], rec.out_scale
            else:
                self.pixel, self.scale = o.pixel_size_m, (1.0, 1.0)
        else:
            self.field, self.shift = rec.plane_field(a)
            self.pixel, self.scale = rec._state["pixel"], rec.out_scale
        self.na_eff = o.na or 0.0  # 0 = unknown
        if o.mode == "offaxis" and rec.carrier is not None and not np.iscomplexobj(a):
            self.na_eff = min(self.na_eff or 1.0, rec.carrier.radius / o.pixel_size_m * o.wavelength_m)
            self.band = rec.carrier.radius * max(self.scale)  # cycles per output pixel
        self.pad = rec.propagator.pad if rec._state is not None and o.mode == "inline" else 1.0
        py, px = _pxy(self.pixel)
        spread = int(math.ceil(zmax * math.tan(math.asin(min(self.na_eff or 0.5, 0.95))) / min(py, px))) + 2
        self.spec, self.grid, self.inner = _roi_spectrum(self.field, self.pad, roi, self.scale, spread)

    def make(self, lo: float, hi: float, max_side: int) -> _Scorer:
        o, band = self.o, self.band
        zmin = 0.0 if lo < 0 < hi else min(abs(lo), abs(hi))
        if o.mode == "inline" and self.rec.band_limit and zmin > 0:
            ly, lx = band_limits(self.grid, o.wavelength_m, self.pixel, zmin, o.medium_index)
            b = max(ly * _pxy(self.pixel)[0], lx * _pxy(self.pixel)[1])
            band = b if b < 0.4 else None
        return _Scorer(self.spec, self.grid, list(self.inner), self.shift, o.wavelength_m, self.pixel,
                       o.medium_index, self.rec.band_limit, self.metric, band, max_side)


def _brent(sc: _Scorer, lo: float, hi: float, tol: float) -> float:
    if hi - lo <= tol:
        return 0.5 * (lo + hi)
    r = minimize_scalar(lambda z: -sc.metric.sense * sc.score(z), bounds=(lo, hi), method="bounded",
                        options={"xatol": tol, "maxiter": 25})
    return float(r.x)


def _curve(sc: _Scorer) -> np.ndarray:
    zs = np.array(sorted(sc.cache))
    return np.stack([zs, np.array([sc.cache[z] for z in zs])], 1) if len(zs) else np.zeros((0, 2))


def sweep_autofocus(field_or_hologram: np.ndarray, reconstructor: Reconstructor,
                    z_range: tuple[float, float] | None = None, metric: str | Metric | None = None,
                    roi: Roi | None = None, coarse_step: float | None = None, tol: float = 0.05e-6,
                    fine_step: float | None = None, coarse_side: int = COARSE_SIDE) -> tuple[float, np.ndarray, float]:
    """Exhaustive coarse grid over `z_range` (default: the optics' range; step a third of the depth of field, 20–80
    planes; 40 when the NA is unknown), then a
    bounded Brent search inside the best cell (to `tol`), then optionally a fine grid of `fine_step` around it.
    Large fields score the coarse grid on a low-passed copy (≤ `coarse_side` px) and refine at full resolution.
    Returns (z in metres, curve (K, 2) of (z, metric value) over the coarse grid, milliseconds)."""
    t0 = time.perf_counter()
    lo, hi = z_range if z_range is not None else reconstructor.optics.z_range_m
    if not hi > lo:
        raise BadInput(f"autofocus: empty z range {lo}…{hi}")
    scorers = _Scorers(field_or_hologram, reconstructor, metric, roi, max(abs(lo), abs(hi)))
    coarse = scorers.make(lo, hi, coarse_side)
    if coarse_step is None:  # a third of the depth of field (as sampled by the field), 20–80 planes over the range
        na = scorers.na_eff
        dof = reconstructor.optics.medium_index * reconstructor.optics.wavelength_m / na ** 2 if na else 0
        coarse_step = float(np.clip(dof / 3, (hi - lo) / 80, (hi - lo) / 20)) if dof else (hi - lo) / 40
    step = coarse_step
    n = max(3, int(math.ceil((hi - lo) / step)) + 1)
    zs = np.linspace(lo, hi, n)
    s = coarse.scores(zs) * coarse.metric.sense
    i = int(np.argmax(s))
    a, b = zs[max(i - 1, 0)], zs[min(i + 1, n - 1)]
    near = zs[max(i - 2, 0):min(i + 3, n)]
    sc = scorers.make(float(near[0]), float(near[-1]), FINE_SIDE)
    if sc.grid != coarse.grid or sc.pixel != coarse.pixel:  # re-rank the neighbourhood at full resolution
        j = int(np.argmax(sc.scores(near) * sc.metric.sense))
        a, b = near[max(j - 1, 0)], near[min(j + 1, len(near) - 1)]
    else:
        sc = coarse
    z = _brent(sc, float(a), float(b), tol)
    if fine_step:
        fz = np.arange(z - 3 * fine_step, z + 3.5 * fine_step, fine_step)
        fz = fz[(fz >= lo) & (fz <= hi)]
        fs = sc.scores(fz) * sc.metric.sense
        j = int(np.argmax(fs))
        z = float(fz[j])
        if 0 < j < len(fz) - 1:
            d = fs[j - 1] - 2 * fs[j] + fs[j + 1]
            if d < 0:
                z += float(np.clip(0.5 * (fs[j - 1] - fs[j + 1]) / d, -0.5, 0.5)) * fine_step
    return float(z), _curve(coarse), (time.perf_counter() - t0) * 1e3


def refine_autofocus(field_or_hologram: np.ndarray, reconstructor: Reconstructor, z0: float,
                     half_width: float | None = None, metric: str | Metric | None = None, roi: Roi | None = None,
                     n_grid: int = 7, tol: float = 0.05e-6) -> tuple[float, np.ndarray, float]:
    """Search only [z0 − half_width, z0 + half_width] (default ≈ one depth of field, clipped to the optics' range):
    a small grid then bounded Brent in the best cell. Returns (z, curve, ms)."""
    t0 = time.perf_counter()
    o = reconstructor.optics
    if half_width is None:
        half_width = o.depth_of_field_m or 0.05 * (o.z_range_m[1] - o.z_range_m[0])
    lo = max(z0 - half_width, min(o.z_range_m[0], z0))
    hi = min(z0 + half_width, max(o.z_range_m[1], z0))
    sc = _Scorers(field_or_hologram, reconstructor, metric, roi, max(abs(lo), abs(hi))).make(lo, hi, FINE_SIDE)
    zs = np.linspace(lo, hi, max(3, n_grid))
    s = sc.scores(zs) * sc.metric.sense
    i = int(np.argmax(s))
    z = _brent(sc, float(zs[max(i - 1, 0)]), float(zs[min(i + 1, len(zs) - 1)]), tol)
    return float(z), _curve(sc), (time.perf_counter() - t0) * 1e3
