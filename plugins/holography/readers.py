"""Hologram inputs besides HDF5 — TIFF (8/16-bit, multi-page), PNG/JPEG/BMP, image folders, Koala-style sequence
folders, video — with optics from the command line and/or a sidecar JSON; `read_input` dispatches on the path (HDF5
too) and returns a HoloStack."""

from __future__ import annotations

import logging
import math
import stat
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.core.errors import BadInput
from app.core.io.images import check_image_header, quiet_cv2
from app.core.quiet import quiet_c_stderr
from app.core.validate import load_json

from .hdf5 import HoloStack, LazyFrames, StackReader
from .koala import frame_number, frame_times, hologram_files, is_koala_folder, natural_key
from .optics import Optics

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
TIFF_SUFFIXES = {".tif", ".tiff"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv"}
HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf"}


def sidecar_path(path: str | Path) -> Path | None:
    """The sidecar JSON describing `path`, if one exists."""
    p = Path(path)
    if p.is_dir():  # <folder>.json beside it: a dated folder name ("2018.08.01 15-25") has no suffix to replace
        cands = [p / "optics.json", p.with_name(p.name + ".json")]
    else:
        cands = [p.with_name(p.name + ".json"), p.with_suffix(".json")]
    return next((c for c in cands if c.is_file() and c != p), None)


def load_sidecar(path: str | Path) -> dict[str, Any]:
    sc = sidecar_path(path)
    if sc is None:
        return {}
    try:
        text = sc.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{sc}: not a readable JSON sidecar ({type(e).__name__})") from None
    d = load_json(text, str(sc))
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


def _not_regular(p: Path) -> str | None:
    """Why `p` (which exists) is neither a regular file nor a folder, e.g. "a named pipe"; None when it is one."""
    try:
        mode = p.stat().st_mode
    except OSError as e:
        return f"cannot be read ({e.strerror or type(e).__name__})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
    return f"not a regular file ({kind})"


def _check_file(p: Path, suffixes: set[str]) -> None:
    if not p.exists():
        raise BadInput(f"{p}: no such file")
    if p.is_dir():
        raise BadInput(f"{p}: is a folder, not a file")
    why = _not_regular(p)
    if why:
        raise BadInput(f"{p}: {why}")
    if p.suffix.lower() not in suffixes:
        raise BadInput(f"{p}: unsupported file type {p.suffix or '(none)'}")
    if p.stat().st_size == 0:
        raise BadInput(f"{p}: empty file")


def read_image_frames(path: str | Path) -> np.ndarray:
    """All pages of a TIFF, or the single image of a PNG/JPEG/BMP, as (N,H,W) grayscale in the file's depth."""
    p = Path(path)
    _check_file(p, IMAGE_SUFFIXES)
    check_image_header(p)  # size from the header: a decompression bomb is refused before it is decoded
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE
    if p.suffix.lower() in TIFF_SUFFIXES:
        with quiet_cv2(), quiet_c_stderr():
            ok, pages = cv2.imreadmulti(str(p), flags=flags)
        if not ok or not pages:
            raise BadInput(f"{p}: not a readable TIFF (corrupt or truncated)")
        frames = [to_gray(a) for a in pages]
    else:
        buf = np.fromfile(p, np.uint8)
        with quiet_cv2(), quiet_c_stderr():
            img = cv2.imdecode(buf, flags)
        if img is None:
            raise BadInput(f"{p}: not a readable image (corrupt or truncated)")
        frames = [to_gray(img)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise BadInput(f"{p}: pages differ in size {sorted(shapes)}")
    return np.stack(frames)


def folder_images(path: str | Path) -> list[Path]:
    """The hologram images of a folder in numeric order ("f2" before "f10"): those of `Holograms/` for a Koala-style
    sequence folder, else the folder's own; BadInput when there are none."""
    p = Path(path)
    if is_koala_folder(p):
        return hologram_files(p, IMAGE_SUFFIXES)
    files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
             and not f.name.startswith(".")]
    if not files:
        raise BadInput(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(files, key=lambda f: natural_key(f.name))


def read_folder(path: str | Path) -> tuple[np.ndarray, list[Path]]:
    """Every image in a folder (numeric order; multi-page TIFFs contribute all pages; a Koala-style sequence
    folder's `Holograms/`) as (N,H,W)."""
    p = Path(path)
    files = folder_images(p)
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
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref.strip():
        raise BadInput(f"{sidecar.get('_sidecar', path)}: background must be the path of an image, got "
                       f"{_show(ref)}")
    bp = Path(ref)
    if not bp.is_absolute():
        bp = Path(sidecar.get("_sidecar", path)).parent / bp
    bg = read_image_frames(bp)
    return bg[0] if len(bg) == 1 else bg.mean(0)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def sidecar_z(sidecar: dict[str, Any], n: int) -> np.ndarray:
    """The sidecar's z_m: a number (one frame) or a flat list of `n` finite numbers (metres)."""
    where = sidecar.get("_sidecar", "sidecar")
    v = sidecar["z_m"]
    values = v if isinstance(v, list) else [v]
    if not values or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in values):
        raise BadInput(f"{where}: z_m must be a number or a flat list of numbers (metres), got {_show(v)}")
    if not all(math.isfinite(x) for x in values):
        raise BadInput(f"{where}: z_m holds NaN or infinite values")
    if len(values) != n:
        raise BadInput(f"{where}: {len(values)} z values for {n} frames")
    return np.asarray(values, np.float64)


def _read_hdf5(p: Path, optics: Optics | dict[str, Any] | None) -> HoloStack:
    """The stack, frames in memory or (too large for that) read lazily; the file stays open for lazy frames."""
    r = StackReader(p, optics)
    try:
        stack = r.load()
    except BaseException:
        r.close()
        raise
    if not isinstance(stack.holograms, LazyFrames):
        r.close()
    return stack


def _koala_attrs(p: Path, files: list[Path], n_frames: int) -> dict[str, Any]:
    """Metadata of a Koala-style sequence: its layout, each frame's file number and (timestamps.txt) time in s."""
    if n_frames != len(files):  # a multi-page TIFF among the frames: numbers and times no longer map to frames
        return {"layout": "koala", "timestamps": "frames without times (a hologram file holds several pages)"}
    times, note = frame_times(p, files)
    numbers = [frame_number(f) for f in files]
    d: dict[str, Any] = {"layout": "koala", "timestamps": note,
                         "frame_number": np.array([-1 if k is None else k for k in numbers], np.int64)}
    if times is not None:
        d["frame_time_s"] = times
    return d


def read_input(path: str | Path, optics: Optics | dict[str, Any] | None = None,
               background: str | Path | np.ndarray | None = None) -> HoloStack:
    """Any supported hologram input as a validated HoloStack (frames in their stored dtype)."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{p}: no such file or folder")
    why = _not_regular(p)
    if why:
        raise BadInput(f"{p}: {why}")
    suffix = p.suffix.lower()
    if p.is_file() and suffix in HDF5_SUFFIXES:
        stack = _read_hdf5(p, optics)
    else:
        sidecar = load_sidecar(p)
        z = None
        extra: dict[str, Any] = {}
        if p.is_dir():
            frames, files = read_folder(p)
            if is_koala_folder(p):
                extra = _koala_attrs(p, files, len(frames))
        elif suffix in VIDEO_SUFFIXES:
            frames, _ = read_video(p)
        elif suffix in IMAGE_SUFFIXES:
            frames = read_image_frames(p)
        else:
            raise BadInput(f"{p}: unsupported input type {suffix or '(none)'}; use HDF5, TIFF, PNG, an image "
                           "folder or a video file")
        if frames.dtype.kind == "f" and not np.isfinite(frames).all():
            raise BadInput(f"{p}: holds NaN or infinite values")
        if sidecar.get("z_m") is not None:
            z = sidecar_z(sidecar, len(frames))
        attrs = {k: v for k, v in sidecar.items() if not k.startswith("_")}
        stack = HoloStack(frames, resolve_optics(p, optics), z, sidecar_background(p, sidecar),
                          {**attrs, **extra}, str(p))
    if background is not None:
        bg = background if isinstance(background, np.ndarray) else read_image_frames(background)
        if bg.ndim == 3:
            bg = bg[0] if len(bg) == 1 else bg.mean(0)
        if bg.shape != stack.holograms.shape[1:]:
            raise BadInput(f"{background if not isinstance(background, np.ndarray) else 'background'}: size "
                           f"{bg.shape} does not match the frames {stack.holograms.shape[1:]}")
        stack.background = bg
    return stack
