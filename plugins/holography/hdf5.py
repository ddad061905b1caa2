"""Hologram stacks in HDF5 (DESIGN §3.2): /holograms (N,H,W) uint16|float32, /z_m (N,), optional /background
(H,W), root attrs wavelength_m, pixel_size_m, mode. Reading validates and fails with one-line BadInput errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from app.core.errors import BadInput

from .optics import Optics

log = logging.getLogger(__name__)

REQUIRED_ATTRS = ("wavelength_m", "pixel_size_m", "mode")


@dataclass
class HoloStack:
    """Frames (N,H,W) in their stored dtype, optics, optional ground-truth z and background, extra attrs."""

    holograms: np.ndarray
    optics: Optics
    z_m: np.ndarray | None = None
    background: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.holograms)


def _attr_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_stack(path: str | Path, holograms: np.ndarray, optics: Optics | dict[str, Any],
                z_m: np.ndarray | None = None, background: np.ndarray | None = None,
                attrs: dict[str, Any] | None = None, compression: str | None = "gzip") -> Path:
    """Write a stack; uint8 frames are stored as uint16, other non-float32 floats as float32."""
    p = Path(path)
    h = np.asarray(holograms)
    if h.ndim == 2:
        h = h[None]
    if h.ndim != 3:
        raise BadInput(f"{p}: holograms must be (N,H,W), got shape {h.shape}")
    h = h.astype(np.uint16) if h.dtype.kind in "ui" else h.astype(np.float32)
    opt = optics.to_dict() if isinstance(optics, Optics) else dict(optics)
    tmp = p.with_name(p.name + ".part")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("holograms", data=h, chunks=(1,) + h.shape[1:], compression=compression)
        if z_m is not None:
            z = np.asarray(z_m, np.float64).reshape(-1)
            if len(z) != len(h):
                raise BadInput(f"{p}: {len(z)} z values for {len(h)} holograms")
            f.create_dataset("z_m", data=z)
        if background is not None:
            b = np.asarray(background)
            if b.shape != h.shape[1:]:
                raise BadInput(f"{p}: background {b.shape} does not match frames {h.shape[1:]}")
            f.create_dataset("background", data=b.astype(h.dtype), compression=compression)
        for k, v in {**(attrs or {}), **opt}.items():
            if v is None:
                continue
            if isinstance(v, list | tuple):
                v = np.asarray(v)
            f.attrs[k] = v
    tmp.replace(p)
    log.info("wrote %s: %d frames %s %s", p, len(h), h.shape[1:], h.dtype)
    return p


def _open(p: Path) -> h5py.File:
    if not p.exists():
        raise BadInput(f"{p}: no such file")
    if p.is_dir():
        raise BadInput(f"{p}: is a folder, not an HDF5 file")
    try:
        return h5py.File(p, "r")
    except OSError as e:
        msg = str(e)
        if "truncated" in msg:
            raise BadInput(f"{p}: truncated HDF5 file (incomplete copy or interrupted write?)") from None
        if "signature" in msg:
            raise BadInput(f"{p}: not an HDF5 file") from None
        raise BadInput(f"{p}: not a readable HDF5 file (corrupt)") from None


def _check_values(p: Path, name: str, a: np.ndarray) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise BadInput(f"{p}: /{name} holds NaN or infinite values")


class StackReader:
    """Lazy access to an HDF5 stack (frames read one at a time); structure and optics validated on open."""

    def __init__(self, path: str | Path, optics: Optics | dict[str, Any] | None = None) -> None:
        """`optics`: an Optics to use as is, or a dict of values overriding the file's attributes."""
        self.path = p = Path(path)
        self._f = _open(p)
        try:
            self._validate(optics)
        except BaseException:
            self._f.close()
            raise

    def _validate(self, optics: Optics | dict[str, Any] | None) -> None:
        p, f = self.path, self._f
        try:
            if "holograms" not in f:
                raise BadInput(f"{p}: missing dataset /holograms")
            d = f["holograms"]
            if not isinstance(d, h5py.Dataset):
                raise BadInput(f"{p}: /holograms is not a dataset")
            if d.ndim != 3:
                raise BadInput(f"{p}: /holograms must be (N,H,W), got rank {d.ndim} shape {d.shape}")
            if d.dtype.kind not in "uif":
                raise BadInput(f"{p}: /holograms has unsupported dtype {d.dtype}")
            n, hh, ww = d.shape
            if n == 0 or hh < 16 or ww < 16:
                raise BadInput(f"{p}: /holograms shape {d.shape} holds no usable frame")
            self.z_m = None
            if "z_m" in f:
                z = np.asarray(f["z_m"][()], np.float64).reshape(-1)
                if len(z) != n:
                    raise BadInput(f"{p}: /z_m has {len(z)} values for {n} holograms")
                _check_values(p, "z_m", z)
                self.z_m = z
            self.background = None
            if "background" in f:
                b = np.asarray(f["background"][()])
                if b.shape != (hh, ww):
                    raise BadInput(f"{p}: /background {b.shape} does not match frames {(hh, ww)}")
                _check_values(p, "background", b)
                self.background = b
            self.attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
            if not isinstance(optics, Optics):
                merged = {**self.attrs, **{k: v for k, v in (optics or {}).items() if v is not None}}
                missing = [k for k in REQUIRED_ATTRS if merged.get(k) is None]
                if missing:
                    raise BadInput(f"{p}: missing optics attribute(s) {', '.join(missing)}")
                optics = Optics.from_dict(merged, source=str(p))
            self.optics = optics
            self._d = d
        except BadInput:
            raise
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise BadInput(f"{p}: corrupt or truncated HDF5 file ({type(e).__name__})") from None

    def __len__(self) -> int:
        return int(self._d.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self._d.shape[1]), int(self._d.shape[2])

    def frame(self, i: int) -> np.ndarray:
        try:
            a = np.asarray(self._d[i])
        except (OSError, RuntimeError, ValueError) as e:
            raise BadInput(f"{self.path}: frame {i} cannot be read (corrupt or truncated: "
                           f"{type(e).__name__})") from None
        _check_values(self.path, f"holograms[{i}]", a)
        return a

    def read_all(self) -> HoloStack:
        try:
            h = np.asarray(self._d[()])
        except (OSError, RuntimeError, ValueError) as e:
            raise BadInput(f"{self.path}: /holograms cannot be read (corrupt or truncated: "
                           f"{type(e).__name__})") from None
        _check_values(self.path, "holograms", h)
        return HoloStack(h, self.optics, self.z_m, self.background, self.attrs, str(self.path))

    def close(self) -> None:
        try:
            self._f.close()
        except Exception:  # closing a broken file must not mask the original error
            pass

    def __enter__(self) -> StackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_stack(path: str | Path, optics: Optics | dict[str, Any] | None = None) -> HoloStack:
    """Read and validate a whole stack (optics from the file's attrs unless given)."""
    with StackReader(path, optics) as r:
        return r.read_all()
