"""Temporal smoothing of the predicted z for live streams: a robust α–β tracker that follows a steady drift
without lag, ignores isolated outliers and re-locks after a real jump. Qt-free."""

from __future__ import annotations

import math


class ZTracker:
    """Robust α–β filter over frame indices (dropped frames count as elapsed steps).

    A prediction further than `gate_m` from the tracked position is an outlier and ignored; `relock` outliers in a
    row mean the specimen really moved, and the tracker restarts there."""

    def __init__(self, alpha: float = 0.5, beta: float = 0.15, gate_m: float = 5e-6, relock: int = 3) -> None:
        self.alpha, self.beta, self.gate_m, self.relock = alpha, beta, gate_m, relock
        self.reset()

    def reset(self) -> None:
        self.z: float | None = None
        self.v = 0.0  # metres per frame
        self._index = 0
        self._outliers = 0

    def update(self, z_m: float, index: int | None = None) -> float:
        """Feed one prediction (of frame `index`; consecutive when None); return the smoothed z."""
        index = self._index + 1 if index is None else int(index)
        if self.z is None or not math.isfinite(self.z):
            self.z, self.v, self._index, self._outliers = float(z_m), 0.0, index, 0
            return self.z
        steps = max(1, index - self._index)
        self._index = index
        pred = self.z + self.v * steps
        r = float(z_m) - pred
        if abs(r) > self.gate_m:
            self._outliers += 1
            if self._outliers >= self.relock:
                self.z, self.v, self._outliers = float(z_m), 0.0, 0
                return self.z
            self.z = pred
            return pred
        self._outliers = 0
        self.z = pred + self.alpha * r
        self.v += self.beta * r / steps
        return self.z
