"""2-D complex64 FFTs: scipy.fft, or pyFFTW (cached plans, aligned buffers) when `tune`/`tune_async` measured it
faster for a frame shape; `VITASCOPE_FFT=scipy|pyfftw|auto` pins the choice."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft as sfft

log = logging.getLogger(__name__)

try:  # optional speed-up; never required
    import pyfftw  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    pyfftw = None

WORKERS = max(1, min(2, os.cpu_count() or 1))
PLAN_TIME_LIMIT_S = 1.0  # per FFTW plan (FFTW_MEASURE at 1024²: ~0.35 s quiet, seconds on a busy machine)
MIN_PYFFTW_PIXELS = 256 * 256  # below this scipy.fft is as fast and planning would cost more than it saves


class FFT2:
    """Forward / inverse FFT over the last two axes of complex64 arrays of one shape. Thread-safe; every call returns
    a new array. `convolve(x, h)` = IFFT(FFT(x)·h) without intermediate copies (the live refocus)."""

    def __init__(self, shape: tuple[int, ...], backend: str = "scipy", threads: int = WORKERS) -> None:
        self.shape = tuple(shape)
        self.backend = backend
        self.threads = threads
        self._lock = threading.Lock()
        if backend == "pyfftw":
            if pyfftw is None:
                raise RuntimeError("pyFFTW is not installed")
            axes = (-2, -1)
            a = pyfftw.empty_aligned(self.shape, "complex64")
            b = pyfftw.empty_aligned(self.shape, "complex64")
            kw = dict(axes=axes, threads=threads, flags=("FFTW_MEASURE",), planning_timelimit=PLAN_TIME_LIMIT_S)
            self._fw = pyfftw.FFTW(a, b, direction="FFTW_FORWARD", **kw)
            # execute() never normalises; the 1/N scale is folded into the copy out of the plan's buffer
            self._bw = pyfftw.FFTW(b, a, direction="FFTW_BACKWARD", **kw)
            self._a, self._b = a, b
            self._scale = np.float32(1.0 / (self.shape[-1] * self.shape[-2]))
        elif backend != "scipy":
            raise ValueError(f"unknown FFT backend {backend!r}")

    @staticmethod
    def _hermitian_product(xh: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        """out = X·h on the full grid from the half spectrum X_h of a real input (X(−k) = conj X(k)), h even."""
        w = out.shape[-1]
        m = xh.shape[-1]
        np.multiply(xh, h[:, :m], out=out[:, :m])
        k = w - m  # right-hand columns m … w−1 mirror columns w−m … 1 of the half spectrum
        if k > 0:
            right = out[:, m:]
            np.conjugate(xh[0:1, k:0:-1], out=right[0:1])
            np.conjugate(xh[:0:-1, k:0:-1], out=right[1:])
            np.multiply(right, h[:, m:], out=right)

    def convolve_real(self, x: np.ndarray, h: np.ndarray, post: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> np.ndarray:
        """convolve() for a real 2-D x and a transfer function even in frequency (h(−k) = h(k)): with scipy a
        real-input forward FFT plus the Hermitian mirror fill (~20 % faster at 1024² than c2c)."""
        if x.ndim != 2 or np.iscomplexobj(x):
            return self.convolve(x, h, post)
        if self.backend == "scipy":
            xh = sfft.rfft2(np.asarray(x, np.float32), workers=self.threads)
            y = np.empty(self.shape, np.complex64)
            self._hermitian_product(xh, h, y)
            y = sfft.ifft2(y, workers=self.threads, overwrite_x=True)
            return post(y) if post else y
        return self.convolve(x, h, post)  # FFTW: r2c + the mirror fill measured no faster than c2c

    def rforward(self, x: np.ndarray) -> np.ndarray:
        """Half spectrum (…, W//2+1) of a real array, complex64."""
        return sfft.rfft2(np.asarray(x, np.float32), workers=self.threads)

    def __repr__(self) -> str:
        return f"FFT2({self.shape}, {self.backend}, threads={self.threads})"

    def _fftw(self, plan: Any, src: np.ndarray, x: np.ndarray, out: Callable[[], np.ndarray]) -> np.ndarray:
        """Runs the FFTW `plan` on x copied into its input buffer `src`; `out()` copies the result out, all under
        the plan's lock."""
        with self._lock:
            np.copyto(src, x)
            plan.execute()
            return out()

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.backend == "scipy":
            return sfft.fft2(np.asarray(x, np.complex64), workers=self.threads)
        return self._fftw(self._fw, self._a, x, self._b.copy)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        if self.backend == "scipy":
            return sfft.ifft2(np.asarray(x, np.complex64), workers=self.threads)
        return self._fftw(self._bw, self._b, x, lambda: np.multiply(self._a, self._scale))

    def convolve(self, x: np.ndarray, h: np.ndarray, post: Callable[[np.ndarray], np.ndarray] | None = None
                 ) -> np.ndarray:
        """IFFT(FFT(x) · h); `post` (e.g. np.abs) is applied to the result before it leaves the plan's buffers."""
        if self.backend == "scipy":
            y = sfft.fft2(np.asarray(x, np.complex64), workers=self.threads)
            np.multiply(y, h, out=y)
            y = sfft.ifft2(y, workers=self.threads, overwrite_x=True)
            return post(y) if post else y
        with self._lock:
            np.copyto(self._a, x)
            self._fw.execute()
            np.multiply(self._b, h, out=self._b)
            self._bw.execute()
            if post is None:
                return np.multiply(self._a, self._scale)
            if post is np.abs:  # scale the real result: half the memory traffic of scaling the complex one
                out = np.abs(self._a)
                out *= self._scale
                return out
            np.multiply(self._a, self._scale, out=self._a)
            return post(self._a)


_PLANS: dict[tuple[int, ...], FFT2] = {}
_PLANS_LOCK = threading.Lock()
_TUNING: dict[tuple[int, ...], threading.Thread] = {}
_STOP_TUNING = threading.Event()  # set at exit: background tuning stops at its next step


class TuningStopped(Exception):
    """Background tuning was asked to stop (the process is exiting)."""
_MAX_PLANS = 8


def preferred_backend() -> str:
    v = os.environ.get("VITASCOPE_FFT", "auto").strip().lower()
    return v if v in ("auto", "scipy", "pyfftw") else "auto"


def _time_pair(plan: FFT2, reps: int) -> list[float]:
    x = np.ones(plan.shape, np.complex64)
    h = np.ones(plan.shape, np.complex64)
    plan.convolve(x, h)  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        plan.convolve(x, h)
        ts.append(time.perf_counter() - t0)
    return ts


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise TuningStopped


def _candidates(shape: tuple[int, ...], pref: str, stop: threading.Event | None = None) -> list[FFT2]:
    cands: list[FFT2] = []
    if pref in ("auto", "scipy"):
        cands += [FFT2(shape, "scipy", t) for t in sorted({1, WORKERS})]
    if pyfftw is not None and pref in ("auto", "pyfftw"):
        # both thread counts: a 2-thread FFTW plan wins on a quiet machine and stalls when the other core is busy
        for t in sorted({1, WORKERS}):
            _check_stop(stop)
            try:
                cands.append(FFT2(shape, "pyfftw", t))
            except Exception as e:  # planning can fail on exotic shapes; scipy always works
                log.warning("pyFFTW plan for %s failed: %s", shape, e)
    return cands or [FFT2(shape, "scipy", WORKERS)]


def tune(shape: tuple[int, ...], reps: int = 7, stop: threading.Event | None = None) -> FFT2:
    """Time the available backends on FFT → multiply → IFFT of this shape (interleaved, median) and install the
    fastest for `shape`. Runs synchronously; `get_fft` runs it in the background for large shapes. Raises
    TuningStopped at the next step once `stop` is set."""
    shape = tuple(int(s) for s in shape)
    cands = _candidates(shape, preferred_backend(), stop)
    times: dict[FFT2, list[float]] = {c: [] for c in cands}
    for _ in range(reps):  # interleaved so a burst of load from other processes hits every candidate alike
        for c in cands:
            _check_stop(stop)
            times[c] += _time_pair(c, 1)
    med = {c: float(np.median(t)) for c, t in times.items()}
    best = min(med, key=med.__getitem__)
    log.info("FFT %s → %s/%dt (%s)", shape, best.backend, best.threads,
             ", ".join(f"{c.backend}/{c.threads}t {m * 1e3:.2f} ms" for c, m in med.items()))
    with _PLANS_LOCK:
        _PLANS[shape] = best
    return best


def _tune_quietly(shape: tuple[int, ...]) -> None:
    try:
        tune(shape, stop=_STOP_TUNING)
    except TuningStopped:
        pass
    except Exception as e:  # tuning is an optimisation; never let it break a stream
        log.warning("FFT tuning for %s failed: %s", shape, e)


def get_fft(shape: tuple[int, ...]) -> FFT2:
    """The FFT2 for `shape`: the tuned one when `tune`/`tune_async` ran for it (or VITASCOPE_FFT=pyfftw), else
    scipy.fft (2 workers from 256² up). One-shot commands never pay for tuning."""
    shape = tuple(int(s) for s in shape)
    with _PLANS_LOCK:
        plan = _PLANS.get(shape)
        if plan is not None:
            return plan
    if preferred_backend() == "pyfftw":
        return tune(shape)
    plan = FFT2(shape, "scipy", WORKERS if int(np.prod(shape[-2:])) >= MIN_PYFFTW_PIXELS else 1)
    with _PLANS_LOCK:
        _PLANS[shape] = plan
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
    return plan


def tune_async(shape: tuple[int, ...]) -> None:
    """Time the backends for `shape` in a background thread (live streams call this once per frame shape); the
    fastest replaces the default for later `get_fft` calls. No-op without pyFFTW or when pinned to scipy."""
    shape = tuple(int(s) for s in shape)
    if pyfftw is None or preferred_backend() != "auto" or int(np.prod(shape[-2:])) < MIN_PYFFTW_PIXELS:
        return
    with _PLANS_LOCK:
        if shape in _TUNING:
            return
        t = threading.Thread(target=_tune_quietly, args=(shape,), name=f"fft-tune-{shape}", daemon=True)
        _TUNING[shape] = t
    t.start()


def wait_tuning(timeout: float | None = None) -> None:
    """Wait for background tuning threads (benchmarks call this before timing; also run at exit, because killing
    a thread inside FFTW planning during interpreter shutdown can crash the process)."""
    for t in list(_TUNING.values()):
        if t.is_alive():
            t.join(timeout)


def _stop_tuning_at_exit() -> None:
    """Stop background tuning at its next step and wait for it: a thread left inside FFTW while the interpreter
    shuts down aborts the process. One step is bounded (a plan's time limit, or one timed convolution)."""
    _STOP_TUNING.set()
    wait_tuning(60.0)


atexit.register(_stop_tuning_at_exit)


def clear_plans() -> None:
    with _PLANS_LOCK:
        _PLANS.clear()
        _TUNING.clear()
