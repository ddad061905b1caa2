"""An independent off-axis DHM forward model, for validation only: written without the app's simulator, object,
propagation or reconstruction code (numpy.fft and h5py only). Thick Mie-like beads (multi-slice), cells with nuclei,
debris, fibres, resolution targets; sCMOS/CCD cameras with gains, PRNU and column offsets; reference/object
intensity ratio 0.3–10; carrier 0.15–0.4 cycles/px in any direction (both sidebands); non-uniform illumination with
dust rings; stacks in the app's HDF5 format with ground-truth z, with or without a background hologram.

Convention (physics, shared with any correct reconstructor): exp(+i(kz − ωt)); a specimen recorded at defocus z
has its object wave propagated by +z to the camera-conjugate plane; an optically denser object delays the wave
(positive phase)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

WAVELENGTH_M = 666e-9
PIXEL_M = 0.5e-6
Z_RANGE_M = (-46e-6, 46e-6)
KINDS = ("beads", "cells", "debris", "fibres", "target", "mixed")


# propagation -------------------------------------------------------------------------------------------------
def kz_grid(shape: tuple[int, int], wl: float, px: float, n: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(kz/2π in 1/m, propagating mask) on the FFT grid."""
    fy = np.fft.fftfreq(shape[0], px)[:, None]
    fx = np.fft.fftfreq(shape[1], px)[None, :]
    f2 = fy * fy + fx * fx
    k2 = (n / wl) ** 2
    return np.sqrt(np.maximum(k2 - f2, 0.0)), f2 < k2


def angular_spectrum(u: np.ndarray, dz: float, wl: float, px: float, n: float = 1.0) -> np.ndarray:
    """Field u propagated by dz (forward for dz > 0) in a medium of index n; evanescent waves dropped."""
    kz, prop = kz_grid(u.shape, wl, px, n)
    return np.fft.ifft2(np.fft.fft2(u) * np.where(prop, np.exp(2j * np.pi * dz * kz), 0))


# specimens (complex transmittance on a grid of pixel px) --------------------------------------------------------
def _coords(shape: tuple[int, int], px: float) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(shape[0]) - shape[0] / 2) * px
    x = (np.arange(shape[1]) - shape[1] / 2) * px
    return y[:, None], x[None, :]


def beads(rng: np.random.Generator, shape: tuple[int, int], px: float, wl: float) -> np.ndarray:
    """Thick dielectric spheres (radius 1–4 µm, Δn 0.02–0.2) through multi-slice propagation, referred back to the
    plane of their centres: refraction and focusing that a thin phase mask does not have."""
    y, x = _coords(shape, px)
    n = int(rng.integers(3, 25))
    dn = float(rng.uniform(0.02, 0.2))
    absorb = float(rng.uniform(0, 0.02)) / 1e-6
    ext = np.array(shape) * px / 2
    spheres = [(rng.uniform(-ext[0], ext[0]), rng.uniform(-ext[1], ext[1]), rng.uniform(1e-6, 4e-6)) for _ in range(n)]
    rmax = max(s[2] for s in spheres)
    n_slices = 8
    dz = 2 * rmax / n_slices
    u = np.ones(shape, np.complex128)
    for k in range(n_slices):
        zc = -rmax + (k + 0.5) * dz
        thick = np.zeros(shape)
        for cy, cx, r in spheres:
            rr = r * r - zc * zc
            if rr <= 0:
                continue
            inside = (y - cy) ** 2 + (x - cx) ** 2 < rr
            thick = np.where(inside, dz, thick)
        u = u * np.exp((2j * np.pi * dn / wl - absorb) * thick)
        u = angular_spectrum(u, dz, wl, px)
    return angular_spectrum(u, -rmax, wl, px)  # from the exit plane back to the centre plane


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, a: float, b: float, ang: float) -> np.ndarray:
    c, s = math.cos(ang), math.sin(ang)
    yy, xx = (y - cy) * c - (x - cx) * s, (y - cy) * s + (x - cx) * c
    return 1.0 - (yy / a) ** 2 - (xx / b) ** 2  # > 0 inside


