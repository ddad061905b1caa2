"""The installed model an engine uses for one task: the chosen id (or the first installed), opened lazily
through the Host and dropped whenever the zoo changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .errors import ModelError
from .plugin_api import Host
from .zoo import ModelHandle


class TaskModel:
    def __init__(self, host: Host, task: str, model_id: str | None = None,
                 on_forget: Callable[[], None] | None = None) -> None:
        self.host = host
        self.task = task
        self.model_id = model_id
        self._handle: ModelHandle | None = None
        self._on_forget = on_forget
        host.on_models_changed(self.forget)

    def forget(self) -> None:
        self._handle = None
        if self._on_forget is not None:
            self._on_forget()

    def available(self) -> list[str]:
        return [c.id for c in self.host.models(self.task)]

    def select(self, model_id: str | None) -> None:
        self.model_id = model_id
        self.forget()

    def use(self, handle: ModelHandle) -> None:
        """Use an already opened model (e.g. a model folder given on the command line)."""
        if handle.card.task != self.task:
            raise ModelError(f"{handle.card.id}: a {handle.card.task!r} model, not a {self.task!r} model")
        self.forget()
        self._handle = handle

    @property
    def handle(self) -> ModelHandle:
        """The chosen model, or the first installed one for the task when none was chosen. A chosen model that
        is not installed, is broken, or serves another task is an error (ModelError), never replaced silently."""
        if self._handle is None:
            if self.model_id:
                self._handle = self._open_chosen(self.model_id)
            else:
                ids = self.available()
                if not ids:
                    raise ModelError(f"no model for task {self.task!r} is installed (see `vitascope models list`)")
                self._handle = self.host.open_model(ids[0])
        return self._handle

    def _open_chosen(self, model_id: str) -> ModelHandle:
        if not Path(model_id).is_dir() and model_id not in self.available():
            raise ModelError(f"model {model_id!r} is not an installed {self.task!r} model "
                             "(see `vitascope models list`)")
        handle = self.host.open_model(model_id)  # a model folder or an installed id; verified before use
        if handle.card.task != self.task:
            raise ModelError(f"{handle.card.id}: a {handle.card.task!r} model, not a {self.task!r} model")
        return handle
