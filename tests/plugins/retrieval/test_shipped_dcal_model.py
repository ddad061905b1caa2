"""The shipped DCAL embedder does what its card says: the held-out synthetic re-ID and real class-disjoint numbers,
measured again here through the plug-in, match the card; on the real photos it beats the classical baseline; and
its card carries the checkpoint a wizard fine-tune starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.zoo import Zoo, check_artifact, open_folder
from bench.retrieval_eval import HELDOUT_IDS, HELDOUT_SEED, REAL, real_eval_folder
from plugins.retrieval.embedders import OnnxEmbedder, baseline
from plugins.retrieval.engine import evaluate
from plugins.retrieval.layouts import read_folders, read_market1501
from plugins.retrieval.synthetic import write_market_layout

MODEL_ID = "retrieval-dcal-vit"


@pytest.fixture(scope="module")
def shipped():
    folder = Zoo().resolve(MODEL_ID, "retrieval.embed")
    handle = open_folder(Path(folder), threads=2)
    return handle.card, OnnxEmbedder(handle), Path(folder)


def _metric(card, name: str) -> float:
    return next(m["value"] for m in card.metrics if m["name"] == name)


def test_synthetic_heldout_matches_the_card(shipped, tmp_path):
    card, emb, _ = shipped
    syn = read_market1501(write_market_layout(tmp_path / "syn", n_ids=HELDOUT_IDS, seed=HELDOUT_SEED, views=6))
    m = evaluate(syn, emb)
    assert m.map == pytest.approx(_metric(card, "synthetic_map"), abs=0.01)
    assert m.cmc["1"] == pytest.approx(_metric(card, "synthetic_rank1"), abs=0.01)
    assert m.map > 0.15  # chance mAP with 5 relevant of 1000 gallery images is about 0.01


@pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/data/retrieval/imagen150")
def test_real_class_disjoint_photos_match_the_card_and_beat_the_classical_baseline(shipped, tmp_path):
    card, emb, _ = shipped
    real = read_folders(real_eval_folder(tmp_path))
    m = evaluate(real, emb)
    assert m.map == pytest.approx(_metric(card, "real_map"), abs=0.005)
    assert m.recall["1"] == pytest.approx(_metric(card, "real_recall_at_1"), abs=0.005)
    classical = evaluate(real, baseline("hist+hog"))
    assert m.map > classical.map and m.recall["1"] > classical.recall["1"]


def test_the_card_ships_a_verified_checkpoint(shipped):
    card, _, folder = shipped
    art = card.artifact("checkpoint")
    assert art is not None
    check_artifact(folder, art)