def cells(rng: np.random.Generator, shape: tuple[int, int], px: float, wl: float) -> np.ndarray:
    """Adherent cells: dome-shaped ellipses (Δn 0.015–0.04, 2–6 µm high) with a denser nucleus and granules."""
    y, x = _coords(shape, px)
    opd = np.zeros(shape)
    att = np.zeros(shape)
    ext = np.array(shape) * px / 2
    for _ in range(int(rng.integers(2, 14))):
        cy, cx = rng.uniform(-ext[0], ext[0]), rng.uniform(-ext[1], ext[1])
        a, b = rng.uniform(5e-6, 14e-6), rng.uniform(4e-6, 10e-6)
        ang = rng.uniform(0, np.pi)
        q = _ellipse(y, x, cy, cx, a, b, ang)
        h = rng.uniform(2e-6, 6e-6) * np.sqrt(np.clip(q, 0, None))
        opd += rng.uniform(0.015, 0.04) * h
        qn = _ellipse(y, x, cy + rng.uniform(-0.2, 0.2) * a, cx + rng.uniform(-0.2, 0.2) * b, 0.4 * a, 0.4 * b, ang)
        hn = rng.uniform(1e-6, 3e-6) * np.sqrt(np.clip(qn, 0, None))
        opd += rng.uniform(0.01, 0.03) * hn
        att += rng.uniform(0, 0.03) * hn / 1e-6
        for _ in range(int(rng.integers(0, 12))):
            gy, gx = cy + rng.uniform(-0.7, 0.7) * a, cx + rng.uniform(-0.7, 0.7) * b
            g = (y - gy) ** 2 + (x - gx) ** 2 < rng.uniform(0.3e-6, 0.8e-6) ** 2
            opd += g * rng.uniform(0.02, 0.08) * 1e-6
    return np.exp(2j * np.pi * opd / wl - att)


def debris(rng: np.random.Generator, shape: tuple[int, int], px: float, wl: float) -> np.ndarray:
    """Irregular absorbing particles (dust, precipitates) 1–6 µm, mostly amplitude, some with a phase."""
    y, x = _coords(shape, px)
    t = np.ones(shape, np.complex128)
    ext = np.array(shape) * px / 2
    for _ in range(int(rng.integers(5, 40))):
        cy, cx = rng.uniform(-ext[0], ext[0]), rng.uniform(-ext[1], ext[1])
        r0 = rng.uniform(0.5e-6, 3e-6)
        th = np.arctan2(y - cy, x - cx)
        rad = r0 * (1 + sum(rng.uniform(0, 0.3) * np.cos(k * th + rng.uniform(0, 6.3)) for k in (2, 3, 5)))
        inside = (y - cy) ** 2 + (x - cx) ** 2 < rad ** 2
        t = np.where(inside, t * rng.uniform(0.05, 0.7) * np.exp(1j * rng.uniform(-0.5, 1.0)), t)
    return t


def fibres(rng: np.random.Generator, shape: tuple[int, int], px: float, wl: float) -> np.ndarray:
    """Curved fibres (0.6–2 µm wide, phase 0.3–1.5 rad, weak absorption) drawn as smooth random walks."""
    h, w = shape
    opd = np.zeros(shape)
    for _ in range(int(rng.integers(2, 10))):
        p = rng.uniform(0, 1, 2) * (h, w)
        ang = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.6e-6, 2e-6) / px
        phase = rng.uniform(0.3, 1.5)
        for _ in range(int(rng.integers(150, 900))):
            ang += rng.normal(0, 0.05)
            p = p + (math.sin(ang), math.cos(ang))
            iy, ix = int(p[0]), int(p[1])
            r = int(math.ceil(width))
            if not (r <= iy < h - r and r <= ix < w - r):
                continue
            yy, xx = np.ogrid[-r:r + 1, -r:r + 1]
            disc = (yy * yy + xx * xx <= (width / 2) ** 2) * phase
            sl = opd[iy - r:iy + r + 1, ix - r:ix + r + 1]
            np.maximum(sl, disc, out=sl)
    return np.exp(1j * opd - 0.05 * opd)


