"""The shipped text-search model does what its card says: its COCO validation recall, measured again here through
the plug-in, matches the card; and on freshly generated scenes (a seed it never saw) a typed description finds its
image far above chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.card import CLIP_TASK
from app.core.zoo import Zoo
from plugins.textsearch.evaluate import evaluate, recall
from plugins.textsearch.model import ClipModel

ROOT = Path(__file__).resolve().parents[3]
COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"


@pytest.fixture(scope="module")
def shipped():
    cards = [c for c in Zoo().cards() if c.task == CLIP_TASK]
    assert cards, "no text-search model ships"
    card = cards[0]
    return card, ClipModel(Zoo().resolve(card.id))


def _metric(card, name: str) -> float:
    return next(m["value"] for m in card.metrics if m["name"] == name)


@pytest.mark.skipif(not COCO.is_dir(), reason="needs ../shared/data/clip/coco")
def test_coco_validation_recall_matches_the_card(shipped):
    card, model = shipped
    res = evaluate(model, COCO / "captions_val.json", COCO / "images")
    assert (res["images"], res["captions"]) == (201, 1000)
    for way in ("t2i", "i2t"):
        for k in ("1", "5", "10"):
            assert res[way][k] == pytest.approx(100 * _metric(card, f"coco_val_{way}_r{k}"), abs=1.5), (way, k)
    assert res["t2i"]["10"] > 5.0  # chance is 10 of 201 images


def test_generated_scenes_are_found_by_their_captions(shipped, tmp_path):
    from bench.clip_scenes import make_scenes

    _, model = shipped
    raw, caps = make_scenes(60, seed=4242, size=model.size)
    files = []
    for i, a in enumerate(raw):
        f = tmp_path / f"scene{i:02d}.png"
        Image.fromarray(a).save(f)
        files.append(f)
    keep, img = model.encode_files(files)
    assert len(keep) == 60
    txt = model.encode_texts([c[0] for c in caps])
    r = recall(txt @ img.T, np.arange(60))
    assert r["t2i"]["10"] >= 50.0, r  # chance: 10 of 60 images, 16.7 %
