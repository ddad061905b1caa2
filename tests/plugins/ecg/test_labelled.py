"""The real Khan split is fixed and written down: load_labelled reproduces khan-folds.csv exactly, every class is in
every fold, and unknown class folders are refused instead of silently dropped."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.ecg.labelled import load_labelled

REPO = Path(__file__).resolve().parents[3]
KHAN = REPO.parent / "shared" / "data" / "ecg-real" / "khan"


def test_khan_folds_match_the_written_split():
    if not KHAN.is_dir():
        pytest.skip("shared Khan images not available")
    d = load_labelled(KHAN, k=5, seed=0)
    with open(REPO / "plugins" / "ecg" / "models" / "ecg-screen-vit" / "khan-folds.csv", newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    assert len(rows) == len(d.files) == 326
    for name, h, fold in zip(d.files, d.sha256, d.folds, strict=True):
        assert rows[name]["sha256"] == h and int(rows[name]["fold"]) == int(fold)
    for c in range(4):
        assert np.all(np.bincount(d.folds[d.y == c], minlength=5) >= 4)


def test_unknown_class_folder_is_refused(tmp_path):
    (tmp_path / "normal").mkdir()
    (tmp_path / "nromal").mkdir()
    with pytest.raises(BadInput, match="unknown class folder"):
        load_labelled(tmp_path)
