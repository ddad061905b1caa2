"""Hologram FrameSources — HDF5 replay, TIFF/image folder, video, OpenCV camera, simulated camera (z drifting at a
chosen speed, paced at a chosen fps); frames carry meta["optics"] and, when known, meta["z_true_m"]."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.core.errors import BadInput
from app.core.frames import Frame, Pacer

from .hdf5 import StackReader
from .optics import Optics, preset
from .physics import Scene, camera, draw_session
from .readers import (
    HDF5_SUFFIXES,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    folder_images,
    load_sidecar,
    quiet_cv2,
    read_image_frames,
    resolve_optics,
    sidecar_background,
    to_gray,
)

log = logging.getLogger(__name__)


class _Base:
    name = "holograms"
    optics: Optics
    background: np.ndarray | None = None

    def _frame(self, i: int, data: np.ndarray, **meta: Any) -> Frame:
        return Frame(i, data, meta={"optics": self.optics, "source": self.name, **meta})


class HDF5Source(_Base):
    """Replays an HDF5 stack frame by frame (optionally paced at `fps`, optionally looped)."""

    def __init__(self, path: str | Path, fps: float | None = None, loop: bool = False,
                 optics: Optics | dict[str, Any] | None = None) -> None:
        self._r = StackReader(path, optics)
        self.name = f"hdf5:{Path(path).name}"
        self.optics = self._r.optics
        self.background = self._r.background
        self.loop = loop
        self._pacer = Pacer(fps)
        self._i = 0

    def __len__(self) -> int:
        return len(self._r)

    def read(self) -> Frame | None:
        n = len(self._r)
        if self._i >= n and not self.loop:
            return None
        j = self._i % n
        data = self._r.frame(j)
        self._pacer.wait()
        meta: dict[str, Any] = {"stack_index": j}
        if self._r.z_m is not None:
            meta["z_true_m"] = float(self._r.z_m[j])
        f = self._frame(self._i, data, **meta)
        self._i += 1
        return f

    def close(self) -> None:
        self._r.close()


class ImageSource(_Base):
    """A TIFF stack (all pages), a single PNG/JPEG/BMP/TIFF, or an image folder (read lazily, sorted by name)."""

    def __init__(self, path: str | Path, optics: Optics | dict[str, Any] | None = None, fps: float | None = None,
                 loop: bool = False, background: np.ndarray | None = None) -> None:
        p = Path(path)
        if not p.exists():
            raise BadInput(f"{p}: no such file or folder")
        self.name = f"images:{p.name}"
        self.optics = resolve_optics(p, optics)
        sidecar = load_sidecar(p)
        self.background = background if background is not None else sidecar_background(p, sidecar)
        z = sidecar.get("z_m")
        if p.is_dir():
            self._files = folder_images(p)  # numeric order; a Koala-style sequence folder's Holograms/
            self._frames: np.ndarray | None = None
            n = len(self._files)
        else:
            self._frames = read_image_frames(p)
            n = len(self._frames)
        self._z = None if z is None else np.asarray(z, np.float64).reshape(-1)
        if self._z is not None and len(self._z) != n:
            raise BadInput(f"{p}: sidecar has {len(self._z)} z values for {n} frames")
        self._n = n
        self.loop = loop
        self._pacer = Pacer(fps)
        self._i = 0
        self._shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return self._n

    def read(self) -> Frame | None:
        if self._i >= self._n and not self.loop:
            return None
        j = self._i % self._n
        if self._frames is not None:
            data = self._frames[j]
        else:
            pages = read_image_frames(self._files[j])
            data = pages[0]
            if self._shape is not None and data.shape != self._shape:
                raise BadInput(f"{self._files[j]}: size {data.shape} differs from the first image {self._shape}")
            self._shape = data.shape
        self._pacer.wait()
        meta: dict[str, Any] = {"stack_index": j}
        if self._z is not None:
            meta["z_true_m"] = float(self._z[j])
        f = self._frame(self._i, data, **meta)
        self._i += 1
        return f

    def close(self) -> None:
        self._frames = None


class _CaptureSource(_Base):
    """An OpenCV capture read frame by frame: grayscale frames numbered from 0; `close()` releases it."""

    _cap: cv2.VideoCapture | None
    _i: int

    def _next_frame(self, img: np.ndarray) -> Frame:
        f = self._frame(self._i, to_gray(img))
        self._i += 1
        return f

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoSource(_CaptureSource):
    """Frames of a video file, grayscale; paced at `fps` (default: the file's rate when `realtime`)."""

    def __init__(self, path: str | Path, optics: Optics | dict[str, Any] | None = None, fps: float | None = None,
                 loop: bool = False, realtime: bool = False, background: np.ndarray | None = None) -> None:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"{p}: no such file")
        if p.suffix.lower() not in VIDEO_SUFFIXES:
            raise BadInput(f"{p}: unsupported video type {p.suffix or '(none)'}")
        self.path = p
        self.name = f"video:{p.name}"
        self.optics = resolve_optics(p, optics)
        self.background = background if background is not None else sidecar_background(p, load_sidecar(p))
        with quiet_cv2():
            self._cap = cv2.VideoCapture(str(p))
        if not self._cap.isOpened():
            raise BadInput(f"{p}: not a readable video (corrupt, truncated or unsupported codec)")
        file_fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._pacer = Pacer(fps or (file_fps if realtime and file_fps > 0 else None))
        self.loop = loop
        self._i = 0

    def read(self) -> Frame | None:
        if self._cap is None:
            return None
        ok, img = self._cap.read()
        if not ok and self.loop and self._i > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = self._cap.read()
        if not ok:
            return None
        self._pacer.wait()
        return self._next_frame(img)


