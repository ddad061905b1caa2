"""Hologram stacks in HDF5 (docs/formats.md): /holograms (N,H,W) uint16|float32, /z_m (N,), optional /background
(H,W), root attrs wavelength_m, pixel_size_m, mode. Reading validates and fails with one-line BadInput errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from app.core.errors import BadInput
from app.core.io.images import MAX_PIXELS
from app.core.validate import FLOAT32_MAX

from .memory import available_bytes, human_bytes
from .optics import Optics

log = logging.getLogger(__name__)

REQUIRED_ATTRS = ("wavelength_m", "pixel_size_m", "mode")
EAGER_FRACTION = 0.25  # a stack is read whole only when it takes at most this share of the available memory
MIN_STORED_RATIO = 1e-4  # stored/declared bytes below this: a dataset that declares far more than it holds


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
    """NaN/inf, and float64 values beyond float32's range (processing is in float32: they would become inf)."""
    if a.dtype.kind != "f" or not a.size:
        return
    if not np.isfinite(a).all():
        raise BadInput(f"{p}: /{name} holds NaN or infinite values")
    if a.dtype.itemsize > 4:
        peak = float(np.max(np.abs(a)))
        if peak > FLOAT32_MAX:
            raise BadInput(f"{p}: /{name} holds values up to {peak:.3g}, beyond the float32 range "
                           f"({FLOAT32_MAX:.3g}) the reconstruction computes in")


def _dataset(p: Path, f: h5py.File, name: str, required: bool) -> h5py.Dataset | None:
    """/name as a dataset, saying what is wrong with a missing entry, a dangling link or a group."""
    link = f.get(name, getlink=True)
    if link is None:
        if required:
            raise BadInput(f"{p}: missing dataset /{name}")
        return None
    if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
        target = link.path if isinstance(link, h5py.SoftLink) else f"{link.filename}:{link.path}"
        try:
            obj = f[name]
        except (KeyError, OSError):
            raise BadInput(f"{p}: /{name} is a link to {target}, which does not exist") from None
    else:
        obj = f[name]
    if not isinstance(obj, h5py.Dataset):
        raise BadInput(f"{p}: /{name} is a group, not a dataset")
    return obj


def _numbers(p: Path, d: h5py.Dataset, what: str) -> np.ndarray:
    """A small dataset (z_m, background) read as numbers; one line naming the dataset when it holds text etc."""
    if d.dtype.kind not in "uif":
        kind = "text" if d.dtype.kind in "SUO" else f"{d.dtype} values"
        raise BadInput(f"{p}: /{d.name.lstrip('/')} must hold numbers ({what}), got {kind}")
    return np.asarray(d[()])


