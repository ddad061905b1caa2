"""Metrics of a model's outputs against targets, numpy only, and the headline scorers the training objectives use
(app/core/problems.py; the wizard's Evaluate step and the training code score with the same functions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def classification_metrics(logits: np.ndarray, y: np.ndarray, num_classes: int | None = None) -> dict[str, float]:
    """Accuracy and macro-F1 (classes absent from both y and the predictions are skipped)."""
    num_classes = logits.shape[1] if num_classes is None else num_classes
    pred = logits.argmax(axis=1)
    f1s = []
    for c in range(num_classes):
        tp = int(np.sum((pred == c) & (y == c)))
        fp = int(np.sum((pred == c) & (y != c)))
        fn = int(np.sum((pred != c) & (y == c)))
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(pred == y)), "macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def regression_metrics(out: np.ndarray, y: np.ndarray) -> dict[str, float]:
    d = out.reshape(len(out), -1).astype(np.float64) - y.reshape(len(y), -1)
    return {"mae": float(np.abs(d).mean()), "rmse": float(np.sqrt((d**2).mean()))}


def retrieval_metrics(emb: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Leave-one-out retrieval among the samples by cosine similarity: recall@1 (the nearest other sample has the
    query's label) and mAP (mean average precision of the full ranking), over queries with at least one match."""
    e = emb.reshape(len(emb), -1).astype(np.float64)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    y = y.reshape(-1)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :-1]  # the query itself (−inf) is last
    hits = y[order] == y[:, None]
    has = hits.any(axis=1)
    if not has.any():
        return {"recall_at_1": 0.0, "map": 0.0}
    hits = hits[has]
    ranks = np.arange(1, hits.shape[1] + 1)
    precision = np.cumsum(hits, axis=1) / ranks
    ap = (precision * hits).sum(axis=1) / hits.sum(axis=1)
    return {"recall_at_1": float(hits[:, 0].mean()), "map": float(ap.mean())}


@dataclass(frozen=True)
class Scorer:
    """An objective's headline metric: `score(out, y, labels)` → (value, per-class values); `plots` says whether
    predicted-vs-true pairs make sense to plot (a regression)."""

    metric: str
    score: Callable[[np.ndarray, np.ndarray, list[str] | None], tuple[float, dict[str, float]]]
    plots: bool = False


def _accuracy(out: np.ndarray, y: np.ndarray, labels: list[str] | None) -> tuple[float, dict[str, float]]:
    pred = out.argmax(axis=1)
    y = y.reshape(-1).astype(np.int64)
    per = {}
    for k in sorted(set(y.tolist())):
        name = labels[k] if labels and k < len(labels) else str(k)
        per[name] = float(np.mean(pred[y == k] == k))
    return float(np.mean(pred == y)), per


def _mae(out: np.ndarray, y: np.ndarray, labels: list[str] | None) -> tuple[float, dict[str, float]]:
    return regression_metrics(out, y)["mae"], {}


def _recall(out: np.ndarray, y: np.ndarray, labels: list[str] | None) -> tuple[float, dict[str, float]]:
    return retrieval_metrics(out, y)["recall_at_1"], {}


def text_to_image_recall(sim: np.ndarray, caption_image: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)
                         ) -> dict[str, float]:
    """Text→image R@k in percent: `sim` [captions, images], `caption_image[c]` the index of caption c's image;
    a caption counts at k when fewer than k images score strictly higher than its own."""
    sim = np.asarray(sim, dtype=np.float64)
    idx = np.asarray(caption_image).reshape(-1).astype(np.int64)
    rank = (sim > sim[np.arange(len(idx)), idx][:, None]).sum(axis=1)
    return {f"R@{k}": round(100.0 * float((rank < k).mean()), 2) for k in ks}


def _t2i_recall(out: np.ndarray, y: np.ndarray, labels: list[str] | None) -> tuple[float, dict[str, float]]:
    per = text_to_image_recall(out, y)
    return per["R@10"], per


ACCURACY = Scorer("accuracy", _accuracy)
MAE = Scorer("mae", _mae, plots=True)
RECALL_AT_1 = Scorer("recall_at_1", _recall)
T2I_RECALL_AT_10 = Scorer("t2i_R@10", _t2i_recall)  # out: caption × image similarities, y: each caption's image
