"""Image files → NumPy arrays, with one-line errors for missing, corrupt or unsupported files."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadInput
from ..quiet import quiet_c_stderr
from ..validate import finite_float32

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
MAX_PIXELS = 50_000_000  # decoded pixels per input image (50 MP: 3 bytes each = 150 MB); larger is refused


@contextmanager
def quiet_cv2() -> Iterator[None]:
    """Silence OpenCV's own stderr logging (e.g. "[ERROR] grfmt_png.cpp ... IHDR") while decoding: our BadInput
    message is the one line the user should see."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _check_file(p: Path) -> None:
    if not p.exists():
        raise BadInput(f"{p}: no such file")
    if p.is_dir():
        raise BadInput(f"{p}: is a folder, not an image")
    if not p.is_file():
        raise BadInput(f"{p}: not a regular file")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadInput(f"{p}: unsupported image type {p.suffix or '(none)'}; use "
                       + ", ".join(sorted(IMAGE_SUFFIXES)))


def check_image_header(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels; BadInput for a missing, non-image or
    unreadable file, and for more than `max_pixels` pixels (a decompression bomb is refused before it is decoded)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    _check_file(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p) as im:  # reads the header only; pixels are decoded on load(), which we never call
                w, h = im.size
                frames = getattr(im, "n_frames", 1)
    except Image.DecompressionBombError:
        raise BadInput(f"{p}: image larger than {max_pixels / 1e6:.0f} megapixels; refused") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, TypeError, KeyError) as e:
        # TypeError/KeyError: PIL counting the pages of a TIFF whose later page header is corrupt
        reason = "not a readable image" if isinstance(e, UnidentifiedImageError) else "unreadable image header"
        raise BadInput(f"{p}: {reason} (corrupt or truncated)") from None
    if w <= 0 or h <= 0:
        raise BadInput(f"{p}: image header declares {w}x{h} pixels")
    if w * h > max_pixels:
        raise BadInput(f"{p}: {w}x{h} image ({w * h / 1e6:.0f} megapixels) is larger than the "
                       f"{max_pixels / 1e6:.0f}-megapixel limit; refused")
    if frames > 1 and w * h * frames > 4 * max_pixels:
        raise BadInput(f"{p}: {frames} frames of {w}x{h}; refused")
    return w, h


def read_image(path: str | Path, color: bool = True) -> np.ndarray:
    """RGB uint8 (H, W, 3) when `color`, else grayscale in the file's own depth (uint8/uint16). The header is
    checked first (check_image_header: at most MAX_PIXELS pixels)."""
    p = Path(path)
    check_image_header(p)
    try:
        buf = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise BadInput(f"{p}: cannot read ({e.strerror})") from None
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE
    with quiet_cv2(), quiet_c_stderr():
        img = cv2.imdecode(buf, flag) if buf.size else None
    if img is None:
        raise BadInput(f"{p}: not a readable image (corrupt or truncated)")
    if color:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def to_model_input(img: np.ndarray, size: int, mean: list[float] | float = 0.5,
                   std: list[float] | float = 0.5) -> np.ndarray:
    """RGB (H, W, 3) uint8 or float in [0, 1] → (1, 3, size, size) float32 normalised by mean/std."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise BadInput(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    if img.dtype.kind not in "biuf":
        raise BadInput(f"expected an image of numbers, got {img.dtype} values")
    x = finite_float32(img, "image") if img.dtype.kind == "f" else img.astype(np.float32)
    if img.dtype == np.uint8:
        x = x / 255.0
    if x.shape[:2] != (size, size):
        x = cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
    m = np.asarray(mean, np.float32).reshape(1, 1, -1)
    s = np.asarray(std, np.float32).reshape(1, 1, -1)
    x = (x - m) / s
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
