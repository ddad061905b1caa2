"""Garbage in reference cycles is collected on the Qt thread, never on the worker thread that allocates."""

from __future__ import annotations

import gc
import threading

from app.gui.gc_pin import QtThreadGC


class _Cycle:
    def __init__(self, seen: list[str]) -> None:
        self.me = self
        self.seen = seen

    def __del__(self) -> None:
        self.seen.append(threading.current_thread().name)


def _drop_a_cycle_then_churn_on_a_worker(seen: list[str]) -> list[list[int]]:
    """The worker keeps 5000 new containers (each counts towards a gen-0 collection) and hands them back."""
    _Cycle(seen)
    kept: list[list[int]] = []
    worker = threading.Thread(target=lambda: kept.extend([i] for i in range(5000)), name="worker")
    worker.start()
    worker.join()
    return kept


def test_without_pinning_a_worker_thread_collects_the_cycle():
    # the hazard this module exists for: the interpreter collects where the allocation threshold trips
    assert gc.isenabled()
    seen: list[str] = []
    _drop_a_cycle_then_churn_on_a_worker(seen)
    assert seen == ["worker"]


def test_pinned_collection_runs_on_the_qt_thread_and_stop_restores_the_default(qapp, qtbot):
    pinned = QtThreadGC(interval_ms=20, parent=qapp)
    gc.enable()  # the autouse fixture pinned it already: start from the interpreter's default
    pinned.start()
    try:
        assert not gc.isenabled()
        seen: list[str] = []
        kept = _drop_a_cycle_then_churn_on_a_worker(seen)
        assert seen == [] and len(kept) == 5000
        qtbot.waitUntil(lambda: seen != [], timeout=3000)
        assert seen == [threading.main_thread().name] and pinned.collections >= 1
    finally:
        pinned.stop()
    assert gc.isenabled() and not pinned.running
    pinned.deleteLater()
