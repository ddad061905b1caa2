"""QtHost: callbacks on the Qt thread, newest-only stream delivery, settings and docks."""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtWidgets import QLabel

from app.core.frames import ArraySource
from app.core.plugin_api import Host
from app.gui.dispatch import Dispatcher, Latest
from app.gui.host import QtHost
from app.gui.jobs_qt import JobsModel


def _host(zoo) -> QtHost:
    return QtHost("test", zoo, JobsModel(Dispatcher()))


def test_satisfies_the_host_protocol(zoo):
    assert isinstance(_host(zoo), Host)


def test_job_and_model_callbacks_run_on_the_qt_thread(zoo, add_model, tmp_path, qtbot):
    host = _host(zoo)
    seen: list[str] = []
    host.on_models_changed(lambda: seen.append(threading.current_thread().name))
    host.run_job("install", lambda tok, emit: zoo.install(add_model("m", root=tmp_path / "src")),
                 on_result=lambda card: seen.append(card.id),
                 on_event=lambda ev: seen.append(ev.event))
    qtbot.waitUntil(lambda: "m" in seen and "MainThread" in seen, timeout=5000)
    assert "finished" in seen and set(seen) <= {"MainThread", "m", "finished"}


def test_latest_never_builds_a_backlog(qtbot):
    got: list[int] = []
    latest = Latest(got.append)

    def produce() -> None:
        for i in range(5000):
            latest.put(i)

    t = threading.Thread(target=produce)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: bool(got) and got[-1] == 4999, timeout=2000)
    assert len(got) == 1 and latest.coalesced == 4999  # one delivery, not a backlog of 5000


def test_stream_results_arrive_on_the_qt_thread_and_stop_joins(zoo, qtbot):
    host = _host(zoo)
    threads: list[str] = []
    frames = np.zeros((5, 8, 8), np.uint8)
    handle = host.start_stream(ArraySource(frames, fps=200, loop=True), lambda f: f.index,
                               lambda r: threads.append(threading.current_thread().name))
    qtbot.waitUntil(lambda: len(threads) >= 5, timeout=3000)
    host.shutdown(2)
    assert not handle.running and set(threads) == {"MainThread"}
    n = len(threads)
    time.sleep(0.05)
    qtbot.wait(20)
    assert len(threads) == n  # nothing delivered after the stream stopped


def test_settings_round_trip_and_docks(zoo, qtbot):
    host = _host(zoo)
    assert host.settings("test") == {}
    host.save_settings("test", {"model": "m", "fps": 12.5, "flags": [1, 2]})
    assert host.settings("test") == {"model": "m", "fps": 12.5, "flags": [1, 2]}
    label = QLabel("dock")
    qtbot.addWidget(label)
    host.add_dock(label, "Extra")
    assert host.docks == [(label, "Extra")]
    assert host.data_dir("test").is_dir()
