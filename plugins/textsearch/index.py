"""Index image folders with a CLIP model (the shared image collection + one vector index per model, updated
incrementally) and search it with a query vector; scores are cosine similarities."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.collection import Collection
from app.core.embed_batch import store_batch
from app.core.errors import BadInput, Cancelled
from app.core.vector_index import ExactIndex, VectorIndex, auto_index, index_exists, load_index

META_MODEL = "clip.model"
META_FOLDER = "clip.model_folder"


def index_base(db: str | Path, model_id: str) -> Path:
    """Where the vector index of `model_id` lives beside the catalogue (one index per model)."""
    db = Path(db)
    return db.with_name(f"{db.name}.clip-{model_id}")


@dataclass
class IndexReport:
    model: str
    files: int = 0
    embedded: int = 0
    removed: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    scan: str = ""
    seconds: float = 0.0
    images_per_s: float = 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "files": self.files, "embedded": self.embedded, "removed": self.removed,
                "unreadable": [{"file": f, "reason": r} for f, r in self.unreadable], "scan": self.scan,
                "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 2)}


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def index_folders(db: str | Path, folders: list[str | Path], model, batch: int = 16,
                  progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> IndexReport:
    """Scan `folders` into the catalogue, embed new/changed files with `model`, drop vanished ones; the vector
    index is saved after every batch so a cancel keeps the work done."""
    t0 = time.perf_counter()
    rep = IndexReport(model=model.id)
    with Collection(db) as col:
        scan = col.scan(folders, progress=(lambda d, t, _p: progress("scan", d, t)) if progress else None,
                        cancelled=cancelled)
        rep.scan = scan.summary()
        rep.unreadable = list(scan.unreadable)
        base = index_base(db, model.id)
        index: VectorIndex = load_index(base) if index_exists(base) else auto_index(model.dim, len(col))
        if index.dim != model.dim:
            index = auto_index(model.dim, len(col))
        ok = {r.id for r in col.records(ok_only=True)}
        stale = [int(i) for i in index.ids() if int(i) not in ok]
        if stale:
            index.remove(np.asarray(stale, np.int64))
        rep.removed = len(stale)
        present = {int(i) for i in index.ids()}
        todo = [r for r in col.pending(model.tag)] + [r for r in col.records(ok_only=True)
                                                      if r.embedded == model.tag and r.id not in present]
        t_embed = time.perf_counter()
        for start in range(0, len(todo), batch):
            if cancelled is not None and cancelled():
                index.save(base)
                raise Cancelled()
            chunk = todo[start:start + batch]
            bad: list[tuple[str, str]] = []
            keep, emb = model.encode_files([r.path for r in chunk], batch=batch,
                                           on_error=lambda f, e, bad=bad: bad.append((f, e)))
            rep.embedded += store_batch(col, index, chunk, keep, emb, bad, model.tag, rep.unreadable)
            index.save(base)
            if progress is not None:
                progress("embed", min(start + batch, len(todo)), len(todo))
        index.save(base)
        col.set_meta(META_MODEL, model.id)
        col.set_meta(META_FOLDER, str(Path(model.folder).resolve()))
        rep.files = len(index)
        dt = time.perf_counter() - t_embed
        rep.images_per_s = rep.embedded / dt if rep.embedded and dt > 0 else 0.0
    rep.seconds = time.perf_counter() - t0
    return rep


def db_model(db: str | Path) -> tuple[str, str]:
    """(model id, model folder) the catalogue was last indexed with."""
    with Collection(db, readonly=True) as col:
        return col.get_meta(META_MODEL), col.get_meta(META_FOLDER)


class SearchIndex:
    """A catalogue's vectors for one model, loaded once: search many queries fast."""

    def __init__(self, db: str | Path, model_id: str) -> None:
        self.db = Path(db)
        if not self.db.is_file():
            raise BadInput(f"{self.db}: no such catalogue (run `vitascope clip index` first)")
        base = index_base(self.db, model_id)
        if not index_exists(base):
            raise BadInput(f"{self.db}: not indexed with model {model_id!r} (run `vitascope clip index`)")
        self.index = load_index(base)
        with Collection(self.db, readonly=True) as col:
            self.paths = {r.id: r.path for r in col.records(ok_only=True)}

    def __len__(self) -> int:
        return len(self.index)

    def search(self, query: np.ndarray, k: int = 10, threshold: float | None = None) -> list[dict]:
        if k <= 0:
            raise BadInput(f"--k must be positive, got {k}")
        ids, scores = self.index.search(np.asarray(query, np.float32)[None], k)
        out = []
        for i, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True):
            if i < 0 or i not in self.paths or (threshold is not None and s < threshold):
                continue
            out.append({"file": self.paths[i], "score": round(float(s), 6)})
        return out

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(files, unit vectors) of every indexed image, for classification and evaluation."""
        if not isinstance(self.index, ExactIndex):
            raise BadInput("this operation needs the exact index")
        ids = self.index.ids()
        keep = [j for j, i in enumerate(ids.tolist()) if i in self.paths]
        return [self.paths[int(ids[j])] for j in keep], self.index.vectors()[keep]
