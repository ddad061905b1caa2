"""Optics of a holographic microscope (mode, wavelength, object-space pixel, NA, z range, carrier, medium index),
the named presets the shipped models are trained for, and a human-readable comparison of two optics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from app.core.errors import BadInput

MODES = ("inline", "offaxis")


@dataclass(frozen=True)
class Optics:
    """SI units. `pixel_size_m` is the object-space pixel; `z_range_m` the defocus range searched/simulated;
    `carrier` the off-axis carrier (fy, fx) in cycles/pixel of the object sideband, None = detect it."""

    mode: str
    wavelength_m: float
    pixel_size_m: float
    na: float | None = None
    z_range_m: tuple[float, float] = (-46e-6, 46e-6)
    carrier: tuple[float, float] | None = None
    medium_index: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInput(f"optics: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for key in ("wavelength_m", "pixel_size_m"):
            v = getattr(self, key)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise BadInput(f"optics: {key} must be a positive number in metres, got {v!r}")
        if self.wavelength_m > 1e-4 or self.pixel_size_m > 1e-3:
            raise BadInput(f"optics: wavelength {self.wavelength_m!r} m / pixel {self.pixel_size_m!r} m look like "
                           "µm or nm values; give metres (e.g. 6.66e-07)")
        if self.na is not None and not (0 < self.na <= self.medium_index * 1.6):
            raise BadInput(f"optics: numerical aperture {self.na!r} is out of range")
        lo, hi = self.z_range_m
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise BadInput(f"optics: z range {self.z_range_m!r} must be (low, high) with low < high")
        if not (1.0 <= self.medium_index < 3.0):
            raise BadInput(f"optics: medium index {self.medium_index!r} is out of range")

    @property
    def wavenumber(self) -> float:
        return 2 * math.pi * self.medium_index / self.wavelength_m

    @property
    def depth_of_field_m(self) -> float | None:
        """Wave-optical depth of field n·λ/NA² (None when the NA is unknown)."""
        return None if not self.na else self.medium_index * self.wavelength_m / self.na ** 2

    def with_(self, **changes: Any) -> Optics:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["z_range_m"] = list(self.z_range_m)
        d["carrier"] = None if self.carrier is None else list(self.carrier)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "optics") -> Optics:
        """Build from a dict (HDF5 attrs, sidecar JSON, card); unknown keys are ignored, missing ones named."""
        missing = [k for k in ("mode", "wavelength_m", "pixel_size_m") if d.get(k) is None]
        if missing:
            raise BadInput(f"{source}: missing optics {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k not in known or v is None:
                continue
            if hasattr(v, "tolist"):
                v = v.tolist()
            if isinstance(v, bytes):
                v = v.decode()
            if k in ("z_range_m", "carrier"):
                v = tuple(float(x) for x in v)
            elif k in ("wavelength_m", "pixel_size_m", "na", "medium_index"):
                v = float(v)
            kw[k] = v
        try:
            return cls(**kw)
        except (TypeError, ValueError) as e:
            raise BadInput(f"{source}: bad optics ({e})") from None


@dataclass(frozen=True)
class Preset:
    """Named optics plus the ranges the simulator varies for that microscope."""

    optics: Optics
    na_range: tuple[float, float] | None
    carrier_cpp_range: tuple[float, float] | None  # |carrier| in cycles/pixel (off-axis)
    sizes: tuple[int, ...]
    note: str = ""


PRESETS: dict[str, Preset] = {
    "dhm-offaxis-10x": Preset(
        Optics("offaxis", 666e-9, 0.5e-6, na=0.25, z_range_m=(-46e-6, 46e-6), name="dhm-offaxis-10x"),
        na_range=(0.2, 0.3), carrier_cpp_range=(0.15, 0.3), sizes=(512, 1024),
        note="off-axis DHM, 10x objective, object-space pixel 0.5 µm (cf. Cuenat et al. 2022)"),
    "inline-lensless": Preset(
        Optics("inline", 630e-9, 1.0e-6, na=None, z_range_m=(1e-3, 20e-3), name="inline-lensless"),
        na_range=None, carrier_cpp_range=None, sizes=(512, 1024),
        note="in-line lensless (Gabor) holography, sensor pixel 1 µm, object-to-sensor 1–20 mm"),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInput(f"unknown optics preset {name!r}; known: {', '.join(PRESETS)}") from None


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def optics_mismatch(a: Optics, b: Optics, rtol: float = 0.02) -> list[str]:
    """Differences between two optics that matter to a model or reconstruction, one sentence each (empty = match).
    `a` is typically the stream's optics and `b` the model card's."""
    out: list[str] = []
    if a.mode != b.mode:
        out.append(f"mode {a.mode} vs {b.mode}")
    if _rel(a.wavelength_m, b.wavelength_m) > rtol:
        out.append(f"wavelength {a.wavelength_m * 1e9:.0f} nm vs {b.wavelength_m * 1e9:.0f} nm")
    if _rel(a.pixel_size_m, b.pixel_size_m) > rtol:
        out.append(f"pixel size {a.pixel_size_m * 1e6:.3g} µm vs {b.pixel_size_m * 1e6:.3g} µm")
    if a.na and b.na and _rel(a.na, b.na) > 0.1:
        out.append(f"NA {a.na:.2f} vs {b.na:.2f}")
    if _rel(a.medium_index, b.medium_index) > 1e-3:
        out.append(f"medium index {a.medium_index:.3f} vs {b.medium_index:.3f}")
    (alo, ahi), (blo, bhi) = a.z_range_m, b.z_range_m
    if alo < blo - 1e-9 or ahi > bhi + 1e-9:
        unit, s = ("mm", 1e3) if max(abs(blo), abs(bhi)) > 1e-3 else ("µm", 1e6)
        out.append(f"z range {alo * s:g}…{ahi * s:g} {unit} exceeds {blo * s:g}…{bhi * s:g} {unit}")
    return out
