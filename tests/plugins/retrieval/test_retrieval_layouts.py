"""Evaluation layouts read from small fixtures in their exact on-disk form."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.retrieval.layouts import detect_layout, read_layout


def _img(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((4, 4, 3), value, np.uint8))


def test_market1501_names_junk_and_distractors(tmp_path):
    base = tmp_path / "Market-1501-v15.09.15"
    for name in ("0001_c1s1_000151_01.jpg", "0002_c3s2_000301_00.jpg", "-1_c2s1_000001_00.jpg"):
        _img(base / "query" / name)
    for name in ("0001_c1s1_000176_03.jpg", "0001_c4s2_000201_01.jpg", "0002_c3s2_000401_02.jpg",
                 "0000_c6s1_000001_00.jpg", "-1_c1s1_000010_00.jpg", "0002_c5s3_000011_00.jpg"):
        _img(base / "bounding_box_test" / name)
    (base / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")
    assert detect_layout(tmp_path) == "market1501"
    es = read_layout(tmp_path)
    assert [p.name for p in es.query] == ["0001_c1s1_000151_01.jpg", "0002_c3s2_000301_00.jpg"]  # junk dropped
    assert es.q_labels.tolist() == [1, 2] and es.q_cams.tolist() == [0, 2]
    assert es.g_labels.tolist() == [0, 1, 1, 2, 2]  # sorted by name: distractor 0000 kept, junk dropped
    assert es.g_cams.tolist() == [5, 0, 3, 2, 4]
    assert es.exclude().tolist() == [[False, True, False, False, False],
                                     [False, False, False, True, False]]


def test_market1501_bad_name(tmp_path):
    _img(tmp_path / "query" / "person.jpg")
    _img(tmp_path / "bounding_box_test" / "0001_c1s1_000001_00.jpg")
    with pytest.raises(BadInput, match="person.jpg"):
        read_layout(tmp_path, "market1501")


def test_folders_each_image_queries_the_others(tmp_path):
    for c, n in (("cat", 2), ("dog", 3), ("eel", 1)):
        for i in range(n):
            _img(tmp_path / c / f"{i}.png", i)
    _img(tmp_path / "dog" / "sub" / "x.jpg")
    es = read_layout(tmp_path)
    assert es.layout == "folders" and es.same_set and es.class_names == ("cat", "dog", "eel")
    assert es.q_labels.tolist() == [0, 0, 1, 1, 1, 1, 2]
    assert es.exclude().sum() == 7 and es.exclude()[3, 3]


def _cub(tmp_path):
    rows = [(1, "001.A/a1.jpg", 1, 1), (2, "001.A/a2.jpg", 1, 0), (3, "001.A/a3.jpg", 1, 0),
            (4, "002.B/b1.jpg", 2, 1), (5, "002.B/b2.jpg", 2, 0), (6, "003.C/c1.jpg", 3, 0),
            (7, "003.C/c2.jpg", 3, 1), (8, "004.D/d1.jpg", 4, 0)]
    for _i, rel, _c, _t in rows:
        _img(tmp_path / "images" / rel)
    (tmp_path / "images.txt").write_text("".join(f"{i} {rel}\n" for i, rel, _c, _t in rows))
    (tmp_path / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, _r, c, _t in rows))
    (tmp_path / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _r, _c, t in rows))
    return rows


def test_cub_splits(tmp_path):
    _cub(tmp_path)
    assert detect_layout(tmp_path) == "cub"
    test = read_layout(tmp_path)
    assert [p.name for p in test.query] == ["a2.jpg", "a3.jpg", "b2.jpg", "c1.jpg", "d1.jpg"]
    assert test.q_labels.tolist() == [1, 1, 2, 3, 4]
    disj = read_layout(tmp_path, "cub", cub_split="disjoint")  # classes 3 and 4 (second half)
    assert [p.name for p in disj.query] == ["c1.jpg", "c2.jpg", "d1.jpg"]
    assert len(read_layout(tmp_path, "cub", cub_split="all").query) == 8


def test_cub_missing_pieces(tmp_path):
    _cub(tmp_path)
    (tmp_path / "images" / "002.B" / "b2.jpg").unlink()
    with pytest.raises(BadInput, match="b2.jpg"):
        read_layout(tmp_path)
    (tmp_path / "train_test_split.txt").unlink()
    with pytest.raises(BadInput, match="train_test_split.txt"):
        read_layout(tmp_path, "cub")


def test_unknown_layout_and_empty(tmp_path):
    with pytest.raises(BadInput, match="unknown layout"):
        read_layout(tmp_path, "coco")
    with pytest.raises(BadInput, match="no images"):
        read_layout(tmp_path, "folders")
