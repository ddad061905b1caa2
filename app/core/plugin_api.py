"""The plug-in contract: API_VERSION, PluginInfo, and the Plugin / Engine / Host / PluginWidget / ModelHandle
protocols, with the one threading rule every Host keeps (THREADING_RULE).

A plug-in module exposes `plugin` (an object satisfying `Plugin`). Its engine is Qt-free; its widget (Qt) is
created lazily by `create_widget`, importing Qt only there. Plug-ins reach the app only through the Host."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .card import ModelCard
from .frames import FrameSource, StreamHandle
from .jobs import CancelToken, ProgressEvent

if TYPE_CHECKING:
    import numpy as np

API_VERSION = 1

THREADING_RULE = """Every callback a Host calls - a job's on_result / on_event / on_error, a stream's on_result, an
on_models_changed callback and anything given to `post` - runs on the host's UI thread (`host.ui_thread`): one
thread per host, one callback at a time, in the order they were posted, never on the worker that produced them.
A stream's on_result gets only the newest result (results that arrive while one is pending replace it). In the
GUI (QtHost) the UI thread is the Qt main thread, so callbacks may touch widgets. HeadlessHost has no event loop
to lend: its UI thread is a callback thread of its own; `process_events()` waits until what was posted has run,
and a job handle's `wait()` returns after the job's callbacks ran. Code that must reach Qt widgets from a
HeadlessHost callback goes through app.gui.sdk (`main_thread`, `run_job`), which hops to the Qt thread."""


@dataclass(frozen=True, eq=False)
class TrainTask:
    """A model task a plug-in can train in the wizard: one declaration in `PluginInfo.train_tasks`.

    `data_entry` ("package.module:function", numpy only) returns (x_train, y_train, x_val, y_val) given
    `seed=` and `data_params`; `count_param`/`val_param` name its sample-count knobs and `image_size_param` its
    image-size knob ("" when fixed). `recipe` (relative to the install root) is the shipped model's recipe the
    wizard starts from; `heldout` = {"seed": S, "params": {...}} is the card's held-out data."""

    id: str  # the model task on the card, e.g. "demo.shapes"
    title: str
    plugin: str
    problem: str = "classification"  # an objective: "classification", "regression" or "metric"
    data_entry: str = ""
    data_params: dict[str, Any] = field(default_factory=dict)
    count_param: str = "n_train"
    val_param: str = "n_val"
    image_size_param: str = ""
    default_seed: int = 1
    heldout: dict[str, Any] = field(default_factory=dict)
    recipe: str = ""
    metric: str = "accuracy"  # the headline metric on the Evaluate page
    description: str = ""
    # reads the user's labelled folder with the plug-in's own preprocessing (seed=, path=, val_fraction=) →
    # (x_train, y_train, x_val, y_val); "" = the app's generic RGB folder reader
    folder_entry: str = ""
    # a job kind ("package.module:function") that fine-tunes the zoo model chosen as the starting point in place of
    # the app's ViT loop; it gets WizardSpec.custom_job_params(); "" = the app's loop
    job: str = ""


@dataclass(frozen=True)
class PluginInfo:
    id: str
    name: str
    version: str
    api_version: int
    description: str = ""
    tasks: tuple[str, ...] = ()  # model tasks this plug-in consumes, e.g. ("holo.autofocus",)
    train_tasks: tuple[TrainTask, ...] = ()  # optional: tasks the training wizard offers for this plug-in
    # further "package.module:function" job kinds or data entries job specs may name (train tasks' data_entry
    # are allowed already); any entry not declared by the app or a plug-in is refused (app.core.entries)
    entries: tuple[str, ...] = ()


@dataclass
class Notice:
    level: str  # "info" | "warning" | "error"
    text: str
    source: str = ""


@dataclass
class JobHandle:
    """A running in-process job: cancel it, ask whether it is done, wait for it."""

    name: str
    cancel_token: CancelToken
    _done: Callable[[], bool] = field(default=lambda: True, repr=False)
    _wait: Callable[[float | None], bool] = field(default=lambda t=None: True, repr=False)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @property
    def done(self) -> bool:
        return self._done()

    def wait(self, timeout: float | None = None) -> bool:
        return self._wait(timeout)


JobFn = Callable[[CancelToken, Callable[[ProgressEvent], None]], Any]


@runtime_checkable
class ModelHandle(Protocol):
    """A verified, opened model as `Host.open_model` returns it (app.core.zoo.ModelHandle implements it)."""

    card: ModelCard
    folder: Path

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]: ...  # inputs in card order; shapes checked first


@runtime_checkable
class Host(Protocol):
    """What the app offers a plug-in. Every callback runs on `ui_thread` (see THREADING_RULE)."""

    @property
    def ui_thread(self) -> threading.Thread: ...

    def post(self, fn: Callable[[], None]) -> None: ...  # run fn() later on the UI thread

    def models(self, task: str | None = None) -> list[ModelCard]: ...

    def open_model(self, model_id: str) -> ModelHandle: ...

    def on_models_changed(self, callback: Callable[[], None]) -> None: ...

    def run_job(self, name: str, fn: JobFn, on_result: Callable[[Any], None] | None = None,
                on_event: Callable[[ProgressEvent], None] | None = None,
                on_error: Callable[[str], None] | None = None) -> JobHandle: ...

    def start_stream(self, source: FrameSource, process: Callable[[Any], Any],
                     on_result: Callable[[Any], None]) -> StreamHandle: ...

    def notify(self, text: str, level: str = "info") -> None: ...

    def add_dock(self, widget: Any, title: str) -> None: ...

    def settings(self, plugin_id: str) -> dict[str, Any]: ...

    def save_settings(self, plugin_id: str, values: dict[str, Any]) -> None: ...

    def data_dir(self, plugin_id: str) -> Path: ...

    def resource(self, relative: str) -> Path: ...


@runtime_checkable
class Engine(Protocol):
    """The Qt-free compute of a plug-in; `demo_source` gives built-in demo data for `gui --smoke` and `make run`."""

    def demo_source(self) -> FrameSource | None: ...

    def close(self) -> None: ...


@runtime_checkable
class PluginWidget(Protocol):
    """The widget lifecycle the main window drives (a QWidget; app.gui.sdk.PluginWidgetBase implements it).

    - `start()`: begin live work (a stream, a watch); idempotent while running.
    - `stop()`: end live work; idempotent; `start()` may follow.
    - `start_demo()`: what `vitascope gui --smoke` shows: start on the built-in demo data.
    - `shutdown()`: the last call, once the window closes: stop, cancel this widget's jobs and release what it
      holds; idempotent; no callback reaches the widget after it returns.
    - `running`: live work is going on (False for widgets without live work)."""

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def start_demo(self) -> None: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class Plugin(Protocol):
    info: PluginInfo

    def create_engine(self, host: Host) -> Engine: ...

    def create_widget(self, host: Host, engine: Engine) -> PluginWidget: ...  # a QWidget, built in widget.py

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None: ...  # may add nothing
