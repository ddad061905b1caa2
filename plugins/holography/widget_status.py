"""Texts of the holography live view (Qt-free): the focus readout, which background is in use, what "dropped" and
the two pixel sizes mean, and a recording's disk rate and free space."""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from pathlib import Path
from typing import Any

from .optics import Optics

DROPPED_TIP = ("Newest frame wins: a frame that arrives while the previous one is still being processed replaces "
               "the waiting one, and the one it replaces is counted as dropped. The view never lags behind the "
               "camera; the recording holds the processed frames.")
PIXEL_TIP = ("Reconstruction pixel: the pixel of the refocused amplitude and phase images. Off-axis, only the "
             "sideband's band is kept and resampled, so it is larger than the optics pixel. Optics pixel: the "
             "object-space pixel of the camera (camera pixel ÷ magnification), from the Optics panel or the file.")
BACKGROUND_TEXT = {
    "recorded": "recorded background hologram",
    "frame": "none recorded: estimated from each frame (less accurate)",
    "none": "none (frames normalised by their mean)",
}


def z_text(z_m: float) -> str:
    """A z in µm below 1 mm, else in mm."""
    return f"{z_m * 1e6:+.2f} µm" if abs(z_m) < 1e-3 else f"{z_m * 1e3:+.3f} mm"


def range_text(z_range_m: tuple[float, float]) -> str:
    lo, hi = z_range_m
    if max(abs(lo), abs(hi)) < 1e-3:
        return f"{lo * 1e6:g} … {hi * 1e6:g} µm"
    return f"{lo * 1e3:g} … {hi * 1e3:g} mm"


def focus_text(r: Any) -> tuple[str, str]:
    """(readout, level) for a HoloResult: level "ok", "uncertain", "out" (no focus in range) or "none" (no
    confidence: a ViT-only or manual z)."""
    if r.method == "manual":
        return "Focus: manual z (no confidence)", "none"
    if r.focus_confidence is None:
        return f"Focus: {r.method} gives no confidence (a sweep or vit+refine does)", "none"
    if r.focus_in_range is False:
        return "Focus: NO FOCUS IN RANGE (confidence 0.00)", "out"
    level = "uncertain" if r.focus_note.startswith("uncertain") else "ok"
    word = "uncertain" if level == "uncertain" else "clear"
    return f"Focus: {word} (confidence {r.focus_confidence:.2f})", level


def pixel_text(recon_m: float, optics: Optics | None) -> str:
    s = f"reconstruction pixel {recon_m * 1e6:.2f} µm"
    if optics is not None:
        s += f" (optics pixel {optics.pixel_size_m * 1e6:.3f} µm)"
    return s


def optics_text(o: Optics) -> str:
    text = f"{o.mode}, {o.wavelength_m * 1e9:.1f} nm, pixel {o.pixel_size_m * 1e6:.3f} µm"
    text += f", NA {o.na:.2f}" if o.na else ", NA unknown"
    return text + f", z {range_text(o.z_range_m)}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def free_bytes(path: Path) -> int | None:
    """Free space on the disk holding `path` (its folder when the file does not exist yet); None if unknown."""
    p = path if path.exists() else path.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class DiskRate:
    """MB/s written to a growing file, over the last `window_s` seconds of `sample()` calls."""

    def __init__(self, path: str | os.PathLike[str], window_s: float = 3.0) -> None:
        self.path = Path(path)
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float | None = None) -> float | None:
        """Record the file's size now; the rate in MB/s, None until two samples span some time."""
        t = time.monotonic() if now is None else now
        self._samples.append((t, _size(self.path)))
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return None if t1 - t0 < 0.2 else (b1 - b0) / (t1 - t0) / 1e6

    def text(self, now: float | None = None) -> str:
        """"10.2 MB/s to disk · 41.3 GB free" (the rate "…" while it is measured)."""
        rate = self.sample(now)
        free = free_bytes(self.path)
        return (f"{'…' if rate is None else f'{rate:.1f}'} MB/s to disk · file {human_bytes(_size(self.path))} · "
                + (f"{human_bytes(free)} free" if free is not None else "free space unknown"))
