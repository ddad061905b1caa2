"""Vector indexes for cosine search over L2-normalised embeddings keyed by integer ids: an exact index (numpy,
float16 or float32 storage) and an HNSW graph index (usearch), behind one interface, saved beside a catalogue."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import BadInput

EXACT = "exact"
GRAPH = "hnsw"
GRAPH_THRESHOLD = 200_000  # above this many items `auto_index` picks the graph index (see bench/retrieval_eval.py)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); zero rows stay zero; NaN/inf are refused."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise BadInput(f"expected vectors (n, dim), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise BadInput("vectors hold NaN or infinite values")
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(n > 0, n, 1.0)


@runtime_checkable
class VectorIndex(Protocol):
    """Cosine top-k over unit vectors keyed by int64 ids. `add` replaces vectors of ids already present."""

    kind: str
    dim: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...  # (ids, scores), (q, k)

    def ids(self) -> np.ndarray: ...

    def save(self, base: Path) -> None: ...

    def nbytes(self) -> int: ...


def _as_ids(ids: np.ndarray | list[int]) -> np.ndarray:
    a = np.asarray(ids, dtype=np.int64).reshape(-1)
    if a.size != np.unique(a).size:
        raise BadInput("duplicate ids in one call")
    return a


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest scores of each row, best first (ties by index)."""
    n = scores.shape[1]
    if k >= n:
        return np.argsort(-scores, axis=1, kind="stable")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)


