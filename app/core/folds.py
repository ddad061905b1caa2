"""Cross-validation folds for small real image sets: near-duplicate images are grouped (they must never straddle a
split) and groups are dealt to folds class by class in an order fixed by a seeded content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def near_duplicate_groups(images: np.ndarray, threshold: float = 0.8, dark: int = 110) -> np.ndarray:
    """Group ids (N,) for (N, H, W) uint8 grayscale images of one size: two images are near-duplicates when the
    correlation of their dark-stroke maps, after removing what every image shares (a printed template, a grid), is
    above `threshold` — the same record scanned twice, re-cropped or re-compressed. Groups are connected components."""
    x = np.asarray(images)
    if x.ndim != 3 or len(x) == 0:
        return np.zeros(len(x), np.int64)
    strokes = (x < dark).astype(np.float32)
    r = (strokes - np.median(strokes, axis=0)).reshape(len(x), -1)
    r -= r.mean(axis=1, keepdims=True)
    r /= np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-9)
    parent = np.arange(len(x))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    for i in range(0, len(x), 256):
        sim = r[i:i + 256] @ r.T
        for a, b in zip(*np.nonzero(sim > threshold), strict=True):
            ra, rb = root(i + int(a)), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(x))])
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def stratified_group_folds(labels: Sequence[int], groups: Sequence[int], keys: Sequence[str], k: int = 5,
                           seed: int = 0) -> np.ndarray:
    """Fold index (N,) in 0..k-1. Each group goes whole to one fold (its label: the majority label); within a class,
    groups are ordered by sha256(seed, their smallest key) and dealt round-robin, so the assignment depends on
    content (e.g. file hashes as `keys`), not on file order, and every class is spread over the folds."""
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    fold = np.zeros(len(labels), np.int64)
    info = []
    for gid in np.unique(groups):
        m = groups == gid
        lab = int(np.bincount(labels[m]).argmax())
        key = min(keys[i] for i in np.nonzero(m)[0])
        info.append((lab, hashlib.sha256(f"{seed}:{key}".encode()).hexdigest(), gid))
    offset = 0
    for lab in sorted({i[0] for i in info}):
        members = sorted((h, gid) for cl, h, gid in info if cl == lab)
        for j, (_, gid) in enumerate(members):
            fold[groups == gid] = (offset + j) % k
        offset += len(members)  # the next class starts where this one ended: fold sizes stay balanced
    return fold
