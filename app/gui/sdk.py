"""The toolkit for plug-in widgets, and the one app.gui module a plug-in's widget.py may import: a widget base with
the lifecycle of app.core.plugin_api.PluginWidget, a main-thread decorator, jobs with progress and cancel, a model
picker bound to a task, probability bars and a banner. Works the same under QtHost and HeadlessHost."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.core.frames import FrameSource, StreamHandle
from app.core.jobs import ProgressEvent
from app.core.plugin_api import Host, JobFn, JobHandle

from .dispatch import Dispatcher, Latest

__all__ = ["IMAGE_FILES", "Banner", "Job", "JobControls", "Latest", "ModelPicker", "PluginWidgetBase",
           "ProbabilityBars", "ask_open_file", "ask_save_file", "button", "class_colour", "hbox", "is_main_thread",
           "main_thread", "spin_box", "style_plot_axes"]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# the main thread -----------------------------------------------------------------------------------------------
_BRIDGE: Dispatcher | None = None
_BRIDGE_LOCK = threading.Lock()


def _bridge() -> Dispatcher:
    """One per process, owned by the Qt thread and never deleted: a worker may still post after the widget that
    started it is gone (posting through a deleted QObject from another thread crashes)."""
    global _BRIDGE
    with _BRIDGE_LOCK:
        if _BRIDGE is None:
            _BRIDGE = Dispatcher()
            app = QCoreApplication.instance()
            if app is not None and _BRIDGE.thread() is not app.thread():
                _BRIDGE.moveToThread(app.thread())
        return _BRIDGE


def is_main_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()


def main_thread(fn: F) -> F:
    """Decorator: calls from any thread run `fn` on the Qt main thread (directly when already there, else queued
    in call order; the caller gets None). The model is superqt's `ensure_main_thread`."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if is_main_thread():
            return fn(*args, **kwargs)
        _bridge()(functools.partial(fn, *args, **kwargs))
        return None

    return call  # type: ignore[return-value]


def style_plot_axes(plot: Any, colour: QColor, axes: tuple[str, ...] = ("left", "bottom")) -> None:
    """A pyqtgraph plot's axis lines and text in `colour` (the palette's text colour: readable in every theme)."""
    import pyqtgraph as pg

    for name in axes:
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(colour))
        axis.setTextPen(pg.mkPen(colour))


def spin_box(lo: float, hi: float, value: float, *, decimals: int | None = None, step: float | None = None,
             prefix: str = "", suffix: str = "", special: str = "") -> Any:
    """A QSpinBox (integer `lo`, `hi`, `value` and no `decimals`) or QDoubleSpinBox, set up in one call;
    `special` is the text shown at the minimum (e.g. "unknown")."""
    integer = decimals is None and all(isinstance(v, int) for v in (lo, hi, value))
    box = QSpinBox() if integer else QDoubleSpinBox()
    box.setRange(lo, hi)
    if not integer:
        box.setDecimals(2 if decimals is None else decimals)
    if step is not None:
        box.setSingleStep(step)
    for setter, text in ((box.setPrefix, prefix), (box.setSuffix, suffix), (box.setSpecialValueText, special)):
        if text:
            setter(text)
    box.setValue(value)
    return box


IMAGE_FILES = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)"  # a file-dialog filter


def button(text: str, slot: Callable[[], Any], tip: str = "") -> QPushButton:
    """A push button that calls `slot()` when clicked."""
    b = QPushButton(text)
    b.clicked.connect(lambda: slot())
    if tip:
        b.setToolTip(tip)
    return b


def hbox(*widgets: QWidget, stretch: bool = False) -> QHBoxLayout:
    """The widgets side by side (`stretch`: pushed to the left)."""
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    if stretch:
        row.addStretch(1)
    return row


def ask_open_file(parent: QWidget, title: str, filters: str = IMAGE_FILES) -> str | None:
    """A file the user picks to open, or None when the dialog is cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, "", filters)
    return path or None


def ask_save_file(parent: QWidget, title: str, default: str, filters: str) -> str | None:
    """Where the user wants a file saved, or None when the dialog is cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, default, filters)
    return path or None


