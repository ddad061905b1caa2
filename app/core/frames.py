"""Live frames: the FrameSource protocol, a one-slot LatestFrameBuffer (newest wins, no backlog) and a
StreamHandle that reads a source and processes the newest frame on worker threads."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Frame:
    index: int
    data: np.ndarray
    timestamp: float = field(default_factory=time.monotonic)
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class FrameSource(Protocol):
    """Yields frames; `read()` blocks until the next frame (paced by the source) and returns None at the end."""

    name: str

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class LatestFrameBuffer:
    """One slot. `put` replaces an unread frame (counted as dropped); `get` waits for a frame newer than the last."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0
        self.received = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.received += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest unread frame, or None on timeout / when closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout):
                return None
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Pacer:
    """Sleeps so that successive frames leave at `fps` (None = as fast as possible); never builds up a debt."""

    def __init__(self, fps: float | None) -> None:
        self.fps = fps
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self.fps:
            return
        self._next += 1.0 / self.fps
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            self._next = time.monotonic()


class ArraySource:
    """Frames from an array stack or an iterator of arrays, optionally paced at `fps` and looped."""

    def __init__(self, frames: np.ndarray | Iterator[np.ndarray], fps: float | None = None, loop: bool = False,
                 name: str = "array", meta: dict[str, Any] | None = None) -> None:
        self.name = name
        self._stack = frames if isinstance(frames, np.ndarray) else None
        self._iter = None if isinstance(frames, np.ndarray) else iter(frames)
        self.fps = fps
        self.loop = loop
        self.meta = dict(meta or {})
        self._i = 0
        self._pacer = Pacer(fps)

    def read(self) -> Frame | None:
        if self._stack is not None:
            n = len(self._stack)
            if n == 0 or (self._i >= n and not self.loop):
                return None
            data = self._stack[self._i % n]
        else:
            try:
                data = next(self._iter)  # type: ignore[arg-type]
            except StopIteration:
                return None
        self._pacer.wait()
        frame = Frame(self._i, np.asarray(data), meta=dict(self.meta))
        self._i += 1
        return frame

    def close(self) -> None:
        self._stack = None
        self._iter = iter(())


@dataclass
class StreamStats:
    read: int = 0
    processed: int = 0
    dropped: int = 0
    last_ms: float = 0.0
    fps: float = 0.0
    error: str | None = None


class StreamHandle:
    """Reader thread → LatestFrameBuffer → processor thread → `deliver(result)`. `stop()` joins both threads."""

    def __init__(self, source: FrameSource, process: Callable[[Frame], Any],
                 deliver: Callable[[Any], None], on_error: Callable[[str], None] | None = None) -> None:
        self.source = source
        self._process = process
        self._deliver = deliver
        self._on_error = on_error
        self.buffer = LatestFrameBuffer()
        self.stats = StreamStats()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=f"read-{source.name}", daemon=True)
        self._worker = threading.Thread(target=self._work_loop, name=f"proc-{source.name}", daemon=True)
        self._t_window: list[float] = []

    def start(self) -> StreamHandle:
        self._reader.start()
        self._worker.start()
        return self

    @property
    def running(self) -> bool:
        return self._worker.is_alive()

    def _fail(self, msg: str) -> None:
        self.stats.error = msg
        log.warning("stream %s: %s", self.source.name, msg)
        self._stop.set()
        self.buffer.close()
        if self._on_error:
            self._on_error(msg)

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.stats.read += 1
                self.buffer.put(frame)
        except Exception as e:  # a camera or file that fails mid-stream must not kill the app
            self._fail(f"{self.source.name}: reading failed ({e})")
        finally:
            self.buffer.close()

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            frame = self.buffer.get(timeout=0.1)
            if frame is None:
                if self.buffer.closed:
                    break
                continue
            t0 = time.perf_counter()
            try:
                result = self._process(frame)
            except Exception as e:
                self._fail(f"{self.source.name}: frame {frame.index} could not be processed ({e})")
                break
            now = time.perf_counter()
            self.stats.last_ms = (now - t0) * 1e3
            self.stats.processed += 1
            self.stats.dropped = self.buffer.dropped
            self._t_window = [t for t in self._t_window if now - t < 2.0] + [now]
            if len(self._t_window) > 1:
                self.stats.fps = (len(self._t_window) - 1) / (self._t_window[-1] - self._t_window[0])
            self._deliver(result)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.buffer.close()
        for t in (self._worker, self._reader):
            if t.is_alive() and t is not threading.current_thread():
                t.join(timeout)
        try:
            self.source.close()
        except Exception as e:
            log.warning("closing %s: %s", self.source.name, e)
