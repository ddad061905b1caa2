"""Image files → NumPy arrays, with one-line errors for missing, corrupt or unsupported files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from ..errors import BadInput

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


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


def read_image(path: str | Path, color: bool = True) -> np.ndarray:
    """RGB uint8 (H, W, 3) when `color`, else grayscale in the file's own depth (uint8/uint16)."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{p}: no such file")
    if p.is_dir():
        raise BadInput(f"{p}: is a folder, not an image")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadInput(f"{p}: unsupported image type {p.suffix or '(none)'}; use "
                       + ", ".join(sorted(IMAGE_SUFFIXES)))
    try:
        buf = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise BadInput(f"{p}: cannot read ({e.strerror})") from None
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE
    with quiet_cv2():
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
    x = img.astype(np.float32)
    if img.dtype == np.uint8:
        x /= 255.0
    if not np.isfinite(x).all():
        raise BadInput("image holds NaN or infinite values")
    if x.shape[:2] != (size, size):
        x = cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
    m = np.asarray(mean, np.float32).reshape(1, 1, -1)
    s = np.asarray(std, np.float32).reshape(1, 1, -1)
    x = (x - m) / s
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