def _shape_text(shape: tuple[int, ...], dtype: np.dtype) -> str:
    n, h, w = shape
    return f"{n} frames of {w}x{h} {dtype}"


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
            d = _dataset(p, f, "holograms", required=True)
            if d.ndim != 3:
                raise BadInput(f"{p}: /holograms must be (N,H,W), got rank {d.ndim} shape {d.shape}")
            if d.dtype.kind not in "uif":
                raise BadInput(f"{p}: /holograms has unsupported dtype {d.dtype}")
            n, hh, ww = d.shape
            if n == 0 or hh < 16 or ww < 16:
                raise BadInput(f"{p}: /holograms shape {d.shape} holds no usable frame")
            if hh * ww > MAX_PIXELS:
                raise BadInput(f"{p}: frames of {ww}x{hh} ({hh * ww / 1e6:.0f} megapixels) are larger than the "
                               f"{MAX_PIXELS / 1e6:.0f}-megapixel limit; refused")
            self._check_stored(d)
            self.z_m = None
            zd = _dataset(p, f, "z_m", required=False)
            if zd is not None:
                z = _numbers(p, zd, "metres").astype(np.float64).reshape(-1)
                if len(z) != n:
                    raise BadInput(f"{p}: /z_m has {len(z)} values for {n} holograms")
                _check_values(p, "z_m", z)
                self.z_m = z
            self.background = None
            bd = _dataset(p, f, "background", required=False)
            if bd is not None:
                b = _numbers(p, bd, "a hologram without specimen")
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

    def _check_stored(self, d: h5py.Dataset) -> None:
        """Refuse a dataset that declares far more than the file stores (chunks never written read as the fill
        value: a 10^6-frame declaration in a few KB is not a recording)."""
        declared = int(np.prod(d.shape, dtype=np.float64) * d.dtype.itemsize)
        if declared < 64 * 2 ** 20 or d.chunks is None:
            return
        stored = int(d.id.get_storage_size())
        if stored < declared * MIN_STORED_RATIO:
            raise BadInput(f"{self.path}: /holograms declares {_shape_text(d.shape, d.dtype)} "
                           f"({human_bytes(declared)}) but the file stores only {stored / 1e6:.3g} MB of them "
                           "(empty or cut-short dataset)")

    @property
    def declared_bytes(self) -> int:
        """Bytes of the whole /holograms dataset as declared (what reading it at once would allocate)."""
        return int(np.prod(self._d.shape, dtype=np.float64) * self._d.dtype.itemsize)

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
        """The whole stack in memory; refused (one line) when it would take more than EAGER_FRACTION of the
        memory available (use `frames()` to read it frame by frame)."""
        need, avail = self.declared_bytes, available_bytes()
        if need > EAGER_FRACTION * avail:
            raise BadInput(f"{self.path}: /holograms declares {_shape_text(self._d.shape, self._d.dtype)} "
                           f"({human_bytes(need)}), more than this machine can hold ({human_bytes(avail)} available)")
        try:
            h = np.asarray(self._d[()])
        except (OSError, RuntimeError, ValueError) as e:
            raise BadInput(f"{self.path}: /holograms cannot be read (corrupt or truncated: "
                           f"{type(e).__name__})") from None
        _check_values(self.path, "holograms", h)
        return HoloStack(h, self.optics, self.z_m, self.background, self.attrs, str(self.path))

    def frames(self) -> LazyFrames:
        """The frames, read one at a time on access (the file stays open until `close`)."""
        return LazyFrames(self)

    def load(self) -> HoloStack:
        """The stack with its frames in memory when they fit comfortably, else read lazily (LazyFrames)."""
        if self.declared_bytes <= EAGER_FRACTION * available_bytes():
            return self.read_all()
        log.info("%s: %s read frame by frame", self.path, _shape_text(self._d.shape, self._d.dtype))
        return HoloStack(self.frames(), self.optics, self.z_m, self.background, self.attrs,  # type: ignore[arg-type]
                         str(self.path))

    def close(self) -> None:
        try:
            self._f.close()
        except Exception:  # closing a broken file must not mask the original error
            pass

    def __enter__(self) -> StackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LazyFrames:
    """Array-like (N,H,W) view of an open StackReader: len, shape, ndim, dtype, iteration, an index or a slice
    (read on access, each frame validated); enough for the CLI's frame-by-frame loops."""

    def __init__(self, reader: StackReader) -> None:
        self._r = reader
        self.shape = (len(reader), *reader.shape)
        self.dtype = reader._d.dtype
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int | slice) -> np.ndarray:
        if isinstance(i, slice):
            return np.stack([self._r.frame(k) for k in range(*i.indices(len(self)))])
        k = int(i)
        if not -len(self) <= k < len(self):
            raise IndexError(f"frame {k} of {len(self)}")
        return self._r.frame(k % len(self))

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in range(len(self)):
            yield self._r.frame(k)


def read_stack(path: str | Path, optics: Optics | dict[str, Any] | None = None) -> HoloStack:
    """Read and validate a whole stack (optics from the file's attrs unless given)."""
    with StackReader(path, optics) as r:
        return r.read_all()
