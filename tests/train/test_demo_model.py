"""The shipped demo model (plugins/demo/models/demo-shapes-vit) is honest: its card's held-out accuracy is reproduced
with onnxruntime on the held-out seed, and its recipe is a runnable train + export spec. No torch needed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from app.core.card import read_card
from app.core.zoo import golden_check, open_folder
from plugins.demo.shapes import HELDOUT_SEED, LABELS, make_dataset

FOLDER = Path(__file__).resolve().parents[2] / "plugins" / "demo" / "models" / "demo-shapes-vit"
pytestmark = pytest.mark.skipif(not (FOLDER / "card.toml").is_file(), reason="demo model not built yet")


def test_card_and_golden():
    handle = open_folder(FOLDER)
    card = handle.card
    assert golden_check(handle) <= 1e-4
    assert card.task == "demo.shapes" and tuple(card.labels) == LABELS
    assert card.preprocess["size"] == 64 and card.preprocess["crop"] == "resize"
    assert card.latency["ms"] > 0 and card.params > 0
    prov = card.provenance
    assert prov["recipe"] == "recipe.toml" and prov["training_seconds"] > 0 and prov["torch"]
    assert prov["data_seed"] != HELDOUT_SEED


def test_heldout_accuracy_is_reproduced():
    card = read_card(FOLDER)
    acc = next(m for m in card.metrics if m["name"] == "accuracy")
    assert acc["seed"] == HELDOUT_SEED and "held-out" in acc["dataset"]
    heldout = tomllib.loads((FOLDER / "recipe.toml").read_text())["params"]["export"]["heldout"]
    _, _, x, y = make_dataset(acc["seed"], **heldout["params"])
    assert len(y) == acc["n"]
    handle = open_folder(FOLDER)
    pred = np.concatenate([handle.run(x[i:i + 250])[0].argmax(1) for i in range(0, len(x), 250)])
    assert float(np.mean(pred == y)) == pytest.approx(acc["value"], abs=1e-3)
    assert acc["value"] >= 0.95


def test_recipe_is_a_train_and_export_job():
    recipe = tomllib.loads((FOLDER / "recipe.toml").read_text())
    assert recipe["kind"] == "train" and "seed" in recipe
    assert recipe["params"]["export"]["id"] == "demo-shapes-vit"
    assert recipe["params"]["data"]["seed"] != recipe["params"]["export"]["heldout"]["seed"]
