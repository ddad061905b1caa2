"""Marshal callables from worker threads to the Qt thread: `Dispatcher` (every call, in order) and
`Latest` (only the newest value, at most one delivery pending, so a fast producer never builds a backlog)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from app.core.callbacks import LatestValue

log = logging.getLogger(__name__)


class Dispatcher(QObject):
    """`dispatch(fn)` from any thread runs `fn()` later on the thread owning this object (the Qt thread).
    After `close()` pending and new calls are dropped (the window is going away)."""

    _call = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._closed = False
        self._lock = threading.Lock()  # close() waits for an emit in flight: none starts or runs after it
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def __call__(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._call.emit(fn)
            except RuntimeError:  # the C++ object is gone: the app is shutting down
                self._closed = True

    def _run(self, fn: Callable[[], None]) -> None:
        if self._closed:
            return
        try:
            fn()
        except Exception:  # a plug-in callback's bug must not take the event loop down
            log.exception("callback failed on the Qt thread")

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


class Latest(QObject):
    """`put(value)` from a worker thread; `callback(value)` runs on the Qt thread with the newest value only
    (app.core.callbacks.LatestValue posting through a queued signal)."""

    _call = Signal(object)

    def __init__(self, callback: Callable[[Any], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._latest = LatestValue(callback, self._post)
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def put(self, value: Any) -> None:
        self._latest.put(value)

    def close(self) -> None:
        self._latest.close()

    @property
    def delivered(self) -> int:
        return self._latest.delivered

    @property
    def coalesced(self) -> int:
        """Values replaced before the Qt thread took them."""
        return self._latest.coalesced

    def _post(self, fn: Callable[[], None]) -> None:
        try:
            self._call.emit(fn)
        except RuntimeError:  # the C++ object is gone: the app is shutting down
            self._latest.close()

    @staticmethod
    def _run(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("stream result callback failed")
