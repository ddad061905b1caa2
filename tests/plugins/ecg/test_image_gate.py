"""Images that cannot be ECG pages are refused before the model runs; real ECG pages of every source pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.io.images import read_image
from plugins.ecg.image_gate import NotAnEcgImage, check_ecg_image
from plugins.ecg.render import render
from plugins.ecg.waveform import simulate

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"


@pytest.mark.parametrize("image, why", [
    (np.zeros((3, 3, 3), np.uint8), "too small"),
    (np.zeros((800, 1100, 3), np.uint8), "blank"),
    (np.full((800, 1100), 255, np.uint8), "blank"),
    (np.random.default_rng(0).integers(0, 256, (800, 1100, 3), dtype=np.uint8), "noise"),
    (np.random.default_rng(1).integers(0, 65535, (600, 900), dtype=np.uint16), "noise"),
])
def test_refused_with_a_reason(image, why):
    with pytest.raises(NotAnEcgImage, match=why):
        check_ecg_image(image, "x.png")


@pytest.mark.parametrize("style", ["clean", "scanned", "photographed"])
@pytest.mark.parametrize("dpi", [60, 150])
def test_synthetic_pages_pass(style, dpi):
    check_ecg_image(render(simulate("normal", 3), style=style, dpi=dpi, seed=3))


def test_real_ecg_images_pass():
    files = sorted((SHARED / "ecg-real" / "khan").glob("*/*.jpg"))[::25]
    files += sorted((SHARED / "ecg" / "images").glob("*.*g"))
    if not files:
        pytest.skip("shared real ECG images not available")
    for f in files:
        check_ecg_image(read_image(f), str(f))
