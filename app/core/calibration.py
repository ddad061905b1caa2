"""Probability calibration of a classifier's logits: temperature scaling fitted by likelihood, and the expected
calibration error (ECE) that says how far stated confidence is from measured accuracy."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

T_RANGE = (0.05, 20.0)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits / T)."""
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on held-out (logits, labels); 1.0 when empty."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    if len(labels) == 0:
        return 1.0
    res = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))),
                          bounds=tuple(np.log(T_RANGE)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins: Σ_b (n_b / n) |accuracy_b − confidence_b| over the top-1 class."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    if len(labels) == 0:
        return 0.0
    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(ece)


def crossfit_ece(logits: np.ndarray, labels: np.ndarray, folds: np.ndarray, bins: int = 15) -> float:
    """ECE of temperature scaling measured honestly: for each fold, T is fitted on the other folds' logits and the
    fold's calibrated probabilities are pooled; the ECE of the pooled set is returned."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    folds = np.asarray(folds)
    probs = np.zeros_like(logits)
    for f in np.unique(folds):
        m = folds == f
        probs[m] = softmax(logits[m], fit_temperature(logits[~m], labels[~m]))
    return expected_calibration_error(probs, labels, bins)