def target(rng: np.random.Generator, shape: tuple[int, int], px: float, wl: float) -> np.ndarray:
    """Resolution target: groups of three bars (1–8 µm) in two orientations, chrome (amplitude) or etched (phase)."""
    h, w = shape
    cov = np.zeros(shape)
    for _ in range(int(rng.integers(4, 14))):
        bw = max(1, int(round(rng.uniform(1e-6, 8e-6) / px)))
        length = 5 * bw
        y0, x0 = int(rng.integers(0, max(1, h - 6 * bw))), int(rng.integers(0, max(1, w - 6 * bw)))
        horiz = rng.random() < 0.5
        for k in range(3):
            if horiz:
                cov[y0 + 2 * k * bw:y0 + (2 * k + 1) * bw, x0:x0 + length] = 1
            else:
                cov[y0:y0 + length, x0 + 2 * k * bw:x0 + (2 * k + 1) * bw] = 1
    if rng.random() < 0.5:  # chrome on glass
        return 1 - cov * (1 - rng.uniform(0.02, 0.3))
    return np.exp(1j * cov * rng.uniform(0.5, 2.0))  # etched/raised glass steps


def mixed(rng: np.random.Generator, shape: tuple[int, int], px: float, wl: float) -> np.ndarray:
    return cells(rng, shape, px, wl) * debris(rng, shape, px, wl)


SPECIMENS = {"beads": beads, "cells": cells, "debris": debris, "fibres": fibres, "target": target, "mixed": mixed}


