"""The headless UI thread: one thread that runs posted callbacks one at a time, in order, and a newest-only
hand-off for stream results (the Qt-free twin of app.gui.dispatch's Dispatcher and Latest)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_STOP = object()


class CallbackThread:
    """`post(fn)` from any thread runs `fn()` later on this object's own thread, serially and in posting order.
    After `close()` new posts are dropped; callbacks already queued still run before the thread ends."""

    def __init__(self, name: str = "host-ui") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def post(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if not self._closed:
                self._queue.put(fn)

    def on_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything posted before this call has run; True unless it timed out. Called on this
        thread itself it returns True at once (the caller is one of the queued callbacks)."""
        if self.on_thread() or not self.thread.is_alive():
            return True
        done = threading.Event()
        self.post(done.set)
        return done.wait(timeout) if not self._closed else True

    def close(self, timeout: float | None = 5.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if not self.on_thread():
            self.thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def _loop(self) -> None:
        while True:
            fn = self._queue.get()
            if fn is _STOP:
                return
            try:
                fn()
            except Exception:  # a plug-in callback's bug must not stop the callbacks after it
                log.exception("host callback failed")


class LatestValue:
    """`put(value)` from a worker; `callback(value)` runs through `post` with the newest value only: at most one
    delivery is pending, so a fast producer never builds a backlog."""

    def __init__(self, callback: Callable[[Any], None], post: Callable[[Callable[[], None]], None]) -> None:
        self._callback = callback
        self._post = post
        self._lock = threading.Lock()
        self._value: Any = None
        self._pending = False
        self._closed = False
        self.delivered = 0
        self.coalesced = 0

    def put(self, value: Any) -> None:
        with self._lock:
            if self._closed:
                return
            self.coalesced += self._pending
            self._value = value
            if self._pending:
                return
            self._pending = True
        self._post(self._flush)

    def _flush(self) -> None:
        with self._lock:
            value, self._value, self._pending = self._value, None, False
            if self._closed:
                return
        self.delivered += 1
        self._callback(value)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._value = None
