"""app.gui.sdk, the plug-in widget toolkit, on both hosts: the main-thread decorator, jobs with progress and cancel,
newest-only streams, nothing after shutdown, the model picker, probability bars and the banner."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QWidget

from app.core.frames import ArraySource
from app.core.host import HeadlessHost
from app.core.jobs import ProgressEvent
from app.core.plugin_api import PluginWidget
from app.gui.dispatch import Dispatcher
from app.gui.host import QtHost
from app.gui.jobs_qt import JobsModel
from app.gui.sdk import Banner, JobControls, ModelPicker, PluginWidgetBase, ProbabilityBars, main_thread


@pytest.fixture(params=["qt", "headless"])
def host(request, zoo, tmp_path):
    h = (QtHost("t", zoo, JobsModel(Dispatcher()), home=tmp_path) if request.param == "qt"
         else HeadlessHost(zoo, home=tmp_path))
    yield h
    h.shutdown(5)


class Probe(PluginWidgetBase):
    """A minimal plug-in widget that records which thread its callbacks ran on."""

    plugin_id = "probe"

    def __init__(self, host, engine=None) -> None:
        super().__init__(host, engine)
        self.seen: list[tuple[str, object, str]] = []
        self.ended: list[tuple[str, str]] = []
        self.stopped = 0

    def note(self, kind: str):
        return lambda value=None: self.seen.append((kind, value, threading.current_thread().name))

    def job_ended(self, job) -> None:
        self.ended.append((job.key, job.outcome))

    def stop(self) -> None:
        super().stop()
        self.stopped += 1


@pytest.fixture
def probe(host, qtbot):
    w = Probe(host)
    qtbot.addWidget(w)
    yield w
    w.shutdown()


def test_base_keeps_the_lifecycle_protocol(probe):
    assert isinstance(probe, PluginWidget) and isinstance(probe, QWidget)


def test_main_thread_decorator(qtbot):
    ran: list[str] = []

    @main_thread
    def mark(tag: str) -> str:
        ran.append(f"{tag}@{threading.current_thread().name}")
        return tag

    assert mark("direct") == "direct"  # on the Qt thread: called at once, the value returned
    t = threading.Thread(target=lambda: mark("worker"), name="worker")
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(ran) == 2, timeout=3000)
    assert ran == ["direct@MainThread", "worker@MainThread"]


def test_job_progress_result_and_controls(probe, qtbot):
    controls = JobControls()
    qtbot.addWidget(controls)
    release = threading.Event()

    def fn(tok, emit):
        for i in range(5):
            emit(ProgressEvent("progress", step=i + 1, total=5, message="step"))
        release.wait(5)
        return "done"

    job = probe.run_job("count", fn, probe.note("result"), on_event=probe.note("event"), key="count",
                        controls=controls)
    assert probe.job_running("count") and controls.busy and controls.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: controls.progress.value() == 5, timeout=5000)
    assert controls.progress.maximum() == 5
    release.set()
    qtbot.waitUntil(lambda: probe.ended == [("count", "finished")], timeout=5000)
    assert job.outcome == "finished" and job.result == "done" and not probe.job_running("count")
    assert {t for _, _, t in probe.seen} == {"MainThread"}  # every callback on the Qt thread, whatever the host
    assert [k for k, _, _ in probe.seen][-1] == "result"
    assert not controls.busy and not controls.cancel_button.isEnabled() and controls.isHidden()


def test_cancel_through_the_controls(probe, qtbot):
    controls = JobControls(always_visible=True)
    qtbot.addWidget(controls)

    def fn(tok, emit):
        while True:
            tok.check()
            time.sleep(0.01)

    job = probe.run_job("forever", fn, probe.note("result"), key="forever", controls=controls)
    controls.cancel_button.click()
    qtbot.waitUntil(lambda: probe.ended == [("forever", "cancelled")], timeout=5000)
    assert job.outcome == "cancelled" and not any(k == "result" for k, _, _ in probe.seen)
    assert not controls.cancel_button.isEnabled() and not controls.isHidden()  # idle, still shown


def test_errors_arrive_on_the_qt_thread(probe, qtbot):
    from app.core.errors import VitascopeError

    def fail(tok, emit):
        raise VitascopeError("bad file")

    probe.run_job("fail", fail, on_error=probe.note("error"))
    qtbot.waitUntil(lambda: bool(probe.ended), timeout=5000)
    assert probe.seen == [("error", "bad file", "MainThread")] and probe.ended == [("fail", "failed")]


def test_nothing_reaches_the_widget_after_shutdown(probe, qtbot):
    started, release = threading.Event(), threading.Event()

    def fn(tok, emit):
        started.set()
        release.wait(5)
        return 1

    probe.run_job("late", fn, probe.note("result"), on_event=probe.note("event"))
    assert started.wait(5)
    threading.Timer(0.1, release.set).start()
    probe.shutdown()  # cancels and waits for the job: its result comes after the widget closed
    probe.shutdown()  # idempotent
    qtbot.wait(200)
    assert probe.seen == [] and probe.jobs == {} and probe.closed and probe.stopped == 1


def test_stream_delivers_newest_only_on_the_qt_thread(probe, qtbot):
    got: list[tuple[int, str]] = []

    def slow(index: int) -> None:
        got.append((index, threading.current_thread().name))
        time.sleep(0.02)

    frames = np.zeros((600, 4, 4), np.uint8)
    probe.start_stream(ArraySource(frames, fps=1000), lambda f: f.index, slow)
    assert probe.running
    qtbot.waitUntil(lambda: probe.stream.stats.processed >= 300 and len(got) >= 3, timeout=10000)
    probe.stop()
    assert not probe.running and {t for _, t in got} == {"MainThread"}
    indices = [i for i, _ in got]
    assert indices == sorted(indices) and len(got) < probe.stream.stats.processed / 2


def test_model_picker_follows_the_zoo_and_remembers_the_choice(host, zoo, add_model, tmp_path, qtbot):
    picker = ModelPicker(host, "demo.shapes", plugin_id="probe")
    qtbot.addWidget(picker)
    assert not picker.isEnabled() and picker.currentText() == "(no model installed)" and picker.model_ids() == []
    refreshed: list[object] = []
    picker.refreshed.connect(refreshed.append)
    add_model("a")
    add_model("other-task", task="ecg.screen")
    threading.Thread(target=lambda: zoo.install(add_model("b", root=tmp_path / "src"))).start()
    qtbot.waitUntil(lambda: picker.model_ids() == ["a", "b"], timeout=5000)
    assert picker.isEnabled() and refreshed
    chosen: list[object] = []
    picker.chosen.connect(chosen.append)
    picker.setCurrentIndex(picker.findData("b"))
    assert chosen == ["b"] and host.settings("probe")["model"] == "b"
    picker.refresh()
    assert picker.currentData() == "b" and chosen == ["b"]  # a refill keeps the choice and is not a choice
    again = ModelPicker(host, "demo.shapes", plugin_id="probe", first=(("Auto", None),))
    qtbot.addWidget(again)
    assert again.currentData() == "b" and again.itemText(0) == "Auto"  # the saved choice, after the fixed entry


def test_probability_bars_and_banner(qtbot):
    bars = ProbabilityBars(("cat", "dog"), titles={"cat": "Cat"})
    qtbot.addWidget(bars)
    bars.set_probabilities({"cat": 0.25, "dog": 0.75})
    assert [b.value() for b in bars.bars.values()] == [250, 750] and bars.bars["dog"].format() == "75.0%"
    assert "Cat" in bars.names["cat"].text() and bars.colour("cat") != bars.colour("dog")
    bars.set_probabilities({"x": 1.0})  # other classes: the rows follow
    assert bars.labels == ("x",) and bars.bars["x"].value() == 1000
    bars.clear()
    assert bars.bars["x"].value() == 0 and bars.bars["x"].format() == "—"

    page = QWidget()
    banner = Banner(parent=page)
    qtbot.addWidget(page)
    page.show()
    assert not banner.isVisible()  # empty: takes no room in its page
    banner.show_message("<b>careful</b>", "error")
    assert banner.isVisible() and banner.level == "error" and "231, 76, 60" in banner.styleSheet()
    banner.clear_message()
    assert not banner.isVisible()
    with pytest.raises(ValueError):
        banner.show_message("x", "shout")
