"""Pin Python's cyclic garbage collection to the Qt thread: a collection tripped on a worker thread (pandas in an ECG
import, a frame reader) can destroy Qt objects caught in reference cycles from the wrong thread, and that segfaults."""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class QtThreadGC(QObject):
    """While running, automatic collection is off and a timer on the owning (Qt) thread collects the generations
    whose counts passed their thresholds, as the interpreter would (the pattern calibre and OpenCue use).
    `stop()` turns automatic collection back on if it was on before."""

    def __init__(self, interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._was_enabled = False
        self.collections = 0

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def start(self) -> QtThreadGC:
        if not self.running:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()
        return self

    def stop(self) -> None:
        if self.running:
            self._timer.stop()
            self.collect_due()
            if self._was_enabled:
                gc.enable()

    def collect_due(self) -> None:
        """Collect young to old, each generation only when its count passed its threshold."""
        t0, t1, t2 = gc.get_threshold()
        c0, c1, c2 = gc.get_count()
        if t0 and c0 > t0:
            gc.collect(0)
            self.collections += 1
            if c1 > t1:
                gc.collect(1)
                if c2 > t2:
                    gc.collect(2)


def pin_gc_to_qt_thread(app: QObject) -> QtThreadGC:
    """Start (once per application object) a `QtThreadGC` owned by `app`; returns it."""
    pinned = app.findChild(QtThreadGC)
    return (pinned or QtThreadGC(parent=app)).start()
