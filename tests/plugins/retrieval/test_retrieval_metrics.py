"""Re-ID / metric-learning metrics against values computed by hand, and k-reciprocal re-ranking."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.retrieval.metrics import rank_metrics, re_ranking, re_ranking_single


def test_two_queries_by_hand():
    # gallery labels; each query's row gives distances that produce the ranking in the comment
    g = np.array([0, 1, 0, 1, 1])
    dist = np.array([
        [0.2, 0.1, 0.4, 0.3, 0.5],  # query label 0: ranking g1(1) g0(0) g3(1) g2(0) g4(1) → hits at 2, 4
        [0.5, 0.1, 0.6, 0.7, 0.8],  # query label 1: ranking g1(1) g0(0) g2(0) g3(1) g4(1) → hits at 1, 4, 5
    ])
    m = rank_metrics(dist, np.array([0, 1]), g)
    # AP0 = (1/2 + 2/4) / 2 = 0.5 ; AP1 = (1/1 + 2/4 + 3/5) / 3 = 0.7
    assert m.map == pytest.approx(0.6)
    # INP0 = 2/4 ; INP1 = 3/5
    assert m.minp == pytest.approx(0.55)
    assert m.cmc == pytest.approx({"1": 0.5, "5": 1.0, "10": 1.0})
    assert m.recall == pytest.approx({"1": 0.5, "2": 1.0, "4": 1.0, "8": 1.0})
    assert m.queries == 2 and m.gallery == 5 and m.skipped == 0


def test_same_id_same_camera_removed_and_no_positive_skipped():
    q_ids, q_cams = np.array([1, 3]), np.array([0, 0])
    g_ids, g_cams = np.array([1, 2, 1, 0, 3]), np.array([0, 0, 1, 1, 0])
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.9],
                     [0.5, 0.5, 0.5, 0.5, 0.1]])
    excl = (q_ids[:, None] == g_ids[None]) & (q_cams[:, None] == g_cams[None])
    m = rank_metrics(dist, q_ids, g_ids, excl)
    # query 1: g0 removed (same id, same camera) → g1(2) g2(1) g3(0) g4(3): hit at 2 → AP 1/2, INP 1/2
    # query 3: its only match g4 is the same camera → skipped
    assert m.queries == 1 and m.skipped == 1
    assert m.map == pytest.approx(0.5) and m.minp == pytest.approx(0.5)
    assert m.cmc["1"] == 0.0 and m.cmc["5"] == 1.0
    with pytest.raises(BadInput, match="no query"):
        rank_metrics(dist[1:], q_ids[1:], g_ids, excl[1:])


def test_bad_shapes_and_nan_refused():
    with pytest.raises(BadInput):
        rank_metrics(np.zeros((2, 3)), np.zeros(3), np.zeros(3))
    with pytest.raises(BadInput):
        rank_metrics(np.full((1, 2), np.nan), np.zeros(1), np.zeros(2))


def _clusters(n_id=12, per=6, d=16, noise=0.9, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n_id, d))
    y = np.repeat(np.arange(n_id), per)
    x = c[y] + noise * rng.standard_normal((y.size, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def test_rerank_with_lambda_one_keeps_the_original_order():
    x, y = _clusters()
    q, g = x[::6], np.delete(x, np.s_[::6], axis=0)
    d = lambda a, b: np.sqrt(np.maximum(2 - 2 * a @ b.T, 0))  # noqa: E731
    rr = re_ranking(d(q, g), d(q, q), d(g, g), lambda_value=1.0)
    assert np.array_equal(np.argsort(rr, axis=1, kind="stable"), np.argsort(d(q, g), axis=1, kind="stable"))


def test_rerank_improves_map_on_noisy_clusters():
    gains = []
    for seed in range(3):
        x, y = _clusters(seed=seed)
        dist = np.sqrt(np.maximum(2 - 2 * x @ x.T, 0))
        base = rank_metrics(dist, y, y, np.eye(y.size, dtype=bool))
        rr = re_ranking_single(dist)
        assert rr.shape == dist.shape and np.isfinite(rr).all()
        new = rank_metrics(rr, y, y, np.eye(y.size, dtype=bool))
        gains.append(new.map - base.map)
    assert np.mean(gains) > 0.01, gains
