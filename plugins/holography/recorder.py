"""Recording a live hologram stream to HDF5 (the stack format of hdf5.py plus per-frame z, method, timestamps) on a
writer thread, flushed at least every `flush_interval_s`, so a process killed with SIGKILL keeps every frame flushed
before."""

from __future__ import annotations

import errno
import logging
import math
import os
import queue
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from app.core.errors import VitascopeError

from .optics import Optics

log = logging.getLogger(__name__)

FLOAT_SETS = ("z_focus_m", "z_pred_m", "timestamps_s")


class RecordingError(VitascopeError):
    """The recording file cannot be created or written (unwritable folder, full disk...)."""


class _LowDisk(Exception):
    """Free space fell below the reserve: stop cleanly while the file can still be closed properly."""


_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def _describe(path: Path, e: BaseException) -> str:
    """One line for the user. HDF5 reports a failed flush as a RuntimeError whose multi-line text carries the
    errno ("errno = 27, error message = 'File too large'"): that errno counts as well."""
    code = getattr(e, "errno", None)
    text = str(e)
    if not isinstance(code, int):
        m = _HDF5_ERRNO.search(text)
        code = int(m.group(1)) if m else None
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or "No space" in text or "too large" in text.lower():
        return f"{path}: the disk is full (or the file hit a size limit); recording stopped"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or "ermission" in text or "read-only" in text.lower():
        return f"{path}: not writable (permission denied or read-only disk)"
    if code in (errno.ENOENT, errno.ENOTDIR, errno.EEXIST):
        return f"{path}: cannot create the file there (the folder does not exist or is not a folder)"
    if isinstance(code, int):
        return f"{path}: cannot write the recording ({os.strerror(code)})"
    reason = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return f"{path}: recording stopped ({reason})"


