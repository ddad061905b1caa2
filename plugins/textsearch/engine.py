"""Qt-free engine of the text-search plug-in: the chosen CLIP model, a catalogue in the plug-in's data folder,
indexing as a cancellable job with progress, and text / image / combined searches with a score threshold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.errors import BadInput
from app.core.jobs import CancelToken, ProgressEvent
from app.core.plugin_api import Host, JobHandle
from app.core.zoo import Zoo

from .index import IndexReport, SearchIndex, index_folders
from .model import ClipModel, find_model, model_folders
from .query import parse_query, query_vector, split_query

PLUGIN_ID = "textsearch"


class TextSearchEngine:
    def __init__(self, host: Host, db: str | Path | None = None) -> None:
        self.host = host
        zoo = getattr(host, "zoo", None)  # both hosts hold the app's zoo; another host gets the default roots
        self.zoo = zoo if isinstance(zoo, Zoo) else Zoo()
        self.db = Path(db) if db else host.data_dir(PLUGIN_ID) / "images.vdb"
        self._model: ClipModel | None = None
        self._search: SearchIndex | None = None
        self.last_terms: list = []

    def demo_source(self) -> None:
        return None

    def close(self) -> None:
        self._model = None
        self._search = None

    # models --------------------------------------------------------------------------------------------------
    def available_models(self) -> list[Path]:
        """Folders of the zoo's CLIP models (task textsearch.clip)."""
        return model_folders(self.zoo)

    def model(self, spec: str | Path | None = None) -> ClipModel:
        """The CLIP model `spec` names (id or folder; None: the current one, else the zoo's first), opened
        through the zoo; switching models drops the search index of the old one."""
        if self._model is None or (spec is not None and Path(find_model(spec, self.zoo)) != self._model.folder):
            self._model = ClipModel(find_model(spec, self.zoo))
            self._search = None
        return self._model

    # indexing -------------------------------------------------------------------------------------------------
    def index(self, folders: list[str | Path], cancel: CancelToken | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> IndexReport:
        rep = index_folders(self.db, folders, self.model(), progress=progress,
                            cancelled=(lambda: cancel.cancelled) if cancel else None)
        self._search = None
        return rep

    def index_job(self, folders: list[str | Path], on_result: Callable[[Any], None] | None = None,
                  on_event: Callable[[ProgressEvent], None] | None = None,
                  on_error: Callable[[str], None] | None = None) -> JobHandle:
        def run(token: CancelToken, emit: Callable[[ProgressEvent], None]) -> IndexReport:
            return self.index(folders, token, lambda stage, d, t: emit(ProgressEvent(
                "progress", step=d, total=t, message=f"{stage} {d}/{t}")))

        return self.host.run_job("Index images for text search", run, on_result, on_event, on_error)

    def indexed_roots(self) -> list[str]:
        """The folders the catalogue holds (empty before the first index)."""
        if not self.db.is_file():
            return []
        from app.core.collection import Collection

        with Collection(self.db, readonly=True) as col:
            return col.roots()

    # search ---------------------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 24, threshold: float | None = None) -> list[dict]:
        """A query line as rclip writes it ('2:red car + photo.jpg - night'); results [{"file", "score"}]."""
        tokens = split_query(query)
        if not tokens:
            raise BadInput("type a query")
        model = self.model()
        if self._search is None:
            self._search = SearchIndex(self.db, model.id)
        terms = parse_query(tokens)
        results = self._search.search(query_vector(model, terms), k=k, threshold=threshold)
        self.last_terms = terms
        return results
