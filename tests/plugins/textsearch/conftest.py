"""Shared fixtures: a small randomly initialised CLIP converted to a model folder, and a folder of colour photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
           "white": (250, 250, 250), "black": (5, 5, 5)}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from app.train.clip_convert import write_folder
    from app.train.clip_model import CLIP, ClipConfig

    torch.manual_seed(0)
    cfg = ClipConfig(embed_dim=32, image_size=64, patch_size=16, vision_width=64, vision_layers=2, vision_heads=2,
                     vision_mlp=128, text_width=64, text_heads=2, text_layers=1, text_mlp=128)
    out = tmp_path_factory.mktemp("clip") / "tiny-clip"
    write_folder(CLIP(cfg).eval(), out, "tiny-clip", {"checkpoint": "random"}, latency_runs=0)
    return out


def write_photos(folder):
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i, (name, rgb) in enumerate(COLOURS.items()):
        img = np.clip(np.array(rgb)[None, None] + rng.normal(0, 12, (90 + 10 * i, 120, 3)), 0, 255).astype(np.uint8)
        img[20:50, 30 + 5 * i:70 + 5 * i] = 255 - img[20:50, 30 + 5 * i:70 + 5 * i]
        Image.fromarray(img).save(folder / ("sub" if i % 2 else "") / f"{name}.png")
    return folder


@pytest.fixture
def photos(tmp_path):
    return write_photos(tmp_path / "photos")


@pytest.fixture(scope="module")
def indexed(model_dir, tmp_path_factory):
    """(photos folder, catalogue) indexed once with the tiny model; tests must not change either."""
    from app.cli import main

    root = tmp_path_factory.mktemp("indexed")
    folder = write_photos(root / "photos")
    assert main(["clip", "index", str(folder), "--db", str(root / "p.vdb"), "--model", str(model_dir)]) == 0
    return folder, root / "p.vdb"


