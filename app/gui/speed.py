"""Step speed measured after a warm-up: the one measurement behind the jobs panel's ETA and the wizard's estimate.
Qt-free so the wizard, the jobs model and tests share it."""

from __future__ import annotations

import time
from collections import deque

WARMUP_STEPS = 3  # the first steps after a start pay for imports, allocation and caches
WARMUP_S = 1.0
WINDOW_S = 120.0  # the rate follows the last two minutes, so a machine that gets busier shows up in the ETA


class SpeedMeter:
    """Feed `add(step, t)` with every progress point; `seconds_per_step()` is None until warm-up is over and
    at least one step was timed after it. Times are in seconds on one clock (monotonic or the worker's)."""

    def __init__(self, warmup_steps: int = WARMUP_STEPS, warmup_s: float = WARMUP_S,
                 window_s: float = WINDOW_S) -> None:
        self.warmup_steps = warmup_steps
        self.warmup_s = warmup_s
        self.window_s = window_s
        self._first: tuple[int, float] | None = None
        self._points: deque[tuple[int, float]] = deque()  # (step, t) after warm-up

    def reset(self) -> None:
        self._first = None
        self._points.clear()

    def add(self, step: int, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        if self._first is None:
            self._first = (step, t)
            return
        s0, t0 = self._first
        if step < s0 + self.warmup_steps or t < t0 + self.warmup_s:
            return
        if self._points and step <= self._points[-1][0]:
            return
        self._points.append((step, t))
        while len(self._points) > 2 and t - self._points[1][1] >= self.window_s:
            self._points.popleft()

    @property
    def warm(self) -> bool:
        return len(self._points) >= 2

    @property
    def last(self) -> tuple[int, float] | None:
        return self._points[-1] if self._points else None

    def seconds_per_step(self) -> float | None:
        if not self.warm:
            return None
        (s0, t0), (s1, t1) = self._points[0], self._points[-1]
        return (t1 - t0) / (s1 - s0) if t1 > t0 else None

    def eta_s(self, total: int, now: float | None = None) -> float | None:
        """Seconds until step `total`: the steps left at the measured speed, less the time since the last point."""
        sps = self.seconds_per_step()
        if sps is None:
            return None
        step, t = self._points[-1]
        now = time.monotonic() if now is None else now
        return max(0.0, (total - step) * sps - max(0.0, now - t))
