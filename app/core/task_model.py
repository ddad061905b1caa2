"""The installed model an engine uses for one task: the chosen id (or the first installed), opened lazily
through the Host and dropped whenever the zoo changes."""

from __future__ import annotations

from collections.abc import Callable

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
        if self._handle is None:
            ids = self.available()
            if not ids:
                raise ModelError(f"no model for task {self.task!r} is installed (see `vitascope models list`)")
            self._handle = self.host.open_model(self.model_id if self.model_id in ids else ids[0])
        return self._handle
