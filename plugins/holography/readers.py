"""Hologram inputs besides HDF5 — TIFF (8/16-bit, multi-page), PNG/JPEG/BMP, image folders, video — with optics from the
command line and/or a sidecar JSON; `read_input` dispatches on the path (HDF5 too) and returns a HoloStack."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.core.errors import BadInput
from app.core.io.images import quiet_cv2

from .hdf5 import HoloStack, StackReader
from .optics import Optics

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
TIFF_SUFFIXES = {".tif", ".tiff"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv"}
HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf"}


def sidecar_path(path: str | Path) -> Path | None:
    """The sidecar JSON describing `path`, if one exists."""
    p = Path(path)
    cands = [p / "optics.json", p.with_suffix(".json")] if p.is_dir() else [p.with_name(p.name + ".json"),
                                                                              p.with_suffix(".json")]
    return next((c for c in cands if c.is_file() and c != p), None)


def load_sidecar(path: str | Path) -> dict[str, Any]:
    sc = sidecar_path(path)
    if sc is None:
        return {}
    try:
        d = json.loads(sc.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{sc}: not a readable JSON sidecar ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise BadInput(f"{sc}: sidecar must hold a JSON object")
    d["_sidecar"] = str(sc)
    return d


def resolve_optics(path: str | Path, given: Optics | dict[str, Any] | None = None,
                   base: dict[str, Any] | None = None) -> Optics:
    """Optics for `path`: `base` (file attrs) < sidecar < `given` (command line); one-line error if incomplete."""
    d: dict[str, Any] = dict(base or {})
    d.update({k: v for k, v in load_sidecar(path).items() if v is not None})
    if isinstance(given, Optics):
        return given
    d.update({k: v for k, v in (given or {}).items() if v is not None})
    missing = [k for k in ("mode", "wavelength_m", "pixel_size_m") if d.get(k) is None]
    if missing:
        raise BadInput(f"{path}: missing optics {', '.join(missing)} (give them on the command line or in a "
                       f"sidecar {Path(path).name}.json)")
    return Optics.from_dict(d, source=str(path))


def to_gray(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] in (3, 4):
        code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(img, code)
    return img


def _check_file(p: Path, suffixes: set[str]) -> None:
    if not p.exists():
        raise BadInput(f"{p}: no such file")
    if p.is_dir():
        raise BadInput(f"{p}: is a folder, not a file")
    if p.suffix.lower() not in suffixes:
        raise BadInput(f"{p}: unsupported file type {p.suffix or '(none)'}")
    if p.stat().st_size == 0:
        raise BadInput(f"{p}: empty file")


def read_image_frames(path: str | Path) -> np.ndarray:
    """All pages of a TIFF, or the single image of a PNG/JPEG/BMP, as (N,H,W) grayscale in the file's depth."""
    p = Path(path)
    _check_file(p, IMAGE_SUFFIXES)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE
    buf = np.fromfile(p, np.uint8)
    if p.suffix.lower() in TIFF_SUFFIXES:
        with quiet_cv2():
            ok, pages = cv2.imreadmulti(str(p), flags=flags)
        if not ok or not pages:
            raise BadInput(f"{p}: not a readable TIFF (corrupt or truncated)")
        frames = [to_gray(a) for a in pages]
    else:
        with quiet_cv2():
            img = cv2.imdecode(buf, flags)
        if img is None:
            raise BadInput(f"{p}: not a readable image (corrupt or truncated)")
        frames = [to_gray(img)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise BadInput(f"{p}: pages differ in size {sorted(shapes)}")
    return np.stack(frames)


def read_folder(path: str | Path) -> tuple[np.ndarray, list[Path]]:
    """Every image in a folder (sorted by name; multi-page TIFFs contribute all pages) as (N,H,W)."""
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                   and not f.name.startswith("."))
    if not files:
        raise BadInput(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    frames = [read_image_frames(f) for f in files]
    shapes = {f.shape[1:] for f in frames}
    if len(shapes) != 1:
        raise BadInput(f"{p}: images differ in size {sorted(shapes)}")
    dtypes = {f.dtype for f in frames}
    if len(dtypes) != 1:
        raise BadInput(f"{p}: images differ in bit depth {sorted(map(str, dtypes))}")
    return np.concatenate(frames), files


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Frames of a video file as (N,H,W) uint8 grayscale, and its frame rate (0 when unknown)."""
    p = Path(path)
    _check_file(p, VIDEO_SUFFIXES)
    with quiet_cv2():
        cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise BadInput(f"{p}: not a readable video (corrupt, truncated or unsupported codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = []
        while max_frames is None or len(frames) < max_frames:
            with quiet_cv2():
                ok, img = cap.read()
            if not ok:
                break
            frames.append(to_gray(img))
    finally:
        cap.release()
    if not frames:
        raise BadInput(f"{p}: video holds no readable frame")
    return np.stack(frames), fps


def sidecar_background(path: Path, sidecar: dict[str, Any]) -> np.ndarray | None:
    ref = sidecar.get("background")
    if not ref:
        return None
    bp = Path(ref)
    if not bp.is_absolute():
        bp = Path(sidecar.get("_sidecar", path)).parent / bp
    bg = read_image_frames(bp)
    return bg[0] if len(bg) == 1 else bg.mean(0)


def read_input(path: str | Path, optics: Optics | dict[str, Any] | None = None,
               background: str | Path | np.ndarray | None = None) -> HoloStack:
    """Any supported hologram input as a validated HoloStack (frames in their stored dtype)."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if p.is_file() and suffix in HDF5_SUFFIXES:
        with StackReader(p, optics) as r:
            stack = r.read_all()
    else:
        sidecar = load_sidecar(p)
        z = None
        if p.is_dir():
            frames, _ = read_folder(p)
        elif suffix in VIDEO_SUFFIXES:
            frames, _ = read_video(p)
        elif suffix in IMAGE_SUFFIXES:
            frames = read_image_frames(p)
        else:
            raise BadInput(f"{p}: unsupported input type {suffix or '(none)'}; use HDF5, TIFF, PNG, an image "
                           "folder or a video file")
        if frames.dtype.kind == "f" and not np.isfinite(frames).all():
            raise BadInput(f"{p}: holds NaN or infinite values")
        if "z_m" in sidecar:
            z = np.asarray(sidecar["z_m"], np.float64).reshape(-1)
            if len(z) != len(frames):
                raise BadInput(f"{sidecar['_sidecar']}: {len(z)} z values for {len(frames)} frames")
        stack = HoloStack(frames, resolve_optics(p, optics), z, sidecar_background(p, sidecar),
                          {k: v for k, v in sidecar.items() if not k.startswith("_")}, str(p))
    if background is not None:
        bg = background if isinstance(background, np.ndarray) else read_image_frames(background)
        if bg.ndim == 3:
            bg = bg[0] if len(bg) == 1 else bg.mean(0)
        if bg.shape != stack.holograms.shape[1:]:
            raise BadInput(f"{background if not isinstance(background, np.ndarray) else 'background'}: size "
                           f"{bg.shape} does not match the frames {stack.holograms.shape[1:]}")
        stack.background = bg
    return stack
