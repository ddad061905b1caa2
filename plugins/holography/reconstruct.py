"""Hologram → field → refocused amplitude/phase: off-axis carrier detection, tapered (optionally DC-notched) sideband
mask, crop, background division; in-line normalisation. `Reconstructor` caches it all per stream."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np
import scipy.fft as sfft

from app.core.errors import BadInput

from .background import frame_background
from .checks import check_frame
from .fftback import get_fft, tune_async
from .optics import Optics
from .propagate import Propagator, band_limits

log = logging.getLogger(__name__)
# Off-axis frames without a recorded background: None = normalise by the frame's mean only; "frame" = divide by a
# background field fitted to each frame (background.frame_background).
SELF_BACKGROUNDS = (None, "frame")


@dataclass(frozen=True)
class Carrier:
    """Off-axis carrier of the object sideband in cycles/pixel (sub-bin), its integer bin, and the mask radius."""

    fy: float
    fx: float
    iy: int
    ix: int
    radius: float  # sideband mask radius, cycles/pixel
    snr: float = 0.0  # peak / median spectrum outside DC

    @property
    def magnitude(self) -> float:
        return math.hypot(self.fy, self.fx)

    @property
    def angle_deg(self) -> float:
        return math.degrees(math.atan2(self.fy, self.fx))


def default_mask_radius(carrier_cpp: float, na: float | None, wavelength_m: float, pixel_m: float) -> float:
    """Sideband mask radius (cycles/pixel): the objective's band NA/λ when known, but never past half the carrier
    (the autocorrelation/DC term); carrier/3 when the NA is unknown (as PyHoloscope)."""
    if na:
        return min(na / wavelength_m * pixel_m, carrier_cpp / 2)
    return carrier_cpp / 3


def _sideband_mask(shape: tuple[int, int], in_shape: tuple[int, int], carrier: tuple[int, int], radius: float,
                   notch: float | None, width: float = 0.15) -> np.ndarray:
    """Cosine-tapered disc of `radius` (cycles/input pixel) around the sideband centre, optionally minus a tapered
    disc of radius `notch` around the hologram's DC (the object's own intensity term) — FFT order, float32."""
    hc, wc = shape
    h, w = in_shape
    u = np.fft.fftfreq(hc, 1.0 / hc)[:, None] / h
    v = np.fft.fftfreq(wc, 1.0 / wc)[None, :] / w

    def inside(r: np.ndarray, rad: float) -> np.ndarray:
        t = np.clip((r / rad - (1 - width)) / width, 0, 1)
        return 0.5 * (1 + np.cos(np.pi * t))

    m = inside(np.sqrt(u ** 2 + v ** 2), radius)
    if notch:
        m = m * (1 - inside(np.sqrt((u + carrier[0] / h) ** 2 + (v + carrier[1] / w) ** 2), notch * (1 + width)))
    return m.astype(np.float32)


class HermitianGather:
    """Values of the full spectrum at fixed (rows, cols) from an rfft2 half spectrum (Hermitian symmetry for
    kx < 0). The flat indices and the conjugation mask are worked out once per stream; a frame costs one take."""

    def __init__(self, half_shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, full_w: int) -> None:
        h, m = half_shape
        cols = (cols + full_w // 2) % full_w - full_w // 2
        neg = cols < 0
        r = np.where(neg, (-rows) % h, rows % h)
        c = np.where(neg, -cols, cols)
        self.index = np.ravel_multi_index(np.broadcast_arrays(r, c), (h, m)).astype(np.intp)
        self.neg = neg if neg.any() else None
        self.half_shape = (h, m)

    def __call__(self, half: np.ndarray) -> np.ndarray:
        if half.shape != self.half_shape:
            raise ValueError(f"half spectrum {half.shape}, gather made for {self.half_shape}")
        out = np.take(half.ravel(), self.index)
        if self.neg is not None:
            np.conjugate(out, out=out, where=self.neg)
        return out


def mirrored(c: Carrier) -> Carrier:
    """The conjugate sideband of `c` (same magnitude and mask, opposite side of DC)."""
    return replace(c, fy=-c.fy, fx=-c.fx, iy=-c.iy, ix=-c.ix)


def detect_carrier(frame: np.ndarray, dc_fraction: float = 0.06, na: float | None = None,
                   wavelength_m: float = 0.0, pixel_m: float = 0.0, name: str = "frame",
                   sideband: int | str | None = None) -> Carrier:
    """Object sideband position: window, real FFT, DC masked, argmax in the kx ≥ 0 half plane, parabolic sub-bin
    refinement; `sideband` −1 / "-1" (the microscope's object wave is the other one, Optics.sideband) returns the
    mirrored peak. BadInput when no clear carrier peak exists (an in-line hologram?)."""
    a = np.asarray(frame, np.float32)
    h, w = a.shape
    win = (np.hanning(h)[:, None] * np.hanning(w)[None, :]).astype(np.float32)
    mag = np.abs(sfft.rfft2((a - a.mean()) * win, workers=2))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2)
    mag[r < dc_fraction] = 0
    mag[(fx == 0) & (fy < 0)] = 0  # on the kx = 0 line keep ky > 0 only
    iy, ix = np.unravel_index(int(np.argmax(mag)), mag.shape)
    peak = float(mag[iy, ix])
    med = float(np.median(mag[r >= dc_fraction])) + 1e-12
    snr = peak / med
    if snr < 30:
        raise BadInput(f"{name}: no off-axis carrier found (peak/median {snr:.0f}); is this an in-line hologram?")

    def sub(vm: float, v0: float, vp: float) -> float:
        lm, l0, lp = (math.log(max(v, 1e-12)) for v in (vm, v0, vp))
        d = lm - 2 * l0 + lp
        return 0.0 if d >= 0 else float(np.clip(0.5 * (lm - lp) / d, -0.5, 0.5))

    dy = sub(mag[(iy - 1) % h, ix], peak, mag[(iy + 1) % h, ix])
    dx = sub(mag[iy, ix - 1], peak, mag[iy, ix + 1]) if 0 < ix < mag.shape[1] - 1 else 0.0
    siy = int(iy if iy <= h // 2 else iy - h)
    cy, cx = (siy + dy) / h, (ix + dx) / w
    radius = default_mask_radius(math.hypot(cy, cx), na, wavelength_m, pixel_m) if pixel_m else math.hypot(cy, cx) / 3
    c = Carrier(float(cy), float(cx), siy, int(ix), float(radius), snr)
    return mirrored(c) if sideband in (-1, "-1") else c


@dataclass
class Reconstruction:
    amplitude: np.ndarray
    phase: np.ndarray | None
    field: np.ndarray | None
    z_m: float
    pixel_size_m: float


class Reconstructor:
    """Per-stream reconstruction state: optics, carrier (detected once, `redetect()` to refresh; the sideband
    optics.sideband names as the object wave — "-1" mirrors the kx ≥ 0 peak or the given carrier), sideband mask,
    crop geometry, background field, propagator. `crop` keeps only the sideband's band, sampled at `oversample` ×
    Nyquist (output pixel = out_scale × input pixel); `tune_fft` (live streams) times pyFFTW in the background."""

    def __init__(self, optics: Optics, background: np.ndarray | None = None, *, crop: bool = True,
                 oversample: float = 1.5, mask_radius_cpp: float | None = None, band_limit: bool = True,
                 pad: float | None = None, notch: bool | None = None, tune_fft: bool = False,
                 self_background: str | None = None) -> None:
        self.optics = optics
        if self_background not in SELF_BACKGROUNDS:
            raise BadInput(f"self_background must be one of {', '.join(map(str, SELF_BACKGROUNDS))}, "
                           f"got {self_background!r}")
        self.self_background = self_background
        self._self_memo: tuple | None = None  # (frame, fingerprint, 1/background field) of the last frame
        self.tune_fft = tune_fft
        self.notch = notch
        self.crop = crop
        self.oversample = float(oversample)
        self.mask_radius_cpp = mask_radius_cpp
        self.band_limit = band_limit
        self.pad = pad
        self.carrier: Carrier | None = None
        self._lock = threading.RLock()
        self._background_raw: np.ndarray | None = None
        self._state: dict | None = None
        self._last_half: tuple[np.ndarray, np.ndarray] | None = None  # (frame, its rfft2), see _sideband
        self._shape: tuple[int, int] | None = None
        if optics.carrier is not None and optics.mode == "offaxis":
            self._fixed_carrier = optics.carrier
        else:
            self._fixed_carrier = None
        if background is not None:
            self.set_background(background)

    # ------------------------------------------------------------------ state
    def set_background(self, background: np.ndarray | None) -> None:
        """Hologram recorded without a specimen (same optics); None to drop it. Rebuilds the cached state."""
        with self._lock:
            self._background_raw = None if background is None else check_frame(background, "background")
            self._state = None

    def redetect(self) -> None:
        """Forget the carrier; the next frame (or the background) detects it again."""
        with self._lock:
            self.carrier = None
            self._state = None

    @property
    def out_pixel_m(self) -> float:
        """Pixel of the reconstructed images (mean of y and x when a non-square crop made them differ by <1 %)."""
        if self._state is None:
            raise RuntimeError("no frame seen yet")
        p = self._state["pixel"]
        return float(np.mean(p)) if isinstance(p, tuple) else p

    @property
    def out_scale(self) -> tuple[float, float]:
        """Output pixel / input pixel along (y, x): map input-frame coordinates to the reconstruction's."""
        if self._state is None:
            raise RuntimeError("no frame seen yet")
        return self._state["scale"]

    @property
    def out_shape(self) -> tuple[int, int]:
        if self._state is None:
            raise RuntimeError("no frame seen yet")
        return self._state["shape"]

    @property
    def propagator(self) -> Propagator:
        if self._state is None:
            raise RuntimeError("no frame seen yet")
        return self._state["prop"]

    def _pad_factor(self, pixel: float, shape: tuple[int, int]) -> float:
        if self.pad is not None:
            return self.pad
        zmax = max(abs(v) for v in self.optics.z_range_m)
        ly, lx = band_limits(shape, self.optics.wavelength_m, pixel, zmax, self.optics.medium_index)
        return 2.0 if min(ly, lx) * pixel < 0.5 else 1.0  # pad when the band limit bites (large z)

    def _prepare(self, frame: np.ndarray) -> dict:
        """Build carrier, crop geometry, mask, background field and propagator for this frame shape."""
        h, w = frame.shape
        o = self.optics
        st: dict = {"in_shape": (h, w)}
        if o.mode == "offaxis":
            if self.carrier is None:
                if self._fixed_carrier is not None:
                    cy, cx = self._fixed_carrier
                    rad = self.mask_radius_cpp or default_mask_radius(math.hypot(cy, cx), o.na, o.wavelength_m,
                                                                      o.pixel_size_m)
                    self.carrier = Carrier(cy, cx, int(round(cy * h)), int(round(cx * w)), rad)
                    if o.sideband_sign < 0:
                        self.carrier = mirrored(self.carrier)
                else:
                    src = self._background_raw if self._background_raw is not None else frame
                    self.carrier = detect_carrier(src, na=o.na, wavelength_m=o.wavelength_m, pixel_m=o.pixel_size_m,
                                                  sideband=o.sideband_sign)
                    if self.mask_radius_cpp:
                        self.carrier = Carrier(self.carrier.fy, self.carrier.fx, self.carrier.iy, self.carrier.ix,
                                               self.mask_radius_cpp, self.carrier.snr)
            band = o.na / o.wavelength_m * o.pixel_size_m if o.na else None
            use_notch = self.notch if self.notch is not None else bool(band and self.carrier.magnitude >= 1.25 * band)
            notch = band if use_notch and band else None
            if notch and not self.mask_radius_cpp:  # notched mask: keep the objective's whole band
                self.carrier = replace(self.carrier, radius=min(notch, 0.95 * self.carrier.magnitude))
            log.info("off-axis carrier (%.4f, %.4f) c/px, |c| %.3f at %.1f°, mask radius %.3f c/px%s",
                     self.carrier.fy, self.carrier.fx, self.carrier.magnitude, self.carrier.angle_deg,
                     self.carrier.radius, " notched around DC" if notch else "")
            c = self.carrier
            hc, wc = h, w
            if self.crop:  # keep only the sideband: a smaller grid sampled ≥ `oversample` × Nyquist of the mask
                scale = max(1.0, 1.0 / (2 * c.radius * self.oversample))
                hc = min(h, sfft.next_fast_len(int(math.ceil(h / scale))))
                wc = min(w, sfft.next_fast_len(int(math.ceil(w / scale))))
            sy, sx = h / hc, w / wc  # output pixel / input pixel
            rows = (c.iy + np.fft.fftfreq(hc, 1.0 / hc).astype(np.int64))[:, None]
            cols = (c.ix + np.fft.fftfreq(wc, 1.0 / wc).astype(np.int64))[None, :]
            rows, cols = np.broadcast_arrays(rows, cols)
            pixel = (o.pixel_size_m * sy, o.pixel_size_m * sx) if abs(sy - sx) > 1e-9 else o.pixel_size_m * sy
            st.update(gather=HermitianGather((h, w // 2 + 1), rows, cols, w), scale=(sy, sx), shape=(hc, wc),
                      pixel=pixel)
            st["mask"] = _sideband_mask((hc, wc), (h, w), (c.iy, c.ix), c.radius, notch)
            dy, dx = c.fy - c.iy / h, c.fx - c.ix / w  # sub-bin carrier residual, cycles/pixel of the input
            if self._background_raw is not None:
                if self._background_raw.shape != (h, w):
                    raise BadInput(f"background {self._background_raw.shape} and frame {(h, w)} differ in shape")
                bg = self._demod(self._background_raw, st)
                amp = np.abs(bg)
                bg = np.where(amp > amp.max() * 1e-3, bg, amp.max() * 1e-3).astype(np.complex64)
                st["bg_inv"] = (1.0 / bg).astype(np.complex64)
                shift = (0.0, 0.0)
            elif self.self_background:  # a background field estimated per frame (_inv)
                st["self_bg"] = True
                shift = (0.0, 0.0)
            else:
                shift = (dy / o.pixel_size_m, dx / o.pixel_size_m)
                yy = np.arange(hc)[:, None] * (sy * dy)
                xx = np.arange(wc)[None, :] * (sx * dx)
                st["ramp"] = np.exp(-2j * np.pi * (yy + xx)).astype(np.complex64)
                # normalise so the unscattered light has amplitude ≈ 1
                st["norm"] = np.float32(1.0)
                st["norm"] = np.float32(1.0 / max(float(np.abs(self._demod(frame, st)).mean()), 1e-12))
            st["prop"] = Propagator((hc, wc), o.wavelength_m, st["pixel"], n=o.medium_index,
                                    band_limit=self.band_limit, pad=1.0, shift=shift)
        else:
            st.update(shape=(h, w), pixel=o.pixel_size_m, scale=(1.0, 1.0))
            if self._background_raw is not None:
                if self._background_raw.shape != (h, w):
                    raise BadInput(f"background {self._background_raw.shape} and frame {(h, w)} differ in shape")
                bg = self._background_raw.astype(np.float32)
                bg = np.maximum(bg, bg.max() * 1e-3)
                st["bg_inv"] = (1.0 / bg).astype(np.float32)
            st["prop"] = Propagator((h, w), o.wavelength_m, o.pixel_size_m, n=o.medium_index,
                                    band_limit=self.band_limit, pad=self._pad_factor(o.pixel_size_m, (h, w)))
        return st

    def _state_for(self, frame: np.ndarray) -> dict:
        with self._lock:
            if self._state is None or self._state["in_shape"] != frame.shape:
                self._state = self._prepare(frame)
                if self.tune_fft:  # live streams: time pyFFTW against scipy in the background for these shapes
                    tune_async(frame.shape)
                    tune_async(self._state["prop"].grid)
            return self._state

    # ------------------------------------------------------------------ off-axis
    def _sideband(self, frame: np.ndarray, st: dict) -> np.ndarray:
        half = get_fft(frame.shape).rforward(frame)
        self._last_half = (frame, half)  # autofocus.fullband_field reuses it for the same frame object
        s = st["gather"](half)
        s *= st["mask"]
        return s

    def _demod(self, frame: np.ndarray, st: dict) -> np.ndarray:
        """Demodulated field at the hologram plane (tilt residual of the sub-bin carrier left in)."""
        u = get_fft(st["shape"]).inverse(self._sideband(frame, st))
        if "norm" in st:
            u *= st["norm"]
        return u

    def _inv(self, frame: np.ndarray, st: dict, u: np.ndarray) -> np.ndarray:
        """1 / background field for this frame: the recorded background's, else (self_background) the estimate
        from the frame's demodulated field `u`, computed once per frame."""
        if "bg_inv" in st:
            return st["bg_inv"]
        memo = self._self_memo
        tag = np.asarray(frame).ravel()[::4099].copy()
        if memo is not None and memo[0] is frame and np.array_equal(memo[1], tag):
            return memo[2]
        inv = frame_background(u, inverse=True)
        self._self_memo = (frame, tag, inv)
        return inv

    @property
    def background_source(self) -> str:
        """Where the background field comes from: "recorded" (a background hologram), "frame" (off-axis: fitted to
        each frame), or "none" (normalised by the frame's mean, in-line by its blur)."""
        if self._background_raw is not None:
            return "recorded"
        if self.optics.mode != "offaxis" or not self.self_background:
            return "none"
        return "frame"

    # ------------------------------------------------------------------ public
    def field_spectrum(self, frame: np.ndarray) -> np.ndarray:
        """Spectrum (FFT order, on the output grid) of the object field at the hologram plane, ready to be
        multiplied by a transfer function: the shared first step of refocusing and autofocus sweeps."""
        frame = check_frame(frame)
        st = self._state_for(frame)
        if self.optics.mode == "offaxis":
            s = self._sideband(frame, st)
            if "bg_inv" in st or "self_bg" in st:
                u = get_fft(st["shape"]).inverse(s)
                u *= self._inv(frame, st, u)
                return get_fft(st["shape"]).forward(u)
            s *= st["norm"]
            return s
        return st["prop"].spectrum(self._inline_field(frame, st))

    def _inline_field(self, frame: np.ndarray, st: dict) -> np.ndarray:
        a = np.asarray(frame, np.float32)
        if "bg_inv" in st:
            norm = a * st["bg_inv"]
        else:  # no background: divide by a heavy blur of the frame itself (illumination envelope)
            h, w = a.shape
            small = cv2.resize(a, (max(8, w // 8), max(8, h // 8)), interpolation=cv2.INTER_AREA)
            sig = max(small.shape) / 8
            env = cv2.resize(cv2.GaussianBlur(small, (0, 0), sig, borderType=cv2.BORDER_REFLECT), (w, h),
                             interpolation=cv2.INTER_LINEAR)
            norm = a / np.maximum(env, env.max() * 1e-3)
        return np.sqrt(np.maximum(norm, 0, out=norm), out=norm)  # real: propagation takes the real-input path

    def _offaxis_field(self, frame: np.ndarray, st: dict) -> tuple[np.ndarray, bool]:
        """Demodulated field, divided by the background when one is known (recorded or estimated); the flag says
        whether it was (then the carrier tilt is gone with it)."""
        u = self._demod(frame, st)
        divided = "bg_inv" in st or "self_bg" in st
        if divided:
            u *= self._inv(frame, st, u)
        return u, divided

    def plane_field(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """(field at the hologram plane on the output grid, frequency shift in 1/m to propagate it with). Off-axis
        without a background the sub-bin carrier tilt is left in and compensated by the shift (exact)."""
        frame = check_frame(frame)
        st = self._state_for(frame)
        if self.optics.mode == "offaxis":
            return self._offaxis_field(frame, st)[0], st["prop"].shift
        return self._inline_field(frame, st), (0.0, 0.0)

    def hologram_field(self, frame: np.ndarray) -> np.ndarray:
        """Complex field at the hologram plane (off-axis: demodulated, background-divided, tilt removed)."""
        frame = check_frame(frame)
        st = self._state_for(frame)
        if self.optics.mode == "offaxis":
            u, divided = self._offaxis_field(frame, st)
            if not divided:
                u *= st["ramp"]
            return u
        return self._inline_field(frame, st)

    def refocus_spectrum(self, spec: np.ndarray, z_m: float) -> np.ndarray:
        """Field in focus for a hologram recorded at defocus z: propagate the field spectrum by −z."""
        st = self._state
        assert st is not None
        prop: Propagator = st["prop"]
        u = prop.from_spectrum(spec, -z_m) if prop.grid != prop.shape else prop.plan.inverse(spec * prop.transfer(-z_m))
        if "ramp" in st:
            u *= st["ramp"]
        return u

    def reconstruct(self, frame: np.ndarray, z_m: float, phase: bool = True, keep_field: bool = False
                    ) -> Reconstruction:
        """Amplitude and wrapped phase of the specimen recorded at defocus `z_m` (propagates by −z)."""
        frame = check_frame(frame)
        st = self._state_for(frame)
        prop: Propagator = st["prop"]
        if self.optics.mode == "offaxis" and "bg_inv" not in st and "self_bg" not in st:
            s = self._sideband(frame, st)
            s *= st["norm"]
            s *= prop.transfer(-z_m)
            u = get_fft(st["shape"]).inverse(s)
            u *= st["ramp"]
        elif self.optics.mode == "offaxis":
            u = self._demod(frame, st)
            u *= self._inv(frame, st, u)
            u = prop(u, -z_m)
        else:
            u = prop(self._inline_field(frame, st), -z_m)
        amp = np.abs(u)
        ph = np.angle(u) if phase else None
        return Reconstruction(amp, ph, u if keep_field else None, float(z_m), self.out_pixel_m)

    __call__ = reconstruct
