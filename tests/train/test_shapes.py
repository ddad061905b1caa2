"""The demo data generator (numpy + cv2 only): deterministic, balanced, normalised, torch- and Qt-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from plugins.demo.shapes import HELDOUT_SEED, LABELS, make_dataset, make_heldout, render_shape


def test_dataset_shapes_and_determinism():
    a = make_dataset(3, n_train=40, n_val=12)
    b = make_dataset(3, n_train=40, n_val=12)
    x_train, y_train, x_val, y_val = a
    assert x_train.shape == (40, 3, 64, 64) and x_val.shape == (12, 3, 64, 64)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert -1.0 <= x_train.min() and x_train.max() <= 1.0
    assert np.bincount(y_train, minlength=4).tolist() == [10, 10, 10, 10]
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    c = make_dataset(4, n_train=40, n_val=12)
    assert not np.array_equal(a[0], c[0])
    # val does not depend on how much training data was drawn
    assert np.array_equal(make_dataset(3, n_train=8, n_val=12)[2], x_val)


def test_heldout_is_a_different_seed():
    _, _, xh, yh = make_heldout(n=8)
    _, _, xv, _ = make_dataset(HELDOUT_SEED, 0, 8)
    assert np.array_equal(xh, xv) and len(yh) == 8
    assert not np.array_equal(xh, make_dataset(1, 0, 8)[2])


def test_render_shape():
    rng = np.random.default_rng(0)
    for label in range(len(LABELS)):
        img = render_shape(rng, label)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 5
    assert render_shape(np.random.default_rng(1), 2, size=32).shape == (32, 32, 3)
    assert LABELS == ("circle", "square", "triangle", "cross")


def test_no_torch_no_qt():
    code = ("import sys; import plugins.demo.shapes; "
            "print(sorted(m for m in ('torch', 'PySide6') if m in sys.modules))")
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"
