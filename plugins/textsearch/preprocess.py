"""CLIP image preprocessing: RGB, shortest side to 224 (bicubic), centre crop, OpenAI mean/std → float32 [N,3,H,W]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.errors import BadInput
from app.core.io.images import IMAGE_SUFFIXES, MAX_PIXELS

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "load_rgb", "preprocess", "resize_crop", "to_tensor"]
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float64)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float64)


def load_rgb(path: str | Path):
    """Open an image file as a PIL RGB image; BadInput naming the file when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            if im.width * im.height > MAX_PIXELS:
                raise BadInput(f"{p}: {im.width}x{im.height} is larger than {MAX_PIXELS // 1_000_000} MP")
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise BadInput(f"{p}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadInput(f"{p}: not a readable image ({e.__class__.__name__})") from None


def resize_crop(img, size: int = 224):
    """Shortest side to `size` with PIL bicubic (long side truncated), then the centre size×size crop."""
    from PIL import Image

    w, h = img.size
    if w == 0 or h == 0:
        raise BadInput("image has no pixels")
    if w < h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    img = img.resize((nw, nh), resample=Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_tensor(img) -> np.ndarray:
    """A size×size RGB PIL image → normalised float32 [3, H, W]."""
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def preprocess(img, size: int = 224) -> np.ndarray:
    """A PIL image (any mode) or a path → float32 [1, 3, size, size]."""
    if isinstance(img, (str, Path)):
        img = load_rgb(img)
    elif getattr(img, "mode", "RGB") != "RGB":
        img = img.convert("RGB")
    return to_tensor(resize_crop(img, size))[None]
