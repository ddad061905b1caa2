"""One embedded batch of a collection stored: its vectors into the index, its files marked embedded in the catalogue
and the files that could not be read marked unreadable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .collection import Collection, FileRecord
from .vector_index import VectorIndex


def store_batch(col: Collection, index: VectorIndex, chunk: Sequence[FileRecord], kept: Sequence[int],
                vectors: np.ndarray, failed: Sequence[tuple[str, str]], tag: str,
                unreadable: list[tuple[str, str]]) -> int:
    """Add `vectors` (one row per position in `kept`, positions into `chunk`) to `index` and mark those files
    embedded with `tag`; mark each (path, reason) of `failed` unreadable and append it to `unreadable`.
    Returns how many files were embedded."""
    by_path = {r.path: r for r in chunk}
    for path, reason in failed:
        rec = by_path.get(path) or col.by_path(path)
        if rec is not None:
            col.mark_unreadable(rec.id, reason)
        unreadable.append((path, reason))
    if not kept:
        return 0
    ids = np.asarray([chunk[i].id for i in kept], np.int64)
    index.add(ids, vectors)
    col.mark_embedded(ids.tolist(), tag)
    return len(kept)