class Recorder:
    """Opens `path` at once (RecordingError if that fails); `add` queues a frame, a writer thread appends it.

    Layout: /holograms (N,H,W) uint16|float32 chunked (1,H,W) and resizable, /z_m (ground truth, when the source
    knows it), /z_focus_m (the z each frame was shown at), /z_pred_m (the method's raw z, NaN under a manual z),
    /timestamps_s (since the first frame), /frame_index, /method, /background; optics and extra as root attrs.
    The file uses the default (v0) HDF5 format and is flushed every `flush_interval_s`: after a kill (-9) plain
    `h5py.File(path)` reads every flushed frame (measured: SWMR files need `swmr=True` or h5clear to reopen);
    readers should use the shortest dataset length (`recorded_length`). Free disk space is checked before each
    frame: below `min_free_bytes` the recording stops cleanly and the file stays complete. A write that fails anyway
    (full disk, size limit) stops the recording too; HDF5 may then leave the file unreadable. Either way `error` is
    set, `on_error(message)` called, and the stream goes on."""

    def __init__(self, path: str | Path, optics: Optics, *, background: np.ndarray | None = None,
                 attrs: dict[str, Any] | None = None, flush_interval_s: float = 0.5, max_queue: int = 64,
                 on_error: Any = None, min_free_bytes: int = 200_000_000) -> None:
        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)
        self.optics = optics
        self.flush_interval_s = float(flush_interval_s)
        self.on_error = on_error
        self.error: str | None = None
        self.written = 0
        self.flushed = 0
        self.dropped = 0
        self._q: queue.Queue[tuple | None] = queue.Queue(maxsize=max_queue)
        self._background = background
        self._t0: float | None = None
        self._started = time.monotonic()
        self._sets: dict[str, h5py.Dataset] = {}
        self._has_truth = False
        if self.path.is_dir():
            raise RecordingError(f"{self.path}: is a folder; choose a file name for the recording")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: h5py.File | None = h5py.File(self.path, "w")
            self._write_attrs(attrs or {})
            self._f.flush()
        except OSError as e:
            raise RecordingError(_describe(self.path, e)) from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"record-{self.path.name}", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.path)

    # public ------------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set() and self.error is None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def add(self, frame: np.ndarray, *, index: int, timestamp: float, z_m: float, z_pred_m: float | None = None,
            z_true_m: float | None = None, method: str = "") -> bool:
        """Queue one frame; False when the recording has stopped or the writer is too far behind (dropped)."""
        if not self.running:
            return False
        item = (np.asarray(frame), int(index), float(timestamp), float(z_m),
                math.nan if z_pred_m is None else float(z_pred_m), None if z_true_m is None else float(z_true_m),
                str(method))
        try:
            self._q.put(item, timeout=1.0)
        except queue.Full:
            self.dropped += 1
            log.warning("recording %s: writer behind, frame %d dropped", self.path.name, index)
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the file."""
        if not self._stop.is_set():
            self._stop.set()
            try:
                self._q.put_nowait(None)
            except queue.Full:
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # writer thread -----------------------------------------------------------------------------------------
    def _write_attrs(self, extra: dict[str, Any]) -> None:
        f = self._f
        assert f is not None
        for k, v in {**extra, **self.optics.to_dict()}.items():
            if v is None:
                continue
            f.attrs[k] = np.asarray(v) if isinstance(v, list | tuple) else v
        f.attrs["recording"] = True
        f.attrs["started_unix_s"] = time.time()
        f.attrs["flush_interval_s"] = self.flush_interval_s

    def _create(self, frame: np.ndarray, has_truth: bool) -> None:
        f = self._f
        assert f is not None
        h, w = frame.shape
        dtype = np.float32 if frame.dtype.kind == "f" else np.uint16
        f.create_dataset("holograms", shape=(0, h, w), maxshape=(None, h, w), chunks=(1, h, w), dtype=dtype)
        for name in FLOAT_SETS + (("z_m",) if has_truth else ()):
            f.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.float64)
        f.create_dataset("frame_index", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.int64)
        f.create_dataset("method", shape=(0,), maxshape=(None,), chunks=(1024,), dtype="S12")
        if self._background is not None and np.shape(self._background) == (h, w):
            f.create_dataset("background", data=np.asarray(self._background).astype(dtype))
        self._sets = {k: v for k, v in f.items() if k != "background"}
        self._has_truth = has_truth

    def _append(self, item: tuple) -> None:
        frame, index, ts, z, z_pred, z_true, method = item
        if frame.ndim != 2:
            raise ValueError(f"frame {index} has shape {frame.shape}, expected (H, W)")
        if not self._sets:
            self._create(frame, z_true is not None)
            self._t0 = ts
        s = self._sets
        if frame.shape != s["holograms"].shape[1:]:
            raise ValueError(f"frame {index} is {frame.shape}, the recording holds {s['holograms'].shape[1:]}")
        free = shutil.disk_usage(self.path.parent).free
        if free - frame.nbytes < self.min_free_bytes:
            raise _LowDisk(f"{self.path}: the disk is almost full ({free / 1e6:.0f} MB free); recording stopped "
                           f"after {self.written} frames, the file is complete")
        n = self.written
        values = {"z_focus_m": z, "z_pred_m": z_pred, "timestamps_s": ts - (self._t0 or ts), "frame_index": index,
                  "method": method.encode()[:12], "z_m": math.nan if z_true is None else z_true}
        s["holograms"].resize(n + 1, axis=0)
        s["holograms"][n] = frame
        for name, v in values.items():
            if name in s:
                s[name].resize(n + 1, axis=0)
                s[name][n] = v
        self.written = n + 1

    def _flush(self) -> None:
        if self._f is not None:
            self._f.flush()
            self.flushed = self.written

    def _fail(self, e: BaseException) -> None:
        if isinstance(e, _LowDisk):
            self.error = str(e)
        else:
            self.error = _describe(self.path, e)
        log.error("%s", self.error)
        self._stop.set()
        if self._f is not None:
            if isinstance(e, _LowDisk):
                try:
                    self._f.close()
                except Exception as e2:
                    log.warning("closing %s: %s", self.path, e2)
                    self._abandon(self._f)
            else:
                self._abandon(self._f)
        self._f = None
        if self.on_error is not None:
            try:
                self.on_error(self.error)
            except Exception:
                log.exception("recording error callback failed")

    def _abandon(self, f: h5py.File) -> None:
        """Close a file whose writes fail. HDF5 keeps a file it could not flush open and crashes at interpreter exit
        trying again, so its descriptor is first pointed at the null device: the close then succeeds and the part
        flushed before the error stays as it was on disk."""
        try:
            fd = f.id.get_vfd_handle()
            if isinstance(fd, int) and os.name == "posix":
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
        except Exception as e:
            log.warning("recording %s: could not detach the failed file (%s)", self.path, e)
        try:
            f.close()
        except Exception as e:
            log.warning("closing %s after an error: %s", self.path, e)

    def _run(self) -> None:
        last_flush = time.monotonic()
        try:
            while True:
                timeout = max(0.01, self.flush_interval_s - (time.monotonic() - last_flush))
                try:
                    item = self._q.get(timeout=timeout)
                except queue.Empty:
                    item = ...
                if item is None:
                    break
                if item is not ...:
                    self._append(item)  # type: ignore[arg-type]
                if time.monotonic() - last_flush >= self.flush_interval_s and self.flushed != self.written:
                    self._flush()
                    last_flush = time.monotonic()
                elif item is ...:
                    last_flush = time.monotonic()
                if self._stop.is_set() and self._q.empty():
                    break
            while not self._q.empty():  # frames queued before stop()
                item = self._q.get_nowait()
                if item is not None:
                    self._append(item)
            self._flush()
            if self._f is not None:
                self._f.close()
                self._f = None
            log.info("recording %s closed: %d frames", self.path, self.written)
        except Exception as e:
            self._fail(e)


def recorded_length(f: h5py.File) -> int:
    """Frames fully recorded in an open recording: the shortest per-frame dataset (robust after a kill)."""
    names = ["holograms", *FLOAT_SETS, "frame_index", "method", "z_m"]
    lengths = [len(f[n]) for n in names if n in f]
    return min(lengths) if lengths else 0
