"""The retrieval engine: indexing keeps the catalogue and the vector index in step (changes, removals, a new
model), switches to the graph index above its threshold, filters by folder, groups near-duplicates, and evaluates
an embedder on a layout with the protocol's numbers."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from app.core.errors import BadInput
from app.core.vector_index import graph_available, load_index
from plugins.retrieval.embedders import ColourHistogram, baseline
from plugins.retrieval.engine import duplicate_groups, evaluate, index_folders, read_rgb, search
from plugins.retrieval.layouts import read_folders


def _colours(folder, n, seed):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = rng.integers(0, 256, 3)
        img[8:24, 8:24] = rng.integers(0, 256, 3)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)


def test_index_tracks_changes_and_model(tmp_path):
    _colours(tmp_path / "a", 40, 0)
    _colours(tmp_path / "b", 20, 1)
    db = tmp_path / "c.vdb"
    rep = index_folders([tmp_path / "a", tmp_path / "b"], db, ColourHistogram())
    assert rep.embedded == 60 and rep.total == 60 and rep.index_kind == "exact"
    (tmp_path / "a" / "000.png").unlink()
    img = cv2.imread(str(tmp_path / "a" / "001.png"))
    cv2.imwrite(str(tmp_path / "a" / "001.png"), 255 - img)
    rep = index_folders([tmp_path / "a", tmp_path / "b"], db, ColourHistogram())
    assert rep.embedded == 1 and rep.total == 59 and len(rep.scan.removed) == 1
    hog = baseline("hist+hog")
    rep = index_folders([tmp_path / "a", tmp_path / "b"], db, hog)  # another model: everything again
    assert rep.embedded == 59 and load_index(db).dim == hog.dim
    q = read_rgb(tmp_path / "b" / "003.png")
    with pytest.raises(BadInput, match="indexed with model hist\\+hog"):
        search(db, q, ColourHistogram())
    hits = search(db, q, hog, k=5)
    assert hits[0].file.endswith("b/003.png") and hits[0].score == pytest.approx(1.0, abs=1e-4)
    only_a = search(db, q, hog, k=5, folder=str(tmp_path / "a"))
    assert len(only_a) == 5 and all("/a/" in h.file for h in only_a)


@pytest.mark.skipif(not graph_available(), reason="usearch not installed")
def test_graph_index_above_threshold(tmp_path):
    _colours(tmp_path / "a", 60, 2)
    db = tmp_path / "c.vdb"
    rep = index_folders([tmp_path / "a"], db, ColourHistogram(), graph_threshold=50)
    assert rep.index_kind == "hnsw" and load_index(db).kind == "hnsw"
    q = read_rgb(tmp_path / "a" / "007.png")
    assert search(db, q, ColourHistogram(), k=3)[0].file.endswith("a/007.png")


def test_duplicate_groups():
    v = np.eye(5, dtype=np.float32)
    v[3] = v[0] * 0.99 + v[1] * 0.01
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert duplicate_groups(v, 0.95) == [[0, 3]]
    assert duplicate_groups(v, 1.01) == []


def test_evaluate_folders_perfect_embedder_scores_one(tmp_path):
    # each class is one flat colour: the colour histogram separates the classes perfectly
    for c, col in (("r", (0, 0, 255)), ("g", (0, 255, 0)), ("b", (255, 0, 0))):
        (tmp_path / c).mkdir()
        for i in range(3):
            img = np.full((16, 16, 3), col, np.uint8)
            img[i, i] = (128, 128, 128)
            cv2.imwrite(str(tmp_path / c / f"{i}.png"), img)
    m = evaluate(read_folders(tmp_path), baseline("colour-hist"))
    assert m.queries == 9 and m.map == pytest.approx(1.0) and m.recall["1"] == 1.0 and m.minp == pytest.approx(1.0)
    shutil.copy(tmp_path / "r" / "0.png", tmp_path / "g" / "x.png")  # a red image labelled green
    m2 = evaluate(read_folders(tmp_path), baseline("colour-hist"))
    assert m2.map < 1.0 and m2.recall["1"] < 1.0