# banner --------------------------------------------------------------------------------------------------------
BANNER_STYLES = {
    "info": "background: rgba(52, 152, 219, 35); border: 1px solid rgba(52, 152, 219, 150);",
    "warning": "background: rgba(230, 126, 34, 40); border: 1px solid rgba(230, 126, 34, 160);",
    "error": "background: rgba(231, 76, 60, 40); border: 1px solid rgba(231, 76, 60, 170);",
    "notice": "background: rgba(192, 57, 43, 40); border: 1px solid rgba(192, 57, 43, 170); font-weight: bold;",
}


class Banner(QLabel):
    """A coloured message strip (rich text) that takes no room while it is empty. `level`: info, warning, error
    or notice (a standing notice, e.g. "not for diagnosis": bold, compact, centred)."""

    def __init__(self, html: str = "", level: str = "warning", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.level = ""
        self.show_message(html, level)

    def show_message(self, html: str | None, level: str = "warning") -> None:
        if level not in BANNER_STYLES:
            raise ValueError(f"banner level {level!r}: one of {sorted(BANNER_STYLES)}")
        if level != self.level:
            self.level = level
            pad = "1px" if level == "notice" else "6px"
            self.setWordWrap(level != "notice")  # a standing notice is one line
            self.setStyleSheet(f"QLabel {{ {BANNER_STYLES[level]} border-radius: 4px; padding: {pad}; }}")
            self.setAlignment(Qt.AlignmentFlag.AlignCenter if level == "notice" else Qt.AlignmentFlag.AlignLeft
                              | Qt.AlignmentFlag.AlignVCenter)
        self.setText(html or "")
        self.setVisible(bool(html))

    def clear_message(self) -> None:
        self.show_message(None, self.level)


# probability bars ----------------------------------------------------------------------------------------------
def class_colour(index: int, n: int) -> QColor:
    """The colour of class `index` of `n`: evenly spaced hues, readable on light and dark backgrounds."""
    return QColor.fromHsv(int(index * 360 / max(n, 1)) % 360, 255, 210)


class ProbabilityBars(QWidget):
    """One row per class: a coloured marker, the class title (its long title as tooltip) and a bar with the
    probability in per cent. `compact` keeps the bars one text line high."""

    def __init__(self, labels: tuple[str, ...] = (), titles: dict[str, str] | None = None,
                 tooltips: dict[str, str] | None = None, markers: bool = True, compact: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(1, 1)
        self.grid.setVerticalSpacing(1)
        self.titles = dict(titles or {})
        self.tooltips = dict(tooltips or {})
        self.markers, self.compact = markers, compact
        self.labels: tuple[str, ...] = ()
        self.bars: dict[str, QProgressBar] = {}
        self.names: dict[str, QLabel] = {}
        self.set_labels(labels)

    def set_labels(self, labels: tuple[str, ...] | list[str]) -> None:
        labels = tuple(labels)
        if labels == self.labels:
            return
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.bars, self.names = {}, {}
        for row, lab in enumerate(labels):
            title = self.titles.get(lab, lab)
            marker = f"<span style='color:{class_colour(row, len(labels)).name()}'>■</span> " if self.markers else ""
            name = QLabel(marker + title)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setAccessibleName(f"P({self.tooltips.get(lab, title)})")
            if self.compact:
                bar.setMaximumHeight(bar.fontMetrics().height() + 4)
                bar.setMinimumWidth(50)
            if lab in self.tooltips:
                name.setToolTip(self.tooltips[lab])
            name.setBuddy(bar)
            self.grid.addWidget(name, row, 0)
            self.grid.addWidget(bar, row, 1)
            self.bars[lab], self.names[lab] = bar, name
        self.labels = labels
        self.clear()

    def set_probabilities(self, probabilities: dict[str, float]) -> None:
        """Show the probabilities (classes not in `probabilities` show 0 %); new class names replace the rows."""
        if set(probabilities) - set(self.labels):
            self.set_labels(tuple(probabilities))
        for lab, bar in self.bars.items():
            v = float(probabilities.get(lab, 0.0))
            bar.setValue(int(round(1000 * v)))
            bar.setFormat(f"{v:.1%}")

    def clear(self) -> None:
        for bar in self.bars.values():
            bar.setValue(0)
            bar.setFormat("—")

    def colour(self, label: str) -> QColor:
        return class_colour(self.labels.index(label), len(self.labels))


# jobs ----------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    """A host job as a widget sees it; `outcome` is "" while it runs, then finished / failed / cancelled."""

    name: str
    key: str
    handle: JobHandle | None = None
    outcome: str = ""
    error: str = ""
    result: Any = None
    _ended: list[Callable[[Job], None]] = field(default_factory=list, repr=False)

    @property
    def running(self) -> bool:
        return not self.outcome and not (self.handle is not None and self.handle.done)

    def cancel(self) -> None:
        if self.handle is not None and self.running:
            self.handle.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job's thread (its callbacks still need the Qt event loop)."""
        return self.handle.wait(timeout) if self.handle is not None else True


class JobControls(QWidget):
    """A progress bar and a Cancel button for the jobs bound to it: shown while one runs, Cancel cancels them
    all. `always_visible` keeps them on screen (idle: Cancel disabled, bar empty)."""

    def __init__(self, cancel_text: str = "Cancel", tip: str = "", always_visible: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Progress")
        self.progress.setMaximumWidth(220)
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setToolTip(tip)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress)
        self.always_visible = always_visible
        self.jobs: list[Job] = []
        self._idle()

    def bind(self, job: Job) -> None:
        self.jobs.append(job)
        job._ended.append(self._release)
        self.progress.setRange(0, 0)  # busy until the first progress event
        self.progress.setFormat("%p%")
        self.cancel_button.setEnabled(True)
        self.setVisible(True)

    def update_progress(self, ev: ProgressEvent) -> None:
        if ev.total:
            self.progress.setRange(0, int(ev.total))
            self.progress.setValue(int(ev.step or 0))
            if ev.message and not ev.terminal:
                self.progress.setFormat(f"{ev.message}: %v/%m" if len(ev.message) < 24 else "%v/%m")

    def cancel(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def _release(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if not self.jobs:
            self._idle(done=job.outcome == "finished")

    def _idle(self, done: bool = False) -> None:
        """A finished job leaves the bar full (it stays readable when always visible), anything else empty."""
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress.setValue(self.progress.maximum() if done else 0)
        self.progress.setFormat("%v/%m" if done else "")
        self.cancel_button.setEnabled(False)
        self.setVisible(self.always_visible)


# model picker --------------------------------------------------------------------------------------------------
class ModelPicker(QComboBox):
    """The installed models for `task` (or what `items()` lists, as (text, data) pairs) between fixed `first` and
    `last` entries; refilled on the Qt thread whenever the zoo changes, keeping the choice. The user's choice is
    remembered in the plug-in's settings under `setting` and emitted as `chosen(data)`; `refreshed(data)` follows
    every refill. With nothing to offer it shows `none_text` and is disabled."""

    chosen = Signal(object)
    refreshed = Signal(object)

    def __init__(self, host: Host, task: str = "", *, plugin_id: str = "",
                 items: Callable[[], list[tuple[str, Any]]] | None = None,
                 first: tuple[tuple[str, Any], ...] = (), last: tuple[tuple[str, Any], ...] = (),
                 none_text: str = "(no model installed)", setting: str = "model",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host, self.task, self.plugin_id, self.setting = host, task, plugin_id, setting
        self._items = items or (lambda: [(c.id, c.id) for c in host.models(task or None)])
        self.first, self.last, self.none_text = first, last, none_text
        self.setAccessibleName("Model")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.currentIndexChanged.connect(self._user_chose)
        self._filling = False
        self.refresh()
        host.on_models_changed(main_thread(self._zoo_changed))

    def _zoo_changed(self) -> None:
        try:
            self.refresh()
        except RuntimeError:  # the combo box was deleted meanwhile
            pass

    def refresh(self, select: Any = None) -> None:
        want = select if select is not None else (self.currentData() if self.count() else self.saved())
        entries = [*self.first, *self._items(), *self.last]
        self._filling = True
        try:
            self.clear()
            for text, data in entries:
                self.addItem(text, data)
            if not entries:
                self.addItem(self.none_text, None)
            i = self.findData(want) if want is not None else -1
            self.setCurrentIndex(i if i >= 0 else 0)
            self.setEnabled(bool(entries))
        finally:
            self._filling = False
        self.refreshed.emit(self.currentData())

    def saved(self) -> Any:
        return self.host.settings(self.plugin_id).get(self.setting) if self.plugin_id else None

    def model_ids(self) -> list[Any]:
        fixed = {d for _, d in (*self.first, *self.last)}
        return [self.itemData(i) for i in range(self.count()) if self.itemData(i) is not None
                and self.itemData(i) not in fixed]

    def _user_chose(self, _index: int) -> None:
        if self._filling:
            return
        data = self.currentData()
        if self.plugin_id and data is not None:
            self.host.save_settings(self.plugin_id, {**self.host.settings(self.plugin_id), self.setting: data})
        self.chosen.emit(data)


# the widget base -----------------------------------------------------------------------------------------------
class PluginWidgetBase(QWidget):
    """A plug-in widget with the lifecycle the main window drives: `start`, `stop`, `start_demo`, `shutdown`.
    Streams started with `start_stream` and jobs run with `run_job` deliver on the Qt thread whatever the host,
    are stopped / cancelled by `shutdown`, and nothing reaches the widget after it. Subclasses override `start`,
    `stop` (call super) and `on_shutdown`."""

    plugin_id = ""

    def __init__(self, host: Host, engine: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.engine = engine
        self.closed = False
        self.stream: StreamHandle | None = None
        self._latest: Latest | None = None
        self.jobs: dict[str, Job] = {}
        self.start_button: QPushButton | None = None
        self.stop_button: QPushButton | None = None
        self._tick_timer: QTimer | None = None

    # lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Begin live work (nothing by default)."""

    def stop(self) -> None:
        """End live work: the stream started with `start_stream` stops (its threads are joined)."""
        if self.stream is not None:
            self.stream.stop()
        if not self.closed:
            self._tick()

    def start_demo(self) -> None:
        """What `vitascope gui --smoke` shows: `start()` by default."""
        self.start()

    def shutdown(self) -> None:
        """Stop, cancel this widget's jobs and wait for them briefly, then `on_shutdown()`; idempotent."""
        if self.closed:
            return
        self.stop()
        self.closed = True
        for job in list(self.jobs.values()):
            job.cancel()
        self.wait_idle(5.0)
        for job in self.jobs.values():  # their callbacks no longer reach the widget
            job.outcome = job.outcome or "cancelled"
        self.jobs.clear()
        self._drop_latest()
        self.stream = None
        if self._tick_timer is not None:
            self._tick_timer.stop()
        self.on_shutdown()

    def on_shutdown(self) -> None:
        """Release what the widget holds (timers, files); called once by `shutdown`."""

    @property
    def running(self) -> bool:
        return self.stream is not None and self.stream.running

    # live view ---------------------------------------------------------------------------------------------
    def live_buttons(self, start_text: str = "Start", stop_text: str = "Stop",
                     interval_ms: int = 250) -> tuple[QPushButton, QPushButton]:
        """Start / Stop buttons wired to `start()` / `stop()` and enabled by `running`; from now on a timer calls
        `tick()` every `interval_ms` (status text, counters) until shutdown."""
        self.start_button, self.stop_button = QPushButton(start_text), QPushButton(stop_text)
        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button.clicked.connect(lambda: self.stop())
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(interval_ms)
        self._tick_timer.timeout.connect(self._tick)
        self._tick_timer.start()
        return self.start_button, self.stop_button

    def tick(self) -> None:
        """Refresh live status (called by the `live_buttons` timer and after `stop()`)."""

    def sync_buttons(self) -> None:
        """Enable Start / Stop for the current state (called with every tick)."""
        if self.start_button is not None and self.stop_button is not None:
            self.start_button.setEnabled(not self.running)
            self.stop_button.setEnabled(self.running)

    def _tick(self) -> None:
        if not self.closed:
            self.tick()
            self.sync_buttons()

    def stream_stats(self, stages: str = "") -> str:
        """"running · 19.8 fps · latency 12.0 ms · frames 120 · dropped 3" (`stages` after the latency)."""
        s = self.stream.stats if self.stream is not None else None
        if s is None:
            return "stopped"
        state = "running" if self.running else "stopped"
        return (f"{state} · {s.fps:.1f} fps · latency {s.last_ms:.1f} ms{stages} · frames {s.processed} · "
                f"dropped {s.dropped}")

    def text_colour(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.WindowText)

    def palette_changed(self) -> None:
        """Called when the theme changes (restyle what stylesheets do not reach, e.g. plot axes)."""

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.PaletteChange:
            self.palette_changed()
        super().changeEvent(event)

    # settings ----------------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return self.host.settings(self.plugin_id)

    def save_settings(self, **values: Any) -> None:
        """Merge `values` into the plug-in's saved settings."""
        self.host.save_settings(self.plugin_id, {**self.host.settings(self.plugin_id), **values})

    # threads -----------------------------------------------------------------------------------------------
    def on_ui(self, fn: Callable[..., None]) -> Callable[..., None]:
        """`fn` wrapped to run on the Qt thread, and not at all once the widget is shut down or deleted."""

        @main_thread
        def call(*args: Any) -> None:
            if self.closed:
                return
            try:
                fn(*args)
            except RuntimeError as e:  # the widget's C++ side was deleted meanwhile
                if "deleted" not in str(e) and "already" not in str(e):
                    raise
                log.debug("callback dropped: %s", e)

        return call

    def start_stream(self, source: FrameSource, process: Callable[[Any], Any],
                     on_result: Callable[[Any], None]) -> StreamHandle:
        """Stream `source` through `process` on the host's threads; `on_result` gets the newest result only, on
        the Qt thread. Replaces (stops) the widget's previous stream."""
        if self.stream is not None:
            self.stream.stop()
        self._drop_latest()
        deliver = self.on_ui(on_result)
        if self.host.ui_thread is not threading.current_thread():  # the host's UI thread is not this Qt thread
            self._latest = Latest(deliver, _bridge())  # newest-only into the Qt thread as well
            deliver = self._latest.put
        self.stream = self.host.start_stream(source, process, deliver)
        return self.stream

    def _drop_latest(self) -> None:
        if self._latest is not None:
            self._latest.close()
            self._latest.deleteLater()
            self._latest = None

    def run_job(self, name: str, fn: JobFn, on_result: Callable[[Any], None] | None = None, *,
                on_error: Callable[[str], None] | None = None,
                on_event: Callable[[ProgressEvent], None] | None = None,
                key: str = "", controls: JobControls | None = None) -> Job:
        """Run `fn(token, emit)` as a host job (it shows in the jobs panel). Every callback runs on the Qt thread:
        `on_event` for each progress event, then `on_result` or `on_error`; `job_ended(job)` follows in every
        case, cancellation included. `key` names the job in `self.jobs` while it runs; `controls` shows its
        progress and cancels it."""
        job = Job(name, key or name)

        def end(outcome: str) -> None:
            if job.outcome:
                return
            job.outcome = outcome
            if self.jobs.get(job.key) is job:
                del self.jobs[job.key]
            for cb in job._ended:
                cb(job)
            self.job_ended(job)

        def event(ev: ProgressEvent) -> None:
            if controls is not None:
                controls.update_progress(ev)
            if on_event is not None:
                on_event(ev)
            if ev.event == "cancelled":
                end("cancelled")

        def settle(outcome: str, callback: Callable[[Any], None] | None, value: Any) -> None:
            try:
                if callback is not None:
                    callback(value)
            finally:
                end(outcome)

        def result(value: Any) -> None:
            job.result = value
            settle("finished", on_result, value)

        def error(msg: str) -> None:
            job.error = msg
            settle("failed", on_error, msg)

        self.jobs[job.key] = job
        if controls is not None:
            controls.bind(job)
        job.handle = self.host.run_job(name, fn, on_result=self.on_ui(result), on_event=self.on_ui(event),
                                       on_error=self.on_ui(error))
        return job

    def job_ended(self, job: Job) -> None:
        """Called on the Qt thread after any job of this widget ended (finished, failed or cancelled)."""

    def job_running(self, key: str) -> bool:
        return key in self.jobs

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait for this widget's jobs' threads (for tests and shutdown; their callbacks need the event loop)."""
        return all(job.wait(timeout) for job in list(self.jobs.values()))