class CameraSource(_CaptureSource):
    """An OpenCV camera by index (frames converted to grayscale, paced by the camera itself)."""

    def __init__(self, index: int, optics: Optics, background: np.ndarray | None = None,
                 backend: int = cv2.CAP_ANY) -> None:
        self.name = f"camera:{index}"
        self.optics = optics
        self.background = background
        with quiet_cv2():  # our one-line error says it all
            cap = cv2.VideoCapture(int(index), backend)
        if not cap.isOpened():
            cap.release()
            raise BadInput(f"camera {index}: not found or busy (no such device, or another program is using it)")
        self._cap: cv2.VideoCapture | None = cap
        self._i = 0

    def read(self) -> Frame | None:
        if self._cap is None:
            return None
        ok, img = self._cap.read()
        if not ok:
            log.warning("%s: no frame (camera unplugged?)", self.name)
            return None
        return self._next_frame(img)


def triangle_z(t: float, z0: float, speed: float, lo: float, hi: float) -> float:
    """Position at time t of a point starting at z0 and bouncing between lo and hi at constant speed."""
    span = hi - lo
    if span <= 0 or speed == 0:
        return z0
    s = (z0 - lo + speed * t) % (2 * span)
    return lo + (s if s <= span else 2 * span - s)


class SimulatedCamera(_Base):
    """A simulated DHM camera: one specimen of `kind` whose defocus drifts at `speed_m_s` (bouncing inside the
    preset's z range shrunk by `margin`), `fps` frames per second, camera noise; meta["z_true_m"] is the truth.
    Deterministic given `seed` (frame i is at time i/fps)."""

    def __init__(self, preset_name: str = "dhm-offaxis-10x", size: int | tuple[int, int] = 512, fps: float = 20.0,
                 speed_m_s: float = 5e-6, seed: int = 0, mode: str | None = None, kind: str = "cells",
                 z0_m: float | None = None, margin: float = 0.1, n_frames: int | None = None,
                 paced: bool = True) -> None:
        p = preset(preset_name)
        self.name = f"sim:{preset_name}"
        rng = np.random.default_rng(seed)
        session = draw_session(preset_name, rng, mode)
        shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.optics = p.optics.with_(mode=mode or p.optics.mode, na=session.na if session.na else p.optics.na)
        lo, hi = self.optics.z_range_m
        pad = margin * (hi - lo)
        self.z_lo, self.z_hi = lo + pad, hi - pad
        self.z0 = float(z0_m) if z0_m is not None else float(rng.uniform(self.z_lo, self.z_hi))
        self.speed = float(speed_m_s)
        self.fps = float(fps)
        self._scene = Scene(self.optics, session, shape, kind, rng, self.optics.mode)
        self._level = self._scene.background_level()
        self._session = session
        empty = Scene(self.optics, session, shape, None, np.random.default_rng([seed, 1]), self.optics.mode)
        self.background = camera(empty.intensity(0.0), session, self._level, np.random.default_rng([seed, 2]))
        self._seed = seed
        self._n = n_frames
        self._pacer = Pacer(fps if paced else None)
        self._i = 0

    def z_at(self, i: int) -> float:
        return triangle_z(i / self.fps, self.z0, self.speed, self.z_lo, self.z_hi)

    def read(self) -> Frame | None:
        if self._n is not None and self._i >= self._n:
            return None
        z = self.z_at(self._i)
        data = camera(self._scene.intensity(z), self._session, self._level,
                      np.random.default_rng([self._seed, 3, self._i]))
        self._pacer.wait()
        f = self._frame(self._i, data, z_true_m=z)
        self._i += 1
        return f

    def close(self) -> None:
        self._n = self._i


def open_source(spec: str | int | Path, optics: Optics | dict[str, Any] | None = None, fps: float | None = None,
                loop: bool = False, **kw: Any) -> _Base:
    """'sim' / 'sim:PRESET', 'camera:N' (or an int), or a path (HDF5, TIFF, image, folder, video)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.startswith("camera:")):
        idx = spec if isinstance(spec, int) else spec.split(":", 1)[1]
        try:
            index = int(idx)
        except ValueError:
            raise BadInput(f"camera index must be an integer, got {idx!r}") from None
        if not isinstance(optics, Optics):
            raise BadInput(f"camera {index}: optics are required (mode, wavelength, pixel size)")
        return CameraSource(index, optics, **kw)
    if isinstance(spec, str) and (spec == "sim" or spec.startswith("sim:")):
        name = spec.split(":", 1)[1] if ":" in spec else "dhm-offaxis-10x"
        return SimulatedCamera(name, fps=fps or 20.0, **kw)
    p = Path(spec)
    if not p.exists():
        raise BadInput(f"{p}: no such file or folder")
    s = p.suffix.lower()
    if p.is_file() and s in HDF5_SUFFIXES:
        return HDF5Source(p, fps, loop, optics)
    if p.is_file() and s in VIDEO_SUFFIXES:
        return VideoSource(p, optics, fps, loop, **kw)
    if p.is_dir() or s in IMAGE_SUFFIXES:
        return ImageSource(p, optics, fps, loop, **kw)
    raise BadInput(f"{p}: unsupported input type {s or '(none)'}; use HDF5, TIFF, PNG, an image folder or a video")


__all__ = ["HDF5Source", "ImageSource", "VideoSource", "CameraSource", "SimulatedCamera", "open_source",
           "triangle_z"]