# microscope and camera ----------------------------------------------------------------------------------------
@dataclass
class Microscope:
    """One simulated off-axis microscope: pupil, reference beam, illumination, camera (all fixed per stack)."""

    size: int
    na: float
    carrier: tuple[float, float]  # object sideband O·R* (fy, fx) in cycles/px, any direction
    ratio: float  # reference / object beam intensity
    visibility: float
    curvature: float  # reference phase at the frame corner, rad
    camera: dict
    illum_seed: int
    dust: list = field(default_factory=list)
    wavelength_m: float = WAVELENGTH_M
    pixel_m: float = PIXEL_M

    @property
    def sideband(self) -> str:
        cy, cx = self.carrier
        return "+1" if cx > 0 or (cx == 0 and cy > 0) else "-1"

    @property
    def margin(self) -> int:
        zmax = max(abs(v) for v in Z_RANGE_M)
        return int(math.ceil(zmax * math.tan(math.asin(self.na)) / self.pixel_m)) + 24

    def optics_attrs(self) -> dict:
        """The optics a user would state for this microscope (the sideband is not among them)."""
        return {"mode": "offaxis", "wavelength_m": self.wavelength_m, "pixel_size_m": self.pixel_m, "na": self.na,
                "z_range_m": np.asarray(Z_RANGE_M), "medium_index": 1.0}

    def illumination(self, shape: tuple[int, int]) -> np.ndarray:
        """Object-beam amplitude: a tilted plane + quadratic falloff, a smooth random field and defocused dust
        rings (same for every frame of the microscope)."""
        r = np.random.default_rng(self.illum_seed)
        y = np.linspace(-1, 1, shape[0])[:, None]
        x = np.linspace(-1, 1, shape[1])[None, :]
        a = 1 + r.uniform(-0.25, 0.25) * y + r.uniform(-0.25, 0.25) * x - r.uniform(0, 0.4) * (x * x + y * y)
        noise = r.standard_normal((8, 8))
        smooth = _upsample(noise, shape)
        a = a * (1 + r.uniform(0, 0.15) * smooth / (np.abs(smooth).max() + 1e-9))
        for cy, cx, rad, depth in self.dust:
            d = np.hypot(y - cy, x - cx) / rad
            a = a * (1 - depth * np.exp(-((d - 1) ** 2) / 0.02) * np.cos(12 * d) ** 2)
        return np.clip(a, 0.05, None)

    def reference(self, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        yy = (np.arange(h) - h / 2)[:, None]
        xx = (np.arange(w) - w / 2)[None, :]
        rho2 = (yy / (h / 2)) ** 2 + (xx / (w / 2)) ** 2
        cy, cx = self.carrier
        # R = exp(−i2π c·x): then O·R* sits at +c in the hologram's spectrum
        return math.sqrt(self.ratio) * np.exp(-2j * np.pi * (cy * yy + cx * xx) + 1j * self.curvature * rho2)

    def object_wave(self, t: np.ndarray | None, z_m: float) -> np.ndarray:
        """Object wave at the camera (frame-sized) for transmittance t (grid-sized; None = no specimen)."""
        m = self.margin
        g = (self.size + 2 * m, self.size + 2 * m)
        illum = self.illumination(g)
        u = illum.astype(np.complex128) if t is None else illum * t
        spec = np.fft.fft2(u)
        fy = np.fft.fftfreq(g[0], self.pixel_m)[:, None]
        fx = np.fft.fftfreq(g[1], self.pixel_m)[None, :]
        cut = self.na / self.wavelength_m
        fr = np.sqrt(fy * fy + fx * fx) / cut
        pupil = np.clip((1.04 - fr) / 0.08, 0, 1)  # slightly apodised pupil edge
        kz, prop = kz_grid(g, self.wavelength_m, self.pixel_m)
        u = np.fft.ifft2(spec * pupil * np.where(prop, np.exp(2j * np.pi * z_m * kz), 0))
        return u[m:m + self.size, m:m + self.size]

    def expose(self, o: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Hologram counts: interference with partial visibility, then the camera."""
        r = self.reference(o.shape)
        inten = np.abs(o) ** 2 + np.abs(r) ** 2 + 2 * self.visibility * np.real(o * np.conj(r))
        return self._camera(inten, rng)

    def _camera(self, inten: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.camera
        h, w = inten.shape
        crng = np.random.default_rng(c["seed"])  # fixed-pattern parts: same for every frame of this camera
        prnu = 1 + c["prnu"] * crng.standard_normal((h, w))
        col = c["column_offset"] * crng.standard_normal(w)[None, :]
        level = 1.3 * (1 + math.sqrt(self.ratio)) ** 2  # near-peak intensity of the empty field's fringes
        electrons = inten / level * c["fill"] * c["full_well"] * prnu
        e = rng.poisson(np.clip(electrons, 0, None)).astype(np.float64)
        e += c["read_noise"] * rng.standard_normal((h, w))
        top = (1 << c["bits"]) - 1
        adu = e * c["gain"] * top / c["full_well"] + c["black"] * top + col * top
        return np.clip(np.rint(adu), 0, top).astype(np.uint8 if c["bits"] == 8 else np.uint16)

    def background(self, rng: np.random.Generator) -> np.ndarray:
        return self.expose(self.object_wave(None, 0.0), rng)


def _upsample(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a small array to `shape` (a smooth random field)."""
    h, w = shape
    yi = np.linspace(0, a.shape[0] - 1, h)
    xi = np.linspace(0, a.shape[1] - 1, w)
    y0 = np.clip(yi.astype(int), 0, a.shape[0] - 2)
    x0 = np.clip(xi.astype(int), 0, a.shape[1] - 2)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a00, a01 = a[y0][:, x0], a[y0][:, x0 + 1]
    a10, a11 = a[y0 + 1][:, x0], a[y0 + 1][:, x0 + 1]
    return (1 - fy) * ((1 - fx) * a00 + fx * a01) + fy * ((1 - fx) * a10 + fx * a11)


def draw_microscope(rng: np.random.Generator, size: int = 512) -> Microscope:
    """A random microscope: NA 0.2–0.3, carrier 0.15–0.4 cycles/px in any direction, ratio 0.3–10, camera."""
    mag = float(rng.uniform(0.15, 0.4))
    ang = float(rng.uniform(0, 2 * np.pi))
    kind = "scmos" if rng.random() < 0.5 else "ccd"
    cam = {"kind": kind, "seed": int(rng.integers(1 << 30)),
           "bits": int(rng.choice([12, 16])) if kind == "scmos" else int(rng.choice([8, 10, 12, 14])),
           "full_well": float(rng.uniform(1e4, 3e4) if kind == "scmos" else rng.uniform(1.5e4, 4e4)),
           "read_noise": float(rng.uniform(1, 3) if kind == "scmos" else rng.uniform(6, 15)),
           "gain": float(rng.uniform(1, 2.5)), "fill": float(rng.uniform(0.2, 0.45)),
           "prnu": float(rng.uniform(0.003, 0.01)), "column_offset": float(rng.uniform(0, 0.003) if kind == "scmos"
                                                                           else 0.0),
           "black": float(rng.uniform(0.005, 0.05))}
    dust = [(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.8, 0.8)), float(rng.uniform(0.05, 0.2)),
             float(rng.uniform(0.02, 0.1))) for _ in range(int(rng.integers(0, 4)))]
    return Microscope(size=size, na=float(rng.uniform(0.2, 0.3)), carrier=(mag * math.sin(ang), mag * math.cos(ang)),
                      ratio=float(np.exp(rng.uniform(np.log(0.3), np.log(10)))),
                      visibility=float(rng.uniform(0.6, 1.0)), curvature=float(rng.uniform(-3, 3)), camera=cam,
                      illum_seed=int(rng.integers(1 << 30)), dust=dust)