class ExactIndex:
    """Brute-force cosine search: one float32 matrix product per query batch (numpy has no fast float16 product:
    converting 10^5 float16 vectors per query costs ~7x the product itself). `dtype` is the on-disk storage
    (float16 halves the file); in memory the vectors are float32."""

    kind = EXACT

    def __init__(self, dim: int, dtype: str = "float16") -> None:
        if dim <= 0:
            raise BadInput(f"vector dimension must be positive, got {dim}")
        if dtype not in ("float16", "float32"):
            raise BadInput(f"vector dtype must be float16 or float32, got {dtype!r}")
        self.dim = int(dim)
        self.dtype = dtype
        self._ids = np.zeros(0, np.int64)
        self._vecs = np.zeros((0, self.dim), np.float32)
        self._pos: dict[int, int] = {}

    def __len__(self) -> int:
        return int(self._ids.size)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def vectors(self) -> np.ndarray:
        return self._vecs

    def nbytes(self) -> int:
        return int(self._vecs.nbytes + self._ids.nbytes)

    def _check(self, vectors: np.ndarray, n: int) -> np.ndarray:
        v = l2_normalise(vectors)
        if v.shape != (n, self.dim):
            raise BadInput(f"expected {n} vectors of dimension {self.dim}, got shape {v.shape}")
        return v

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        v = self._check(vectors, ids.size)
        old = np.array([self._pos.get(int(i), -1) for i in ids], dtype=np.int64)
        hit = old >= 0
        if hit.any():
            self._vecs[old[hit]] = v[hit]
        if (~hit).any():
            start = self._ids.size
            self._ids = np.concatenate([self._ids, ids[~hit]])
            self._vecs = np.concatenate([self._vecs, v[~hit]])
            for j, i in enumerate(ids[~hit]):
                self._pos[int(i)] = start + j

    def remove(self, ids: np.ndarray | list[int]) -> None:
        drop = {int(i) for i in np.asarray(ids, np.int64).reshape(-1)} & self._pos.keys()
        if not drop:
            return
        keep = ~np.isin(self._ids, np.fromiter(drop, np.int64, len(drop)))
        self._ids, self._vecs = self._ids[keep], self._vecs[keep]
        self._pos = {int(i): j for j, i in enumerate(self._ids)}

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine similarity (q, n) of unit queries against every stored vector, in stored order."""
        q = self._check(queries, np.asarray(queries).reshape(-1, self.dim).shape[0])
        return q @ self._vecs.T

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise BadInput(f"k must be positive, got {k}")
        if not len(self):
            q = np.asarray(queries).reshape(-1, self.dim).shape[0]
            return np.zeros((q, 0), np.int64), np.zeros((q, 0), np.float32)
        s = self.scores(queries)
        top = _topk(s, min(k, s.shape[1]))
        return self._ids[top], np.take_along_axis(s, top, axis=1)

    def save(self, base: Path) -> None:
        base = Path(base)
        _atomic_npy(base.with_name(base.name + ".vectors.npy"), self._vecs.astype(self.dtype))
        _atomic_npy(base.with_name(base.name + ".ids.npy"), self._ids)
        _write_meta(base, {"kind": EXACT, "dim": self.dim, "dtype": self.dtype, "count": len(self)})

    @classmethod
    def load(cls, base: Path) -> ExactIndex:
        meta = _read_meta(base)
        idx = cls(int(meta["dim"]), str(meta["dtype"]))
        try:
            vecs = np.load(base.with_name(base.name + ".vectors.npy"))
            ids = np.load(base.with_name(base.name + ".ids.npy"))
        except (OSError, ValueError) as e:
            raise BadInput(f"{base}: vector files unreadable ({e})") from None
        if vecs.shape != (ids.size, idx.dim) or vecs.dtype != np.dtype(idx.dtype):
            raise BadInput(f"{base}: vector files do not match their metadata (rebuild the index)")
        idx._ids, idx._vecs = ids.astype(np.int64), vecs.astype(np.float32)
        idx._pos = {int(i): j for j, i in enumerate(idx._ids)}
        return idx


class GraphIndex:
    """Approximate cosine search on an HNSW graph (usearch) with float16 storage. Recall against the exact
    index depends on `expansion_search`; see bench/retrieval_eval.py for the measured trade-off (10^6 clustered
    256-d vectors: 64 → recall@10 0.83, 256 → 0.97, 512 → 0.99 at 43x the exact index's speed)."""

    kind = GRAPH

    def __init__(self, dim: int, connectivity: int = 16, expansion_add: int = 128,
                 expansion_search: int = 512, dtype: str = "f16") -> None:
        from usearch.index import Index

        self.dim = int(dim)
        self.params = {"connectivity": connectivity, "expansion_add": expansion_add,
                       "expansion_search": expansion_search, "dtype": dtype}
        self._index = Index(ndim=self.dim, metric="cos", dtype=dtype, connectivity=connectivity,
                            expansion_add=expansion_add, expansion_search=expansion_search)

    def __len__(self) -> int:
        return int(len(self._index))

    def ids(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.int64) if len(self) else np.zeros(0, np.int64)

    def nbytes(self) -> int:
        return int(self._index.memory_usage)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        v = l2_normalise(vectors)
        if v.shape != (ids.size, self.dim):
            raise BadInput(f"expected {ids.size} vectors of dimension {self.dim}, got shape {v.shape}")
        present = np.array([self._index.contains(int(i)) for i in ids], bool) if len(self) else np.zeros(0, bool)
        if present.any():
            self._index.remove(ids[present].astype(np.uint64))
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        self._index.add(ids.astype(np.uint64), v, threads=threads)

    def remove(self, ids: np.ndarray | list[int]) -> None:
        a = np.asarray(ids, np.int64).reshape(-1)
        a = a[[self._index.contains(int(i)) for i in a]] if a.size else a
        if a.size:
            self._index.remove(a.astype(np.uint64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise BadInput(f"k must be positive, got {k}")
        q = l2_normalise(queries)
        k = min(k, len(self))
        if k == 0:
            return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
        m = self._index.search(q, k)
        keys = np.full((q.shape[0], k), -1, np.int64)
        dist = np.full((q.shape[0], k), 2.0, np.float32)
        counts = np.asarray(getattr(m, "counts", [len(np.atleast_1d(m.keys))])).reshape(-1)
        mk = np.asarray(m.keys, dtype=np.int64).reshape(q.shape[0], -1)
        md = np.asarray(m.distances, dtype=np.float32).reshape(q.shape[0], -1)
        keys[:, :mk.shape[1]], dist[:, :md.shape[1]] = mk[:, :k], md[:, :k]
        valid = np.arange(k)[None, :] < np.minimum(counts, k)[:, None]
        keys = np.where(valid, keys, -1)
        return keys, np.where(valid, 1.0 - dist, -np.inf).astype(np.float32)

    def save(self, base: Path) -> None:
        base = Path(base)
        path = base.with_name(base.name + ".hnsw")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self._index.save(str(tmp))
            tmp.replace(path)
        except (OSError, RuntimeError) as e:  # usearch reports a failed write as RuntimeError
            raise BadInput(f"{path}: cannot save the index ({e})") from None
        _write_meta(base, {"kind": GRAPH, "dim": self.dim, "count": len(self), **self.params})

    @classmethod
    def load(cls, base: Path, view: bool = False) -> GraphIndex:
        meta = _read_meta(base)
        idx = cls(int(meta["dim"]), int(meta["connectivity"]), int(meta["expansion_add"]),
                  int(meta["expansion_search"]), str(meta["dtype"]))
        path = str(base.with_name(base.name + ".hnsw"))
        try:
            idx._index.view(path) if view else idx._index.load(path)
        except Exception as e:  # usearch raises plain RuntimeError/ValueError for a bad file
            raise BadInput(f"{path}: graph index unreadable ({e})") from None
        return idx


def graph_available() -> bool:
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


def auto_index(dim: int, expected: int, threshold: int = GRAPH_THRESHOLD) -> VectorIndex:
    """The exact index up to `threshold` items, the graph index above it when usearch is installed."""
    if expected > threshold and graph_available():
        return GraphIndex(dim)
    return ExactIndex(dim)


def load_index(base: str | Path) -> VectorIndex:
    """The index saved at `base` (the catalogue path): whichever kind its metadata names."""
    base = Path(base)
    kind = _read_meta(base).get("kind")
    if kind == EXACT:
        return ExactIndex.load(base)
    if kind == GRAPH:
        if not graph_available():
            raise BadInput(f"{base}: saved as a graph index but usearch is not installed")
        return GraphIndex.load(base)
    raise BadInput(f"{base}: unknown index kind {kind!r}")


def index_exists(base: str | Path) -> bool:
    base = Path(base)
    return base.with_name(base.name + ".index.json").is_file()


def _write_meta(base: Path, meta: dict) -> None:
    path = base.with_name(base.name + ".index.json")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise BadInput(f"{path}: cannot save the index ({e.strerror or e})") from None


def _read_meta(base: Path) -> dict:
    path = Path(base).with_name(Path(base).name + ".index.json")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{base}: no vector index saved (run `vitascope retrieval index` first)") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: unreadable index metadata ({e})") from None
    if not isinstance(meta, dict) or "kind" not in meta or "dim" not in meta:
        raise BadInput(f"{path}: index metadata lacks kind/dim")
    return meta


def _atomic_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr))
        tmp.replace(path)
    except OSError as e:  # e.g. a read-only disk: one line for the user
        raise BadInput(f"{path}: cannot save the index ({e.strerror or e})") from None
