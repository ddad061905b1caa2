"""Validation of raw camera frames, kept free of the FFT libraries so that commands refuse bad input before
loading them."""

from __future__ import annotations

import numpy as np

from app.core.errors import BadInput
from app.core.validate import FLOAT32_MAX

__all__ = ["check_frame"]


def check_frame(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """Validate a raw camera frame (2-D, finite, not blank/saturated); return it as a NumPy array."""
    a = np.asarray(frame)
    if a.ndim != 2:
        raise BadInput(f"{name}: expected a 2-D grayscale hologram, got shape {a.shape}")
    if a.dtype.kind not in "uif" or a.size == 0:
        raise BadInput(f"{name}: expected numeric pixels, got dtype {a.dtype}")
    if min(a.shape) < 16:
        raise BadInput(f"{name}: frame {a.shape[1]}x{a.shape[0]} is too small")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise BadInput(f"{name}: holds NaN or infinite values")
    lo, hi = a.min(), a.max()
    if a.dtype.kind == "f" and a.dtype.itemsize > 4 and max(-float(lo), float(hi)) > FLOAT32_MAX:
        raise BadInput(f"{name}: values up to {max(-float(lo), float(hi)):.3g} exceed the float32 range "
                       f"({FLOAT32_MAX:.3g}) the reconstruction computes in")
    if hi == 0 and lo == 0:
        raise BadInput(f"{name}: all pixels are zero (camera off or shutter closed?)")
    if lo == hi:
        raise BadInput(f"{name}: every pixel has the same value {hi} (blank or saturated)")
    if np.count_nonzero(a == hi) > a.size // 2:
        raise BadInput(f"{name}: more than half of the pixels are saturated at {hi}")
    return a
