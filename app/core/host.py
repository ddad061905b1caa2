"""A Qt-free Host for the CLI and tests: same contract as the GUI host. Its UI thread is a callback thread of its
own (a headless process has no event loop to lend): every callback runs there, one at a time, in order."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import manifest, paths
from .callbacks import CallbackThread, LatestValue
from .card import ModelCard
from .frames import FrameSource, StreamHandle
from .jobs import ProgressEvent
from .plugin_api import JobFn, JobHandle, Notice
from .threadjob import start_thread_job
from .zoo import ModelHandle, Zoo

log = logging.getLogger(__name__)


class PluginFiles:
    """Where a plug-in keeps its own files: shared by every Host implementation (needs `self.home`; `plugin_id`
    names the plug-in the host serves, "" for a host shared by several)."""

    home: Path
    plugin_id: str = ""

    def data_dir(self, plugin_id: str) -> Path:
        d = self.home / "plugins" / plugin_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def resource(self, relative: str) -> Path:
        """A file the plug-in ships, inside its own folder (its manifest's folder): the host's plug-in, else the
        plug-in whose module calls; a caller that is no plug-in (the app) gets the app's resources/ folder."""
        owner = manifest.by_id(self.plugin_id) if self.plugin_id else None
        if owner is None:
            owner = manifest.owner_of(str(sys._getframe(1).f_globals.get("__name__", "")))
        return owner.resource(relative) if owner else paths.resources_dir() / relative


class HeadlessHost(PluginFiles):
    def __init__(self, zoo: Zoo | None = None, home: Path | None = None, plugin_id: str = "") -> None:
        self.plugin_id = plugin_id
        self.zoo = zoo or Zoo()
        self.home = Path(home) if home else paths.user_home()
        self.notices: list[Notice] = []
        self.docks: list[tuple[Any, str]] = []
        self.jobs: list[JobHandle] = []
        self.streams: list[tuple[StreamHandle, LatestValue]] = []
        self._ui = CallbackThread("headless-host-ui")

    # the threading rule ------------------------------------------------------------------------------------
    @property
    def ui_thread(self) -> threading.Thread:
        """The thread every callback of this host runs on."""
        return self._ui.thread

    def post(self, fn: Callable[[], None]) -> None:
        """Run `fn()` on the UI thread (later, after the callbacks already posted)."""
        self._ui.post(fn)

    def process_events(self, timeout: float | None = None) -> bool:
        """Wait until the callbacks posted so far have run; True unless it timed out."""
        return self._ui.flush(timeout)

    def models(self, task: str | None = None) -> list[ModelCard]:
        return self.zoo.cards(task)

    def open_model(self, model_id: str) -> ModelHandle:
        return self.zoo.open(model_id)

    def on_models_changed(self, callback: Callable[[], None]) -> None:
        self.zoo.on_change(lambda: self._ui.post(callback))

    def run_job(self, name: str, fn: JobFn, on_result: Callable[[Any], None] | None = None,
                on_event: Callable[[ProgressEvent], None] | None = None,
                on_error: Callable[[str], None] | None = None) -> JobHandle:
        handle = start_thread_job(name, fn, on_result, on_event, on_error, dispatch=self._ui.post)
        join = handle._wait

        def wait(timeout: float | None = None) -> bool:  # ended, and its callbacks have run
            return join(timeout) and self._ui.flush(timeout)

        handle._wait = wait
        self.jobs.append(handle)
        return handle

    def start_stream(self, source: FrameSource, process: Callable[[Any], Any],
                     on_result: Callable[[Any], None]) -> StreamHandle:
        """`on_result` gets only the newest result on the UI thread (no backlog), as in the GUI."""
        latest = LatestValue(on_result, self._ui.post)
        handle = StreamHandle(source, process, latest.put, lambda m: self._ui.post(lambda: self.notify(m, "error")))
        self.streams.append((handle, latest))
        return handle.start()

    def notify(self, text: str, level: str = "info") -> None:
        self.notices.append(Notice(level, text))
        log.log(logging.ERROR if level == "error" else logging.WARNING if level == "warning" else logging.INFO,
                "%s", text)

    def add_dock(self, widget: Any, title: str) -> None:
        self.docks.append((widget, title))

    def _settings_path(self, plugin_id: str) -> Path:
        return self.home / "settings" / f"{plugin_id}.json"

    def settings(self, plugin_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._settings_path(plugin_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def save_settings(self, plugin_id: str, values: dict[str, Any]) -> None:
        p = self._settings_path(plugin_id)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(values, indent=2), encoding="utf-8")
        tmp.replace(p)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop streams, cancel and join jobs, run the callbacks still queued, then end the UI thread."""
        for s, latest in self.streams:
            s.stop(timeout)
            latest.close()
        for j in self.jobs:
            j.cancel()
        for j in self.jobs:
            j.wait(timeout)
        self._ui.close(timeout)
