"""Vector indexes: exact cosine top-k against a brute-force reference, add/replace/remove, save/load beside a
catalogue, and the HNSW graph index's recall against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from app.core.vector_index import (
    EXACT,
    GRAPH,
    ExactIndex,
    GraphIndex,
    auto_index,
    graph_available,
    index_exists,
    l2_normalise,
    load_index,
)


def _data(n, d=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32)


def test_l2_normalise_rows_and_refuses_nan():
    v = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(v, [[0.6, 0.8], [0, 0]])
    with pytest.raises(BadInput):
        l2_normalise(np.array([[np.nan, 1.0]]))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_exact_topk_matches_bruteforce(dtype, tmp_path):
    x = _data(3000)
    ids = np.arange(3000) * 7 + 5
    idx = ExactIndex(32, dtype)
    idx.add(ids, x)
    q = _data(5, seed=1)
    got_ids, got_s = idx.search(q, 10)
    ref = l2_normalise(q) @ l2_normalise(x).T
    order = np.argsort(-ref, axis=1)[:, :10]
    assert np.array_equal(got_ids, ids[order])
    assert np.allclose(got_s, np.take_along_axis(ref, order, 1), atol=1e-5)
    assert np.all(np.diff(got_s, axis=1) <= 0)
    idx.save(tmp_path / "c.vdb")
    assert index_exists(tmp_path / "c.vdb")
    disk = np.load(tmp_path / "c.vdb.vectors.npy")
    assert disk.dtype == np.dtype(dtype)
    back = load_index(tmp_path / "c.vdb")
    assert back.kind == EXACT and len(back) == 3000
    b_ids, b_s = back.search(q, 10)
    tol = 2e-3 if dtype == "float16" else 1e-6
    assert np.allclose(b_s, got_s, atol=tol)
    assert (b_ids == got_ids).mean() > 0.95  # float16 rounding may swap near-ties


def test_exact_add_replaces_and_remove_deletes():
    idx = ExactIndex(4, "float32")
    idx.add([1, 2, 3], np.eye(4)[:3])
    idx.add([2], np.array([[0, 0, 0, 1.0]]))  # replace id 2
    assert len(idx) == 3
    ids, s = idx.search(np.array([0, 0, 0, 1.0]), 1)
    assert ids[0, 0] == 2 and s[0, 0] == pytest.approx(1.0)
    idx.remove([2, 99])
    assert len(idx) == 2 and 2 not in idx.ids()
    ids, _ = idx.search(np.array([0, 0, 0, 1.0]), 5)
    assert sorted(ids[0].tolist()) == [1, 3]  # k larger than the index: everything, no padding
    with pytest.raises(BadInput):
        idx.add([5, 5], np.ones((2, 4)))
    with pytest.raises(BadInput):
        idx.add([6], np.ones((1, 3)))
    with pytest.raises(BadInput):
        idx.search(np.ones(4), 0)


def test_empty_index_and_missing_files(tmp_path):
    idx = ExactIndex(8)
    ids, s = idx.search(np.ones(8), 3)
    assert ids.shape == (1, 0)
    with pytest.raises(BadInput, match="no vector index"):
        load_index(tmp_path / "none.vdb")
    idx.add([1], np.ones((1, 8)))
    idx.save(tmp_path / "c.vdb")
    (tmp_path / "c.vdb.vectors.npy").write_bytes(b"garbage")
    with pytest.raises(BadInput):
        load_index(tmp_path / "c.vdb")


@pytest.mark.skipif(not graph_available(), reason="usearch not installed")
def test_graph_index_recall_and_persistence(tmp_path):
    # clustered data (like real embeddings), 20k items
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((200, 64))
    x = (centres[rng.integers(0, 200, 20000)] + 0.5 * rng.standard_normal((20000, 64))).astype(np.float32)
    ids = np.arange(20000) + 100
    g = GraphIndex(64, expansion_search=128)
    g.add(ids, x)
    e = ExactIndex(64, "float32")
    e.add(ids, x)
    q = x[:200] + 0.1 * rng.standard_normal((200, 64)).astype(np.float32)
    gi, gs = g.search(q, 10)
    ei, _ = e.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(gi, ei, strict=True)])
    assert recall >= 0.95
    assert np.all(np.diff(gs, axis=1) <= 1e-3)
    g.remove(ids[:10])
    assert len(g) == 19990
    g.save(tmp_path / "c.vdb")
    back = load_index(tmp_path / "c.vdb")
    assert back.kind == GRAPH and len(back) == 19990
    bi, _ = back.search(q[:20], 10)
    assert not set(bi.ravel()) & set(ids[:10].tolist())


def test_auto_index_switches_at_threshold():
    assert auto_index(16, 10, threshold=100).kind == EXACT
    expected = GRAPH if graph_available() else EXACT
    assert auto_index(16, 1000, threshold=100).kind == expected
