"""Hologram simulator: specimen → pupil (NA) → defocus z (band-limited AS) → in-line or off-axis interference →
illumination → camera (shot/read noise, gain, bits); deterministic per seed; `simulate_stack` gives a labelled
z-stack (format: docs/formats.md)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import scipy.fft as sfft

from app.core.errors import BadInput

from .objects import ALL_KINDS, TRAIN_KINDS, transmittance
from .optics import Optics, preset
from .propagate import transfer_function


@dataclass(frozen=True)
class Session:
    """What stays fixed while one microscope records a stack: pupil, carrier, beams, camera."""

    na: float | None
    carrier: tuple[float, float] | None  # object sideband O·R* (fy, fx), cycles/pixel; kx < 0: a "-1" microscope
    ref_ratio: float  # reference / object beam amplitude
    visibility: float  # fringe visibility (partial coherence)
    ref_curvature: float  # reference-beam quadratic phase at the frame corner, rad
    illum: tuple[float, ...]  # object beam: centre y, x (fraction), waist (fraction), ripple amplitude, ripple seed
    ref_illum: tuple[float, ...]  # same for the reference beam
    bits: int
    full_well: float  # electrons
    fill: float  # near-peak background level as a fraction of full scale
    read_noise: float  # electrons rms
    offset: float  # black level as a fraction of full scale


def session_sideband(session: Session) -> str | None:
    """Which sideband (Optics.sideband) holds the object wave in this session: "+1" when its carrier lies in the
    kx ≥ 0 half plane (ky > 0 on the kx = 0 line), "-1" when the reference beam tilts the other way; None in-line."""
    if session.carrier is None:
        return None
    cy, cx = session.carrier
    return "+1" if cx > 0 or (cx == 0 and cy > 0) else "-1"


def draw_session(preset_name: str, rng: np.random.Generator, mode: str | None = None,
                 carrier_cpp: tuple[float, float] | None = None, carrier_angle_deg: tuple[float, float] | None = None,
                 na_range: tuple[float, float] | None = None, sideband: str | int | None = None) -> Session:
    """Random microscope/camera settings within the preset's ranges (or the given carrier magnitude range in
    cycles/pixel, carrier direction range in degrees within (−90, 90], NA range — e.g. for held-out sets).
    `sideband` the reference beam's tilt: None/"+1" the object sideband in the kx ≥ 0 half plane (as before),
    "-1" the mirrored tilt (carrier turned by 180°), "random" either with equal odds (drawn after the rest, so the
    other settings do not change)."""
    p = preset(preset_name)
    mode = mode or p.optics.mode
    na = None
    if (na_range or p.na_range) is not None:
        na = float(rng.uniform(*(na_range or p.na_range)))
    carrier = None
    if mode == "offaxis":
        lo, hi = carrier_cpp or p.carrier_cpp_range or (0.15, 0.3)
        mag = float(rng.uniform(lo, hi))
        a0, a1 = carrier_angle_deg or (-90.0, 90.0)
        ang = math.radians(float(rng.uniform(a0, a1)))
        carrier = (mag * math.sin(ang), mag * math.cos(ang))

    def beam() -> tuple[float, ...]:
        return (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.7, 3.0)),
                float(rng.uniform(0.0, 0.1)), float(rng.integers(1 << 30)))

    bits = int(rng.choice([8, 12, 16], p=[0.3, 0.4, 0.3]))
    s = Session(na=na, carrier=carrier, ref_ratio=float(rng.uniform(0.7, 1.5)),
                visibility=float(rng.uniform(0.7, 1.0)), ref_curvature=float(rng.uniform(-2.0, 2.0)),
                illum=beam(), ref_illum=beam(), bits=bits, full_well=float(rng.uniform(5e3, 3e4)),
                fill=float(rng.uniform(0.35, 0.8)), read_noise=float(rng.uniform(2, 12)),
                offset=float(rng.uniform(0, 0.03)))
    if sideband is None or carrier is None:
        return s
    if sideband == "random":
        flip = bool(rng.integers(2))
    elif str(sideband) in ("-1", "+1", "1"):
        flip = str(sideband) == "-1"
    else:
        raise BadInput(f"simulate: sideband must be +1, -1 or random, got {sideband!r}")
    return replace(s, carrier=(-carrier[0], -carrier[1])) if flip else s


def _envelope(shape: tuple[int, int], spec: tuple[float, ...]) -> np.ndarray:
    """Smooth illumination amplitude: a Gaussian beam times a low-frequency ripple, mean ≈ 1."""
    h, w = shape
    cy, cx, waist, ripple, seed = spec
    y = (np.arange(h) / h - cy)[:, None]
    x = (np.arange(w) / w - cx)[None, :]
    env = np.exp(-(y ** 2 + x ** 2) / waist ** 2)
    if ripple > 0:
        r = np.random.default_rng(int(seed))
        for _ in range(4):
            ky, kx = r.uniform(-3, 3, 2)
            env = env * (1 + ripple / 2 * np.cos(2 * np.pi * (ky * y + kx * x) + r.uniform(0, 2 * np.pi)))
    env = env / env.mean()
    return env.astype(np.float32)


class Scene:
    """One specimen in one session: the pupil-filtered spectrum is computed once, so a frame at any z costs one
    multiply + IFFT (the simulated camera drifts z through it)."""

    def __init__(self, optics: Optics, session: Session, shape: tuple[int, int], kind: str | None,
                 rng: np.random.Generator, mode: str | None = None, z_max_m: float | None = None) -> None:
        self.optics = optics
        self.session = session
        self.mode = mode or optics.mode
        self.shape = (int(shape[0]), int(shape[1]))
        self.kind = kind
        px, lam = optics.pixel_size_m, optics.wavelength_m
        z_max = abs(z_max_m) if z_max_m is not None else max(abs(v) for v in optics.z_range_m)
        na_eff = min(session.na or 1.0, 0.95)
        if session.na is None:  # lensless: the scene must be larger than the sensor (fringes come from outside)
            grid = tuple(sfft.next_fast_len(2 * s) for s in self.shape)
        else:
            margin = int(math.ceil(z_max * math.tan(math.asin(na_eff)) / px)) + 16
            grid = tuple(sfft.next_fast_len(s + 2 * margin) for s in self.shape)
        self.grid = grid
        gy, gx = grid
        h, w = self.shape
        self._crop = (slice((gy - h) // 2, (gy - h) // 2 + h), slice((gx - w) // 2, (gx - w) // 2 + w))
        if kind is None:
            self._spec = None
        else:
            t = transmittance(kind, rng, grid, px, lam)
            spec = sfft.fft2(t, workers=2)
            if session.na is not None:
                fy = np.fft.fftfreq(gy, px)[:, None]
                fx = np.fft.fftfreq(gx, px)[None, :]
                spec[fy ** 2 + fx ** 2 > (session.na / lam) ** 2] = 0
            self._spec = spec.astype(np.complex64)
        self._illum = _envelope(self.shape, session.illum)
        self._ref = None
        if self.mode == "offaxis":
            if session.carrier is None:
                raise ValueError("off-axis scene needs a carrier")
            cy, cx = session.carrier
            yy = (np.arange(h) - h / 2)[:, None]
            xx = (np.arange(w) - w / 2)[None, :]
            rho2 = (yy / (h / 2)) ** 2 + (xx / (w / 2)) ** 2
            # R* = exp(+i2πc·x): the object term O·R* sits at +carrier in the hologram spectrum
            phase = 2 * np.pi * (cy * yy + cx * xx) + session.ref_curvature / 2 * rho2
            self._ref_conj = (np.exp(1j * phase) * session.ref_ratio
                              * _envelope(self.shape, session.ref_illum)).astype(np.complex64)
            self._ref = True

    def field(self, z_m: float) -> np.ndarray:
        """Object wave at the camera-conjugate plane for a specimen at defocus z (complex64, cropped)."""
        if self._spec is None:
            return self._illum.astype(np.complex64)
        h = transfer_function(self.grid, self.optics.wavelength_m, self.optics.pixel_size_m, float(z_m),
                              self.optics.medium_index, True)
        u = sfft.ifft2(self._spec * h, workers=2)[self._crop]
        return (u * self._illum).astype(np.complex64)

    def intensity(self, z_m: float, inline_term: bool = True) -> np.ndarray:
        """Noise-free hologram intensity (float32). `inline_term` False: an idealised off-axis hologram whose object
        intensity |O|² is replaced by the empty beam's |E|² (for diagnosis only: no camera records this; it shows
        what the in-line term overlapping the sideband costs)."""
        o = self.field(z_m)
        if inline_term or self._spec is None:
            inten = o.real ** 2 + o.imag ** 2
        else:
            inten = np.square(self._illum).astype(np.float32)
        if self._ref is not None:
            rc = self._ref_conj
            inten = inten + (rc.real ** 2 + rc.imag ** 2) + 2 * self.session.visibility * (o * rc).real
        return inten.astype(np.float32)

    def background_level(self) -> float:
        """Near-peak (99.5th percentile) noise-free intensity without a specimen: the exposure reference."""
        if getattr(self, "_level", None) is None:
            o = self._illum
            inten = o * o
            if self._ref is not None:
                rc = self._ref_conj
                inten = inten + (rc.real ** 2 + rc.imag ** 2) + 2 * self.session.visibility * (o * rc).real
            self._level = float(np.percentile(inten, 99.5))
        return self._level


def camera(intensity: np.ndarray, session: Session, level: float, rng: np.random.Generator) -> np.ndarray:
    """Counts from intensity: photo-electrons (shot noise) + read noise, gain, black level, quantisation, clipping.
    Shot noise is Gaussian with variance = mean where the mean exceeds 30 e⁻ (indistinguishable from Poisson there,
    and ~5× faster), exact Poisson below."""
    top = (1 << session.bits) - 1
    electrons_per_unit = session.fill * session.full_well / level
    lam = np.clip(intensity, 0, None).astype(np.float32) * np.float32(electrons_per_unit)
    noise = rng.standard_normal(lam.shape, dtype=np.float32)
    e = lam + noise * np.sqrt(lam + np.float32(session.read_noise ** 2))
    low = lam < 30
    if low.any():
        e[low] = rng.poisson(lam[low]) + session.read_noise * noise[low]
    gain = top / session.full_well  # ADU per electron: full well maps to full scale
    adu = np.rint(e * np.float32(gain) + np.float32(session.offset * top))
    np.clip(adu, 0, top, out=adu)
    return adu.astype(np.uint8 if session.bits == 8 else np.uint16)


def _shape(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    return int(size[0]), int(size[1])


def simulate_stack(preset_name: str, n: int, size: int | tuple[int, int] = 512, seed: int = 0,
                   mode: str | None = None, kinds: tuple[str, ...] | list[str] = TRAIN_KINDS,
                   z_range: tuple[float, float] | None = None, z: np.ndarray | list[float] | None = None,
                   per_frame_optics: bool = False, carrier_cpp: tuple[float, float] | None = None,
                   carrier_angle_deg: tuple[float, float] | None = None, na_range: tuple[float, float] | None = None,
                   inline_term: bool = True, sideband: str | int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """`n` holograms of random specimens (`kinds`) at uniform random defocus in `z_range` (or the given `z`).
    Returns (holograms (n,H,W) uint8/uint16, z_m (n,) float64, background (H,W) or None, attrs). One session
    (pupil, carrier, beams, camera) per stack unless `per_frame_optics` (then no background). `carrier_cpp`,
    `carrier_angle_deg`, `na_range` narrow or move the preset's ranges (held-out sets with unseen settings);
    `inline_term` False simulates the idealised holograms of Scene.intensity (diagnosis; recorded in the attrs).
    `sideband` the reference tilt (draw_session): the truth is recorded as attrs session_sideband (or
    frame_sideband), never as the optics attribute `sideband` — a new microscope's files do not state it."""
    p = preset(preset_name)
    mode = mode or p.optics.mode
    if mode not in ("inline", "offaxis"):
        raise BadInput(f"simulate: mode must be inline or offaxis, got {mode!r}")
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds:
        raise BadInput(f"simulate: unknown object kind(s) {', '.join(bad) or '(none)'}; known: {', '.join(ALL_KINDS)}")
    if n < 1:
        raise BadInput(f"simulate: n must be ≥ 1, got {n}")
    shape = _shape(size)
    zr = tuple(z_range) if z_range is not None else p.optics.z_range_m
    optics = p.optics.with_(mode=mode, z_range_m=zr)
    root = np.random.default_rng(seed)
    sess_kw = dict(carrier_cpp=carrier_cpp, carrier_angle_deg=carrier_angle_deg, na_range=na_range,
                   sideband=sideband)
    session = draw_session(preset_name, root, mode, **sess_kw)
    zs = (np.asarray(z, np.float64) if z is not None
          else np.random.default_rng([seed, 1]).uniform(zr[0], zr[1], n))
    if len(zs) != n:
        raise BadInput(f"simulate: {len(zs)} z values for {n} frames")
    frames, frame_kinds, sessions = [], [], []
    z_max = max(abs(zr[0]), abs(zr[1]))
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        s = draw_session(preset_name, rng, mode, **sess_kw) if per_frame_optics else session
        kind = str(rng.choice(list(kinds)))
        scene = Scene(optics.with_(na=s.na), s, shape, kind, rng, mode, z_max)
        frames.append(camera(scene.intensity(float(zs[i]), inline_term), s, scene.background_level(), rng))
        frame_kinds.append(kind)
        sessions.append(s)
    holograms = np.stack(frames)
    background = None
    if not per_frame_optics:
        rng = np.random.default_rng([seed, 3])
        empty = Scene(optics.with_(na=session.na), session, shape, None, rng, mode, z_max)
        background = camera(empty.intensity(0.0), session, empty.background_level(), rng)
    attrs: dict[str, Any] = {
        "wavelength_m": optics.wavelength_m, "pixel_size_m": optics.pixel_size_m, "mode": mode,
        "medium_index": optics.medium_index, "preset": preset_name, "seed": int(seed),
        "z_range_m": np.asarray(zr, np.float64), "kinds": ",".join(kinds), "frame_kinds": ",".join(frame_kinds),
        "simulated": True,
    }
    if not inline_term:
        attrs["simulated_without_inline_term"] = True
    if per_frame_optics:
        attrs["frame_na"] = np.asarray([s.na or 0.0 for s in sessions])
        if mode == "offaxis":
            attrs["frame_carrier_cpp"] = np.asarray([s.carrier for s in sessions])
            attrs["frame_sideband"] = ",".join(str(session_sideband(s)) for s in sessions)
    else:
        for k, v in asdict(session).items():
            if v is not None:
                attrs[f"session_{k}"] = np.asarray(v) if isinstance(v, tuple) else v
        if session.carrier is not None:
            attrs["session_sideband"] = session_sideband(session)
        if session.na is not None:
            attrs["na"] = session.na
    return holograms, zs, background, attrs
