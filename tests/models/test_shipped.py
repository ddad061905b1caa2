"""Every model shipped in a plug-in's models/ (or the shared models/) is honest: checksum, golden output, a complete
card and its recipe."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from app.core.card import read_card
from app.core.zoo import golden_check, open_folder

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.parent for pattern in ("models/*/card.toml", "plugins/*/models/*/card.toml")
                 for p in ROOT.glob(pattern))


def test_at_least_one_model_ships():
    assert SHIPPED, "plugins/*/models/ must ship at least one model"


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_checksum_and_golden(folder):
    handle = open_folder(folder)
    assert handle.card.id == folder.name
    assert golden_check(handle) <= 1e-4


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_card_is_complete(folder):
    card = read_card(folder)
    assert card.params > 0 and card.opset > 0
    assert card.metrics, "metrics measured on held-out data are required"
    for m in card.metrics:
        assert {"name", "value", "dataset", "seed"} <= set(m), m
    assert card.latency.get("ms", 0) > 0 and card.latency.get("threads") and card.latency.get("batch") == 1
    prov = card.provenance
    assert prov.get("recipe") and (folder / prov["recipe"]).is_file()
    assert "data_seed" in prov and prov.get("training_seconds", 0) > 0
    if card.task.endswith("autofocus"):
        assert card.optics, "holography models must state the optics they were trained for"


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_recipe_is_a_job_spec(folder):
    recipe = tomllib.loads((folder / "recipe.toml").read_text())
    assert recipe.get("kind") and isinstance(recipe.get("params"), dict)
    assert "seed" in recipe
