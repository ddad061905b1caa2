"""QtHost: the Host a plug-in gets in the GUI. Same contract and threading rule as app.core.host.HeadlessHost;
its UI thread is the Qt main thread, jobs appear in the jobs panel and stream results are delivered newest-only."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from app.core import paths
from app.core.card import ModelCard
from app.core.frames import FrameSource, StreamHandle
from app.core.host import PluginFiles
from app.core.jobs import ProgressEvent
from app.core.plugin_api import JobFn, JobHandle, Notice
from app.core.zoo import ModelHandle, Zoo

from .dispatch import Dispatcher, Latest
from .jobs_qt import JobsModel
from .settings import load_plugin_settings, save_plugin_settings

log = logging.getLogger(__name__)
_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING}


class QtHost(PluginFiles):
    """One per plug-in. `status(text, level)` shows a notice (status bar); `add_dock(widget, title)` docks."""

    def __init__(self, plugin_id: str, zoo: Zoo, jobs: JobsModel,
                 status: Callable[[str, str], None] | None = None,
                 dock: Callable[[Any, str], None] | None = None, home: Path | None = None,
                 parent: QObject | None = None) -> None:
        self.plugin_id = plugin_id
        self.zoo = zoo
        self.jobs = jobs
        self.dispatch: Dispatcher = jobs.dispatch
        self.home = Path(home) if home else paths.user_home()
        self._status = status
        self._dock = dock
        self._parent = parent
        self.notices: list[Notice] = []
        self.streams: list[tuple[StreamHandle, Latest]] = []
        self.docks: list[tuple[Any, str]] = []
        self._ui_thread = threading.current_thread()  # built on the Qt thread, like the dispatcher it posts to

    # the threading rule ------------------------------------------------------------------------------------
    @property
    def ui_thread(self) -> threading.Thread:
        """The thread every callback of this host runs on: the Qt main thread."""
        return self._ui_thread

    def post(self, fn: Callable[[], None]) -> None:
        """Run `fn()` on the Qt thread (later, after the callbacks already posted)."""
        self.dispatch(fn)

    # models ------------------------------------------------------------------------------------------------
    def models(self, task: str | None = None) -> list[ModelCard]:
        return self.zoo.cards(task)

    def open_model(self, model_id: str) -> ModelHandle:
        return self.zoo.open(model_id)

    def on_models_changed(self, callback: Callable[[], None]) -> None:
        """`callback` runs on the Qt thread after a model was installed (the zoo may notify from a job thread)."""
        self.zoo.on_change(lambda: self.dispatch(callback))

    # jobs and streams --------------------------------------------------------------------------------------
    def run_job(self, name: str, fn: JobFn, on_result: Callable[[Any], None] | None = None,
                on_event: Callable[[ProgressEvent], None] | None = None,
                on_error: Callable[[str], None] | None = None) -> JobHandle:
        def error(msg: str) -> None:
            self.notify(msg, "error")
            if on_error:
                on_error(msg)

        return self.jobs.run_thread_job(name, fn, on_result, on_event, error)

    def start_stream(self, source: FrameSource, process: Callable[[Any], Any],
                     on_result: Callable[[Any], None]) -> StreamHandle:
        """Reader + processor threads; `on_result` gets only the newest result on the Qt thread (no backlog).
        Stop it with `handle.stop()`; the main window stops every stream on close."""
        self._prune_streams()
        latest = Latest(on_result, self._parent)
        handle = StreamHandle(source, process, latest.put,
                              lambda msg: self.dispatch(lambda: self.notify(msg, "error")))
        self.streams.append((handle, latest))
        return handle.start()

    def _prune_streams(self) -> None:
        """Forget streams that ended (stopped by the plug-in or failed) so Start/Stop cycles do not pile up."""
        for handle, latest in [(h, q) for h, q in self.streams if not h.running]:
            latest.close()
            latest.deleteLater()
            self.streams.remove((handle, latest))

    def stop_streams(self, timeout: float = 5.0) -> None:
        for handle, latest in self.streams:
            handle.stop(timeout)
            latest.close()
        self.streams.clear()

    # user interface ----------------------------------------------------------------------------------------
    def notify(self, text: str, level: str = "info") -> None:
        self.notices.append(Notice(level, text, self.plugin_id))
        log.log(_LEVELS.get(level, logging.INFO), "[%s] %s", self.plugin_id, text)
        if self._status:
            self._status(text, level)

    def add_dock(self, widget: Any, title: str) -> None:
        self.docks.append((widget, title))
        if self._dock:
            self._dock(widget, title)

    # settings and files ------------------------------------------------------------------------------------
    def settings(self, plugin_id: str) -> dict[str, Any]:
        return load_plugin_settings(plugin_id)

    def save_settings(self, plugin_id: str, values: dict[str, Any]) -> None:
        save_plugin_settings(plugin_id, values)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop this plug-in's streams (jobs are cancelled and joined by the shared JobsModel)."""
        self.stop_streams(timeout)
