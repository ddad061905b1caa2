"""The one threading rule of app.core.plugin_api, kept by both hosts: every callback (job events, results and
errors, stream results, model changes, `post`) runs on the host's UI thread, one at a time, in posting order;
stream results are newest-only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from app.core.errors import VitascopeError
from app.core.frames import ArraySource
from app.core.host import HeadlessHost
from app.core.jobs import ProgressEvent
from app.core.plugin_api import Host
from app.gui.dispatch import Dispatcher
from app.gui.host import QtHost
from app.gui.jobs_qt import JobsModel


@pytest.fixture(params=["qt", "headless"])
def host(request, zoo, tmp_path, qtbot):
    if request.param == "qt":
        h = QtHost("test", zoo, JobsModel(Dispatcher()), home=tmp_path)
        assert h.ui_thread is threading.main_thread()
    else:
        h = HeadlessHost(zoo, home=tmp_path)
        assert h.ui_thread is not threading.current_thread()
    yield h
    h.shutdown(5)


def _wait(host: Host, qtbot, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the host's UI thread run until `cond()`: the Qt event loop for QtHost, polling for HeadlessHost."""
    if isinstance(host, QtHost):
        qtbot.waitUntil(cond, timeout=int(timeout * 1000))
        return
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        host.process_events(0.5)
        time.sleep(0.01)


def test_both_hosts_satisfy_the_protocol(host):
    assert isinstance(host, Host)


def test_job_callbacks_run_on_the_ui_thread_in_order(host, qtbot):
    seen: list[tuple[str, str]] = []
    worker: list[str] = []

    def fn(tok, emit):
        worker.append(threading.current_thread().name)
        for i in range(20):
            emit(ProgressEvent("progress", step=i, total=20))
        return 42

    def note(kind: str) -> Callable[..., None]:
        return lambda *a: seen.append((kind if not a or not isinstance(a[0], ProgressEvent) else
                                       f"{kind}:{a[0].event}:{a[0].step}", threading.current_thread().name))

    host.run_job("count", fn, on_result=note("result"), on_event=note("event"))
    _wait(host, qtbot, lambda: any(k == "result" for k, _ in seen))
    ui = host.ui_thread.name
    assert {t for _, t in seen} == {ui} and worker and worker[0] != ui
    kinds = [k for k, _ in seen]
    assert kinds[:20] == [f"event:progress:{i}" for i in range(20)]  # posting order is kept
    assert kinds.index("event:finished:None") < kinds.index("result")


def test_job_errors_run_on_the_ui_thread(host, qtbot):
    got: list[tuple[str, str]] = []

    def fail(tok, emit):
        raise VitascopeError("no such file")

    host.run_job("fail", fail, on_error=lambda m: got.append((m, threading.current_thread().name)))
    _wait(host, qtbot, lambda: bool(got))
    assert got == [("no such file", host.ui_thread.name)]


def test_callbacks_never_overlap(host, qtbot):
    """Two jobs finishing together: their callbacks run one after the other, never at the same time."""
    active, peak, done = [0], [0], []
    lock = threading.Lock()

    def slow_callback(_value) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        done.append(1)

    for i in range(4):
        host.run_job(f"j{i}", lambda tok, emit: None, on_result=slow_callback)
    _wait(host, qtbot, lambda: len(done) == 4)
    assert peak[0] == 1


def test_model_changes_reach_the_ui_thread(host, zoo, add_model, tmp_path, qtbot):
    seen: list[str] = []
    host.on_models_changed(lambda: seen.append(threading.current_thread().name))
    t = threading.Thread(target=lambda: zoo.install(add_model("m", root=tmp_path / "src")), name="installer")
    t.start()
    t.join()
    _wait(host, qtbot, lambda: bool(seen))
    assert seen == [host.ui_thread.name]


def test_post_runs_in_order_on_the_ui_thread(host, qtbot):
    got: list[tuple[int, str]] = []

    def producer() -> None:
        for i in range(50):
            host.post(lambda i=i: got.append((i, threading.current_thread().name)))

    t = threading.Thread(target=producer)
    t.start()
    t.join()
    _wait(host, qtbot, lambda: len(got) == 50)
    assert [i for i, _ in got] == list(range(50)) and {n for _, n in got} == {host.ui_thread.name}


def test_stream_results_are_newest_only_on_the_ui_thread(host, qtbot):
    """A consumer slower than the stream gets the newest results, not a backlog of old ones."""
    got: list[tuple[int, str]] = []

    def slow(index: int) -> None:
        got.append((index, threading.current_thread().name))
        time.sleep(0.03)

    frames = np.zeros((1000, 4, 4), np.uint8)
    handle = host.start_stream(ArraySource(frames, fps=1000, loop=False), lambda f: f.index, slow)
    _wait(host, qtbot, lambda: handle.stats.processed >= 300 and len(got) >= 3)
    handle.stop(5)
    assert {n for _, n in got} == {host.ui_thread.name}
    indices = [i for i, _ in got]
    assert indices == sorted(indices) and len(got) < handle.stats.processed / 2  # coalesced, in order


def test_headless_wait_returns_after_the_callbacks_ran(zoo, tmp_path):
    host = HeadlessHost(zoo, home=tmp_path)
    got: list[int] = []
    handle = host.run_job("slow callback", lambda tok, emit: 7,
                          on_result=lambda v: (time.sleep(0.2), got.append(v)))
    assert handle.wait(5) and got == [7]
    host.shutdown()
    host.post(lambda: got.append(0))  # after shutdown nothing runs
    time.sleep(0.05)
    assert got == [7] and not host.ui_thread.is_alive()
