"""Optics of a holographic microscope (mode, wavelength, object-space pixel, NA, z range, carrier, medium index,
which sideband is the object wave), validated; the named presets the shipped models are trained for; a comparison."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from app.core.errors import BadInput

MODES = ("inline", "offaxis")
# Which off-axis sideband holds the object wave O·R* (the other holds its conjugate, whose focus lies at −z):
# "+1" the one in the kx ≥ 0 half plane of the spectrum (or the given carrier), "-1" its mirror image, "auto"
# decided from the specimen. None (not stated) behaves as "+1". It is a property of the microscope (the reference
# beam's tilt), not of the specimen.
SIDEBANDS = ("+1", "-1", "auto")
# Plausible ranges (SI units); values outside are rejected as typos or unit mistakes.
WAVELENGTH_RANGE_M = (100e-9, 20e-6)
PIXEL_RANGE_M = (10e-9, 100e-6)
NA_RANGE = (0.01, 1.7)
Z_LIMIT_M = 1.0
MEDIUM_INDEX_RANGE = (1.0, 3.0)


def _number(key: str, v: Any, source: str) -> float:
    """A real finite scalar (no bool, complex, string, array) or a one-line BadInput."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise BadInput(f"{source}: {key} must be a real number, got {_show(v)}")
    return float(v)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _pair(key: str, v: Any, source: str) -> tuple[float, float]:
    if isinstance(v, str | bytes) or not isinstance(v, list | tuple):
        raise BadInput(f"{source}: {key} must be a pair of numbers [a, b], got {_show(v)}")
    if len(v) != 2:
        raise BadInput(f"{source}: {key} must be a pair of numbers [a, b], got {len(v)} value(s)")
    a, b = (_number(key, x, source) for x in v)
    return a, b


def sideband_name(v: Any, source: str = "optics") -> str | None:
    """Normalise a sideband value: "+1"/"-1"/"auto" (also 1, -1, "+", "-", "1"), None when absent."""
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, bool):
        raise BadInput(f"{source}: sideband must be one of {', '.join(SIDEBANDS)}, got {v!r}")
    if isinstance(v, int | float) and v in (1, -1):
        return "+1" if v > 0 else "-1"
    if isinstance(v, str):
        t = v.strip().lower()
        alias = {"+1": "+1", "1": "+1", "+": "+1", "-1": "-1", "-": "-1", "auto": "auto"}
        if t in alias:
            return alias[t]
    raise BadInput(f"{source}: sideband must be one of {', '.join(SIDEBANDS)}, got {_show(v)}")


