"""Out-of-distribution score on a model's pooled features: the Mahalanobis distance to the nearest class mean
under a shared, shrunk covariance (Lee et al. 2018), with the statistics kept in a small .npz beside the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError


@dataclass
class MahalanobisStats:
    """Class means (K, D) and the precision matrix (D, D) of the training features; `threshold` is the score
    above which an input is called unlike the training data."""

    means: np.ndarray
    precision: np.ndarray
    threshold: float = float("inf")

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features → (N,) distance to the nearest class mean (√ of the Mahalanobis form)."""
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.means.shape[1]:
            raise ModelError(f"OOD statistics expect (N, {self.means.shape[1]}) features, got {f.shape}")
        d = f[:, None, :] - self.means[None]                      # (N, K, D)
        m = np.einsum("nkd,de,nke->nk", d, self.precision, d)
        return np.sqrt(np.maximum(m.min(axis=1), 0.0))

    def save(self, path: str | Path) -> None:
        np.savez(path, means=self.means.astype(np.float32), precision=self.precision.astype(np.float32),
                 threshold=np.float64(self.threshold))

    @classmethod
    def load(cls, path: str | Path) -> MahalanobisStats:
        try:
            with np.load(path) as z:
                means, prec, thr = z["means"], z["precision"], float(z["threshold"])
        except (OSError, KeyError, ValueError) as e:
            raise ModelError(f"{path}: unreadable OOD statistics ({e.__class__.__name__})") from None
        if means.ndim != 2 or prec.shape != (means.shape[1], means.shape[1]) or not np.isfinite(prec).all():
            raise ModelError(f"{path}: OOD statistics have inconsistent shapes {means.shape} / {prec.shape}")
        return cls(means.astype(np.float64), prec.astype(np.float64), thr)


def fit_mahalanobis(features: np.ndarray, labels: np.ndarray, shrinkage: float = 0.1) -> MahalanobisStats:
    """Class means and a shared covariance shrunk toward its diagonal mean (stable with few samples per class)."""
    f = np.asarray(features, np.float64)
    y = np.asarray(labels, np.int64)
    classes = np.unique(y)
    means = np.stack([f[y == c].mean(axis=0) for c in classes])
    centred = f - means[np.searchsorted(classes, y)]
    cov = centred.T @ centred / max(1, len(f) - len(classes))
    target = np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
    cov = (1.0 - shrinkage) * cov + shrinkage * target
    return MahalanobisStats(means=means, precision=np.linalg.inv(cov))


def auroc(inlier_scores: np.ndarray, outlier_scores: np.ndarray) -> float:
    """Probability that an outlier scores higher than an inlier (ties count half): 1.0 = perfect separation."""
    a = np.asarray(inlier_scores, np.float64)
    b = np.asarray(outlier_scores, np.float64)
    if a.size == 0 or b.size == 0:
        return float("nan")
    allv = np.concatenate([a, b])
    ranks = np.empty(len(allv))
    order = np.argsort(allv, kind="mergesort")
    ranks[order] = np.arange(1, len(allv) + 1)
    for v in np.unique(allv):  # average ranks of ties
        m = allv == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    return float((ranks[len(a):].sum() - len(b) * (len(b) + 1) / 2) / (len(a) * len(b)))
