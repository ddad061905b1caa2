"""What the live view changes about a stream without touching its source: the z range searched by the autofocus
and the background hologram, applied to the source's optics, its frames and its background (Qt-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import BadInput
from app.core.frames import Frame

from .hdf5 import StackReader
from .optics import Optics
from .readers import HDF5_SUFFIXES, IMAGE_SUFFIXES, read_image_frames

STREAM_BACKGROUND = "stream"  # use the source's own background (recorded, sidecar or none)
NO_BACKGROUND = "none"  # ignore the source's background: off-axis fields are estimated from each frame


class OverriddenSource:
    """`source` with its optics' z range replaced by `z_range_m` (None: keep it) and its background replaced by
    `background` (an array, NO_BACKGROUND, or STREAM_BACKGROUND to keep it); every frame carries the same optics
    object as the source, so the engine never sees frames that disagree with their stream."""

    def __init__(self, source: Any, z_range_m: tuple[float, float] | None = None,
                 background: np.ndarray | str = STREAM_BACKGROUND) -> None:
        self.inner = source
        self.name = source.name
        base = getattr(source, "optics", None)
        self.source_optics: Optics | None = base if isinstance(base, Optics) else None
        self.optics = self.source_optics
        if self.optics is not None and z_range_m is not None:
            self.optics = self.optics.with_(z_range_m=(float(z_range_m[0]), float(z_range_m[1])))
        own = getattr(source, "background", None)
        self.own_background: np.ndarray | None = own
        if isinstance(background, np.ndarray):
            self.background: np.ndarray | None = background
        else:
            self.background = None if background == NO_BACKGROUND else own

    def read(self) -> Frame | None:
        f = self.inner.read()
        if f is None or self.optics is None:
            return f
        o = f.meta.get("optics")
        if isinstance(o, Optics) and o != self.optics:
            f.meta["optics"] = self.optics if o == self.source_optics else o.with_(z_range_m=self.optics.z_range_m)
        return f

    def close(self) -> None:
        self.inner.close()


def load_background(path: str | Path) -> np.ndarray:
    """A background hologram (recorded without the specimen) from an image file (a stack: its mean) or an HDF5
    stack (its /background, else the mean of its holograms); BadInput with one line when it cannot be used."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        r = StackReader(p, {"mode": "inline", "wavelength_m": 500e-9, "pixel_size_m": 1e-6})
        try:
            if r.background is not None:
                return np.asarray(r.background, np.float32)
            n = min(len(r), 64)
            return np.mean([np.asarray(r.frame(i), np.float32) for i in range(n)], axis=0)
        finally:
            r.close()
    if suffix not in IMAGE_SUFFIXES:
        kind = suffix or "a file without a suffix"
        raise BadInput(f"{p}: a background must be an image (TIFF, PNG, ...) or an HDF5 stack, not {kind}")
    pages = read_image_frames(p)
    return np.asarray(pages[0] if len(pages) == 1 else pages.astype(np.float32).mean(0), np.float32)


def check_background(background: np.ndarray, frame_shape: tuple[int, ...] | None) -> None:
    """BadInput when `background` is not one 2-D image of the stream's frame shape (when that is known)."""
    if background.ndim != 2:
        raise BadInput(f"the background must be one grayscale image, got an array of shape {background.shape}")
    if frame_shape is not None and tuple(background.shape) != tuple(frame_shape[:2]):
        raise BadInput(f"the background is {background.shape[1]}×{background.shape[0]} px but the stream's frames "
                       f"are {frame_shape[1]}×{frame_shape[0]}: record it with the same camera settings")
