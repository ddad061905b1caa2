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


# one-model folders run by the app (card + model.onnx + golden + a job-spec recipe) and multi-file folders (a CLIP
# model: two encoders and a tokenizer, trained by a bench script whose command line the card records)
SINGLE = [f for f in SHIPPED if read_card(f).has_model]
MULTI = [f for f in SHIPPED if not read_card(f).has_model]


@pytest.mark.parametrize("folder", SINGLE, ids=lambda p: p.name)
def test_checksum_and_golden(folder):
    handle = open_folder(folder)
    assert handle.card.id == folder.name
    assert golden_check(handle) <= 1e-4


@pytest.mark.parametrize("folder", MULTI, ids=lambda p: p.name)
def test_multi_file_model_checks_every_artifact_and_records_parity_and_provenance(folder):
    handle = open_folder(folder)  # size and sha256 of every artifact first
    card = handle.card
    assert card.id == folder.name and card.requires
    for role in card.requires:
        assert handle.path(role) is not None and handle.path(role).is_file(), role
    parity = {m["name"]: m["value"] for m in card.metrics if m["name"].startswith("parity_")}
    assert parity and all(v <= 1e-4 for v in parity.values()), parity
    assert len(card.metrics) > len(parity), "metrics measured on held-out data are required"
    for m in card.metrics:
        assert {"name", "value", "dataset", "seed"} <= set(m), m
    assert card.arch.get("params", 0) > 0
    assert card.latency.get("image_ms", 0) > 0 and card.latency.get("threads") and card.latency.get("batch") == 1
    script = str(card.provenance.get("recipe", "")).split()[0]
    assert script and (ROOT / script).is_file(), card.provenance
    assert card.provenance.get("student_training_seconds", 0) > 0 and card.provenance.get("seeds")


@pytest.mark.parametrize("folder", SINGLE, ids=lambda p: p.name)
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


@pytest.mark.parametrize("folder", SINGLE, ids=lambda p: p.name)
def test_recipe_is_a_job_spec(folder):
    recipe = tomllib.loads((folder / "recipe.toml").read_text())
    assert recipe.get("kind") and isinstance(recipe.get("params"), dict)
    assert "seed" in recipe
