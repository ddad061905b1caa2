"""Retrieval engine (Qt-free): index folders into a collection + vector index, search by image, evaluate an
embedder on a labelled layout, and group near-duplicates."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.collection import Collection, ScanReport
from app.core.embed_batch import store_batch
from app.core.errors import BadInput, Cancelled, ModelError
from app.core.io.images import read_image
from app.core.vector_index import (
    GRAPH_THRESHOLD,
    ExactIndex,
    GraphIndex,
    VectorIndex,
    graph_available,
    index_exists,
    load_index,
)

from .embedders import BASELINES, Embedder, OnnxEmbedder, baseline
from .layouts import EvalSet
from .metrics import RankMetrics, cosine_distance, rank_metrics, re_ranking, re_ranking_single

TASK = "retrieval.embed"
BATCH = 32
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IndexReport:
    scan: ScanReport
    embedded: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    total: int = 0
    index_kind: str = ""
    model: str = ""
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def summary(self) -> str:
        rate = self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0
        return (f"{self.total} images indexed ({self.index_kind}, model {self.model}): {self.scan.summary()}; "
                f"{self.embedded} embedded" + (f" at {rate:.0f} images/s" if self.embedded else ""))


@dataclass
class Hit:
    file: str
    score: float
    id: int = -1


def resolve_embedder(host: Any, model: str | None) -> Embedder:
    """A baseline by name, an installed model id, a model folder, or (None) the first installed retrieval model."""
    if model in BASELINES:
        return baseline(model)
    try:
        folder = host.zoo.resolve(model, TASK)
    except ModelError as e:
        raise BadInput(f"{e} (baselines: {', '.join(BASELINES)})") from None
    return OnnxEmbedder(host.zoo.open(folder))


def read_rgb(path: str | Path) -> np.ndarray:
    return read_image(path, color=True)


def embed_files(embedder: Embedder, files: Sequence[str | Path], batch: int = BATCH,
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """(vectors of the readable files, their positions in `files`, [(file, reason)] for the unreadable ones)."""
    vecs, ok, bad = [], [], []
    for s in range(0, len(files), batch):
        if cancelled is not None and cancelled():
            raise Cancelled()
        imgs, pos = [], []
        for j, f in enumerate(files[s:s + batch], start=s):
            try:
                imgs.append(read_rgb(f))
                pos.append(j)
            except BadInput as e:
                msg = str(e)
                bad.append((str(f), msg[len(str(f)) + 2:] if msg.startswith(f"{f}: ") else msg))
        if imgs:
            vecs.append(embedder(imgs))
            ok.extend(pos)
        if progress is not None:
            progress(min(s + batch, len(files)), len(files))
    v = np.concatenate(vecs) if vecs else np.zeros((0, embedder.dim), np.float32)
    return v, ok, bad


def _open_index(db: Path, embedder: Embedder, col: Collection) -> VectorIndex:
    """The saved index when it was built by this embedder; otherwise a new exact one (and every file pending)."""
    if index_exists(db) and col.get_meta("model") == embedder.tag:
        idx = load_index(db)
        if idx.dim == embedder.dim:
            return idx
    return ExactIndex(embedder.dim)


def index_folders(roots: Sequence[str | Path], db: str | Path, embedder: Embedder,
                  progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                  graph_threshold: int = GRAPH_THRESHOLD, save_every: int = 2048) -> IndexReport:
    """Scan `roots` into the catalogue `db` and embed what is new or changed; removed files leave the index.
    Unreadable files are listed in the report, never fatal. On cancel, what was embedded is saved, then Cancelled
    is raised. Above `graph_threshold` items the exact index is rebuilt as an HNSW graph (when available)."""
    t0 = time.perf_counter()
    db = Path(db)
    with Collection(db) as col:
        scan = col.scan(roots, progress=(lambda d, t, p: progress("scan", d, t)) if progress else None,
                        cancelled=cancelled)
        index = _open_index(db, embedder, col)
        if col.get_meta("model") != embedder.tag:
            col.set_meta("model", embedder.tag)
            col.set_meta("model_id", embedder.model_id)
        index.remove(np.asarray(scan.removed + scan.changed, np.int64))
        live = {r.id for r in col.records(ok_only=True)}
        stale = np.setdiff1d(index.ids(), np.fromiter(live, np.int64, len(live)))
        index.remove(stale)
        pending = col.pending(embedder.tag)
        rep = IndexReport(scan=scan, model=embedder.model_id, unreadable=list(scan.unreadable))
        t_embed = time.perf_counter()
        done_since_save = 0
        try:
            for s in range(0, len(pending), BATCH):
                if cancelled is not None and cancelled():
                    raise Cancelled()
                chunk = pending[s:s + BATCH]
                vecs, ok, bad = embed_files(embedder, [r.path for r in chunk], batch=BATCH)
                n = store_batch(col, index, chunk, ok, vecs, bad, embedder.tag, rep.unreadable)
                rep.embedded += n
                done_since_save += n
                if done_since_save >= save_every:
                    index.save(db)
                    done_since_save = 0
                if progress is not None:
                    progress("embed", min(s + BATCH, len(pending)), len(pending))
        finally:
            rep.embed_seconds = time.perf_counter() - t_embed
            index.save(db)
        if index.kind == "exact" and len(index) > graph_threshold and graph_available():
            graph = GraphIndex(index.dim)
            graph.add(index.ids(), index.vectors())
            graph.save(db)
            index = graph
        rep.total = len(index)
        rep.index_kind = index.kind
    rep.seconds = time.perf_counter() - t0
    return rep


def search(db: str | Path, query: np.ndarray, embedder: Embedder, k: int = 10,
           min_score: float | None = None, folder: str | None = None) -> list[Hit]:
    """The k most similar indexed images to the RGB image `query` (best first); `min_score` drops weaker ones,
    `folder` keeps only files under that folder."""
    if k <= 0:
        raise BadInput(f"--k must be positive, got {k}")
    db = Path(db)
    if not db.is_file():
        raise BadInput(f"{db}: no such catalogue (run `vitascope retrieval index` first)")
    with Collection(db, readonly=True) as col:
        built_by = col.get_meta("model")
        if built_by and built_by != embedder.tag:
            raise BadInput(f"{db}: indexed with model {col.get_meta('model_id') or built_by}, not "
                           f"{embedder.model_id}; re-index or pass --model {col.get_meta('model_id')}")
        index = load_index(db)
        q = embedder([query])
        want = k if folder is None else min(len(index), max(k * 20, 200))
        ids, scores = index.search(q, want)
        paths = col.paths(ids[0].tolist())
    hits = []
    prefix = str(Path(folder).resolve()) if folder else None
    for i, p, s in zip(ids[0].tolist(), paths, scores[0].tolist(), strict=True):
        if not p or (min_score is not None and s < min_score):
            continue
        if prefix and not p.startswith(prefix):
            continue
        hits.append(Hit(p, float(s), int(i)))
        if len(hits) >= k:
            break
    return hits


def evaluate(es: EvalSet, embedder: Embedder, rerank: bool = False,
             progress: Callable[[int, int], None] | None = None) -> RankMetrics:
    """Embed the evaluation set and score it with the re-ID protocol (or each-queries-the-others)."""
    files = list(dict.fromkeys([*es.query, *es.gallery]))
    vecs, ok, bad = embed_files(embedder, files, progress=progress)
    if bad:
        raise BadInput(f"{bad[0][0]}: {bad[0][1]} (evaluation needs every labelled image readable)")
    pos = {str(f): i for i, f in enumerate(files)}
    q = vecs[[pos[str(f)] for f in es.query]]
    g = vecs[[pos[str(f)] for f in es.gallery]]
    dist = cosine_distance(q, g)
    if rerank:
        if es.same_set:
            dist = re_ranking_single(dist)
        else:
            dist = re_ranking(dist, cosine_distance(q, q), cosine_distance(g, g))
    return rank_metrics(dist, es.q_labels, es.g_labels, es.exclude())


def evaluate_vectors(q: np.ndarray, g: np.ndarray, es: EvalSet) -> RankMetrics:
    return rank_metrics(cosine_distance(q, g), es.q_labels, es.g_labels, es.exclude())


def duplicate_groups(vectors: np.ndarray, threshold: float, block: int = 4096) -> list[list[int]]:
    """Groups (positions) of items linked by cosine similarity ≥ threshold (connected components), largest first;
    singletons are left out."""
    n = vectors.shape[0]
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    v = np.asarray(vectors, np.float32)
    for s in range(0, n, block):
        sim = v[s:s + block] @ v.T
        rows, cols = np.nonzero(sim >= threshold)
        for r, c in zip(rows + s, cols, strict=True):
            if r < c:
                ra, rb = find(int(r)), find(int(c))
                if ra != rb:
                    parent[rb] = ra
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


class RetrievalEngine:
    """What the widget holds: the host, the chosen embedder and the open catalogue path."""

    def __init__(self, host: Any, model: str | None = None) -> None:
        self.host = host
        self.model = model
        self._embedder: Embedder | None = None

    def available_models(self) -> list[str]:
        return [c.id for c in self.host.models(TASK)]

    def embedder(self) -> Embedder:
        if self._embedder is None or (self.model and self._embedder.model_id != self.model):
            self._embedder = resolve_embedder(self.host, self.model)
        return self._embedder

    def set_model(self, model: str | None) -> None:
        self.model = model
        self._embedder = None

    def demo_source(self) -> None:
        return None  # image folders are indexed on request, not streamed

    def close(self) -> None:
        self._embedder = None
