"""Retrieval metrics on a similarity matrix: CMC, mAP and mINP as in the re-ID protocol (excluded gallery items
removed per query, queries without a positive skipped), Recall@K, and k-reciprocal re-ranking."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.core.errors import BadInput


@dataclass
class RankMetrics:
    queries: int  # valid queries (at least one positive left)
    gallery: int
    map: float
    minp: float
    cmc: dict[str, float] = field(default_factory=dict)  # "1", "5", "10"
    recall: dict[str, float] = field(default_factory=dict)  # "1", "2", "4", "8"
    skipped: int = 0  # queries with no positive in the gallery
    curve: list[float] = field(default_factory=list)  # CMC rank 1..max_rank

    def to_json(self) -> dict:
        return {"queries": self.queries, "gallery": self.gallery, "map": round(self.map, 6),
                "minp": round(self.minp, 6), "cmc": {k: round(v, 6) for k, v in self.cmc.items()},
                "recall": {k: round(v, 6) for k, v in self.recall.items()}}


def rank_metrics(dist: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray,
                 exclude: np.ndarray | None = None, max_rank: int = 50) -> RankMetrics:
    """`dist` (q, g): smaller ranks higher (pass 1 - cosine). `exclude` (q, g) bool: gallery items removed from
    that query's ranking (the query itself; same identity seen by the same camera). Ties keep gallery order."""
    dist = np.asarray(dist, dtype=np.float64)
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    nq, ng = dist.shape if dist.ndim == 2 else (0, 0)
    if dist.ndim != 2 or q_labels.shape != (nq,) or g_labels.shape != (ng,):
        raise BadInput(f"distance matrix {dist.shape} does not match {q_labels.shape} query and "
                       f"{g_labels.shape} gallery labels")
    if not np.isfinite(dist).all():
        raise BadInput("distance matrix holds NaN or infinite values")
    exclude = np.zeros((nq, ng), bool) if exclude is None else np.asarray(exclude, bool)
    order = np.argsort(dist, axis=1, kind="stable")
    curves, aps, inps = [], [], []
    for i in range(nq):
        o = order[i]
        keep = ~exclude[i, o]
        match = (g_labels[o][keep] == q_labels[i]).astype(np.float64)
        if not match.any():
            continue
        cmc = np.minimum(np.cumsum(match), 1.0)
        full = np.ones(max_rank)
        full[:min(max_rank, cmc.size)] = cmc[:max_rank]
        if cmc.size < max_rank:
            full[cmc.size:] = cmc[-1]
        curves.append(full)
        hits = np.cumsum(match)
        pos = np.flatnonzero(match)
        aps.append(float(np.mean(hits[pos] / (pos + 1.0))))
        inps.append(float(match.sum() / (pos[-1] + 1.0)))
    if not curves:
        raise BadInput("no query has a matching gallery item (every identity/class needs at least two images)")
    curve = np.mean(curves, axis=0)

    def at(k: int) -> float:
        return float(curve[min(k, max_rank) - 1])

    return RankMetrics(queries=len(curves), gallery=ng, map=float(np.mean(aps)), minp=float(np.mean(inps)),
                       cmc={str(k): at(k) for k in (1, 5, 10)}, recall={str(k): at(k) for k in (1, 2, 4, 8)},
                       skipped=nq - len(curves), curve=[float(c) for c in curve])


def cosine_distance(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of (unit) embeddings."""
    return 1.0 - np.asarray(q, np.float32) @ np.asarray(g, np.float32).T


def re_ranking(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6,
               lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017) of query-gallery distances; returns the blended
    (1-λ)·Jaccard + λ·original distance, (q, g). Memory O((q+g)^2): for offline evaluation."""
    original = np.concatenate([np.concatenate([q_q, q_g], axis=1),
                               np.concatenate([q_g.T, g_g], axis=1)], axis=0)
    return _rerank(original, q_g.shape[0], k1, k2, lambda_value)[:, q_g.shape[0]:]


def re_ranking_single(dist: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking when queries and gallery are one set (each item queries all others): (n, n)."""
    return _rerank(np.asarray(dist), dist.shape[0], k1, k2, lambda_value)


def _rerank(original: np.ndarray, query_num: int, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    original = np.power(np.asarray(original, np.float64), 2)
    original = np.transpose(original / np.maximum(np.max(original, axis=0), 1e-12))
    v = np.zeros_like(original)
    initial_rank = np.argsort(original, axis=1, kind="stable")
    all_num = original.shape[0]
    k1 = min(k1, all_num - 1)
    for i in range(all_num):
        forward = initial_rank[i, :k1 + 1]
        backward = initial_rank[forward, :k1 + 1]
        fi = np.where(backward == i)[0]
        k_reciprocal = forward[fi]
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            half = int(np.around(k1 / 2.0))
            c_forward = initial_rank[candidate, :half + 1]
            c_backward = initial_rank[c_forward, :half + 1]
            fi_c = np.where(c_backward == candidate)[0]
            c_reciprocal = c_forward[fi_c]
            if len(np.intersect1d(c_reciprocal, k_reciprocal)) > 2.0 / 3 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        v[i, expansion] = weight / np.sum(weight)
    original_q = original[:query_num]
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(all_num):
            v_qe[i] = np.mean(v[initial_rank[i, :k2]], axis=0)
        v = v_qe
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(all_num)]
    jaccard = np.zeros((query_num, all_num), dtype=np.float64)
    for i in range(query_num):
        temp_min = np.zeros(all_num, dtype=np.float64)
        ind_non_zero = np.where(v[i] != 0)[0]
        for j in ind_non_zero:
            idx = inv_index[j]
            temp_min[idx] += np.minimum(v[i, j], v[idx, j])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    return jaccard * (1 - lambda_value) + original_q * lambda_value