@dataclass(frozen=True)
class Optics:
    """SI units. `pixel_size_m` is the object-space pixel; `z_range_m` the defocus range searched/simulated;
    `carrier` the off-axis carrier (fy, fx) in cycles/pixel, None = detect it (the kx ≥ 0 peak); `sideband` which
    of the two conjugate sidebands is the object wave: "+1" that carrier, "-1" its mirror (−fy, −fx), "auto" decide
    from the specimen, None = not stated (as "+1"). Off-axis only."""

    mode: str
    wavelength_m: float
    pixel_size_m: float
    na: float | None = None
    z_range_m: tuple[float, float] = (-46e-6, 46e-6)
    carrier: tuple[float, float] | None = None
    medium_index: float = 1.0
    name: str = ""
    sideband: str | None = None

    def __post_init__(self) -> None:
        for key in ("wavelength_m", "pixel_size_m", "na", "medium_index"):  # numpy scalars → float
            v = getattr(self, key)
            if getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
                object.__setattr__(self, key, v.item())
        for key in ("z_range_m", "carrier"):  # lists (JSON, TOML) → tuples
            v = getattr(self, key)
            if isinstance(v, list):
                object.__setattr__(self, key, tuple(v))
        object.__setattr__(self, "sideband", sideband_name(self.sideband))
        check_optics(self, "optics")

    @property
    def sideband_sign(self) -> int:
        """−1 when the object wave is the mirror of the reference sideband ("-1"), else +1 (also "auto"/None)."""
        return -1 if self.sideband == "-1" else 1

    def flipped(self) -> Optics:
        """The same optics with the other sideband as the object wave (z mirrored)."""
        return replace(self, sideband="+1" if self.sideband_sign < 0 else "-1")

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
        """Build from a dict (HDF5 attrs, sidecar JSON, card): unknown keys are ignored, missing ones named, and
        wrong types/shapes (complex, arrays, strings, lists where a number belongs; a scalar or 1-element z range
        or carrier) or implausible values are one-line BadInput errors naming the plausible range."""
        if not isinstance(d, dict):
            raise BadInput(f"{source}: optics must be a mapping of names to values, got {type(d).__name__}")
        missing = [k for k in ("mode", "wavelength_m", "pixel_size_m") if d.get(k) is None]
        if missing:
            raise BadInput(f"{source}: missing optics {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k not in known or v is None:
                continue
            if hasattr(v, "tolist"):  # numpy scalars and arrays (HDF5 attributes)
                v = v.tolist()
            if isinstance(v, bytes):
                try:
                    v = v.decode()
                except UnicodeDecodeError:
                    raise BadInput(f"{source}: {k} is not readable text") from None
            if k in ("z_range_m", "carrier"):
                v = _pair(k, v, source)
            elif k in ("wavelength_m", "pixel_size_m", "na", "medium_index"):
                v = _number(k, v, source)
            elif k in ("mode", "name") and not isinstance(v, str):
                raise BadInput(f"{source}: {k} must be text, got {_show(v)}")
            elif k == "sideband":
                v = sideband_name(v, source)
            kw[k] = v
        return _build(cls, kw, source)


def _build(cls: type[Optics], kw: dict[str, Any], source: str) -> Optics:
    try:
        return cls(**kw)
    except BadInput as e:
        msg = str(e)
        raise BadInput(msg.replace("optics:", f"{source}:", 1) if msg.startswith("optics:") else msg) from None


def check_optics(o: Optics, source: str = "optics") -> Optics:
    """Validate every field of `o` (types, shapes, plausible physical ranges); returns it, else one-line BadInput."""
    if not isinstance(o.mode, str) or o.mode not in MODES:
        raise BadInput(f"{source}: mode must be one of {', '.join(MODES)}, got {_show(o.mode)}")
    wl = _number("wavelength_m", o.wavelength_m, source)
    px = _number("pixel_size_m", o.pixel_size_m, source)
    lo_w, hi_w = WAVELENGTH_RANGE_M
    if not lo_w <= wl <= hi_w:
        hint = " (looks like µm or nm; give metres, e.g. 6.66e-07)" if wl > 1e-4 else ""
        raise BadInput(f"{source}: wavelength {wl:g} m is outside the plausible {lo_w * 1e9:g} nm – "
                       f"{hi_w * 1e6:g} µm{hint}")
    lo_p, hi_p = PIXEL_RANGE_M
    if not lo_p <= px <= hi_p:
        hint = " (looks like µm or nm; give metres, e.g. 5e-07)" if px > 1e-3 else ""
        raise BadInput(f"{source}: pixel size {px:g} m is outside the plausible {lo_p * 1e9:g} nm – "
                       f"{hi_p * 1e6:g} µm{hint}")
    n = _number("medium_index", o.medium_index, source)
    if not MEDIUM_INDEX_RANGE[0] <= n < MEDIUM_INDEX_RANGE[1]:
        raise BadInput(f"{source}: medium index {n:g} is outside the plausible {MEDIUM_INDEX_RANGE[0]:g} – "
                       f"{MEDIUM_INDEX_RANGE[1]:g}")
    if o.na is not None:
        na = _number("na", o.na, source)
        if not NA_RANGE[0] <= na <= NA_RANGE[1]:
            raise BadInput(f"{source}: numerical aperture {na:g} is outside the plausible {NA_RANGE[0]:g} – "
                           f"{NA_RANGE[1]:g}")
    if not isinstance(o.z_range_m, tuple):
        raise BadInput(f"{source}: z_range_m must be a pair of numbers [low, high], got {_show(o.z_range_m)}")
    lo, hi = _pair("z_range_m", o.z_range_m, source)
    if not (lo < hi and max(abs(lo), abs(hi)) <= Z_LIMIT_M):
        raise BadInput(f"{source}: z range {lo:g} … {hi:g} m must be low < high within ±{Z_LIMIT_M:g} m "
                       "(e.g. -4.6e-05 4.6e-05)")
    if o.carrier is not None:
        if not isinstance(o.carrier, tuple):
            raise BadInput(f"{source}: carrier must be a pair (fy, fx) in cycles/pixel, got {_show(o.carrier)}")
        cy, cx = _pair("carrier", o.carrier, source)
        if not 0.02 <= math.hypot(cy, cx) <= 0.5 * math.sqrt(2):
            raise BadInput(f"{source}: carrier ({cy:g}, {cx:g}) cycles/pixel: its magnitude must lie in the "
                           "plausible 0.02 – 0.7 (Nyquist)")
    if o.sideband is not None and o.sideband not in SIDEBANDS:
        raise BadInput(f"{source}: sideband must be one of {', '.join(SIDEBANDS)}, got {_show(o.sideband)}")
    if not isinstance(o.name, str):
        raise BadInput(f"{source}: name must be text, got {_show(o.name)}")
    return o


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