@dataclass
class SimFrame:
    hologram: np.ndarray
    z_m: float
    kind: str


def render_frame(scope: Microscope, rng: np.random.Generator, z_m: float, kind: str | None = None) -> SimFrame:
    """One hologram of a new random specimen of `kind` (random when None) at defocus z_m."""
    kind = kind or str(rng.choice(KINDS))
    m = scope.margin
    g = (scope.size + 2 * m, scope.size + 2 * m)
    t = SPECIMENS[kind](rng, g, scope.pixel_m, scope.wavelength_m)
    return SimFrame(scope.expose(scope.object_wave(t, z_m), rng), float(z_m), kind)


def write_stack(path: str | Path, scope: Microscope, frames: list[SimFrame], background: np.ndarray | None) -> Path:
    """The app's HDF5 layout: /holograms (N,H,W), /z_m, optional /background, optics attributes (no sideband);
    the truth (sideband, kinds, camera) in attributes the app does not read as optics."""
    p = Path(path)
    h = np.stack([f.hologram for f in frames]).astype(np.uint16)
    with h5py.File(p, "w") as f:
        f.create_dataset("holograms", data=h, chunks=(1,) + h.shape[1:], compression="gzip")
        f.create_dataset("z_m", data=np.array([fr.z_m for fr in frames]))
        if background is not None:
            f.create_dataset("background", data=background.astype(np.uint16), compression="gzip")
        for k, v in scope.optics_attrs().items():
            f.attrs[k] = v
        f.attrs["simulator"] = "independent"
        f.attrs["true_sideband"] = scope.sideband
        f.attrs["true_carrier_cpp"] = np.asarray(scope.carrier)
        f.attrs["frame_kinds"] = ",".join(fr.kind for fr in frames)
        f.attrs["camera"] = scope.camera["kind"]
        f.attrs["beam_ratio"] = scope.ratio
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the stacks (one .h5 per microscope)")
    ap.add_argument("--scopes", type=int, default=6)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-background", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for s in range(a.scopes):
        rng = np.random.default_rng([a.seed, s])
        scope = draw_microscope(rng, a.size)
        frames = [render_frame(scope, rng, float(rng.uniform(*Z_RANGE_M))) for _ in range(a.frames)]
        bg = None if a.no_background else scope.background(rng)
        p = write_stack(out / f"scope{s}.h5", scope, frames, bg)
        print(f"{p}: sideband {scope.sideband}, |c| {math.hypot(*scope.carrier):.3f} c/px, NA {scope.na:.3f}, "
              f"ratio {scope.ratio:.2f}, {scope.camera['kind']} {scope.camera['bits']}-bit, "
              f"kinds {','.join(f.kind for f in frames)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
