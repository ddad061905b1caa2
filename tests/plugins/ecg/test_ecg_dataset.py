"""Training data: shapes, labels, determinism, cache, seed- and hash-disjoint splits; model-input preprocessing."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.ecg import dataset as ds
from plugins.ecg.preprocess import DEFAULT_SIZE, letterbox_gray, to_model_input
from plugins.ecg.types import CLASSES

SMALL = dict(seed=3, n_per_class=3, n_val_per_class=2, size=(64, 96))


def rows(x: np.ndarray) -> set[str]:
    return {hashlib.sha256(a.tobytes()).hexdigest() for a in x}


def test_shapes_labels_cache_and_determinism(vitascope_home):
    xt, yt, xv, yv = ds.make_dataset(split="train", **SMALL)
    assert xt.shape == (12, 1, 64, 96) and xt.dtype == np.float32 and yt.dtype == np.int64
    assert xv.shape == (8, 1, 64, 96) and sorted(set(yt.tolist())) == list(range(len(CLASSES)))
    assert np.bincount(yv).tolist() == [2, 2, 2, 2]
    assert abs(float(xt.mean())) < 0.05 and np.isfinite(xt).all()
    cached = sorted(p.name for p in (vitascope_home / "cache" / "ecg-screen").iterdir())
    assert len(cached) == 2 and all(n.endswith(".npz") for n in cached)
    again = ds.make_dataset(split="train", use_cache=False, **SMALL)
    for a, b in zip((xt, yt, xv, yv), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = ds.make_dataset(split="train", use_cache=False, **{**SMALL, "seed": 4})
    assert not np.array_equal(other[0], xt)


def test_heldout_split_is_disjoint_and_styled(vitascope_home):
    xt, yt, _, _ = ds.make_dataset(split="train", **SMALL)
    x0, y0, xh, yh = ds.make_dataset(split="heldout", **SMALL)
    assert x0.shape == (0, 1, 64, 96) and y0.shape == (0,) and len(xh) == 8
    assert not rows(xh) & rows(xt)
    st = ds.heldout_styles(**SMALL)
    assert st.shape == (8,) and set(st) <= {"clean", "scanned", "photographed"}
    seeds = {part: {ds.record_seed(3, part, c, i) for c in range(4) for i in range(50)} for part in ds.PARTS}
    assert not seeds["train"] & seeds["val"] and not seeds["train"] & seeds["heldout"]


def test_duplicates_by_content_are_dropped():
    d = {"x": np.zeros((3, 2, 2), np.uint8), "y": np.array([0, 1, 2]), "style": np.array(["a", "b", "c"]),
         "sha256": np.array(["h1", "h2", "h1"])}
    out = ds._dedupe(d, {"h2"})
    assert out["y"].tolist() == [0] and out["sha256"].tolist() == ["h1"]


def test_bad_split_and_style():
    with pytest.raises(BadInput):
        ds.make_dataset(split="test", **SMALL)
    with pytest.raises(BadInput):
        ds.make_dataset(styles=("oil",), **SMALL)


def test_to_model_input_letterboxes_on_white():
    img = np.zeros((100, 400, 3), np.uint8)  # wide black page
    g = letterbox_gray(img, (160, 224))
    assert g.shape == (160, 224) and g.dtype == np.uint8
    assert (g[:50] == 255).all() and (g[-50:] == 255).all() and (g[60:100] == 0).all()  # 56 px band centred
    x = to_model_input(np.full((300, 200, 3), 255, np.uint8))
    assert x.shape == (1, *DEFAULT_SIZE) and x.dtype == np.float32 and np.isfinite(x).all()
    y = to_model_input(np.random.default_rng(0).integers(0, 256, (500, 700, 3), dtype=np.uint8), size=(96, 128))
    assert y.shape == (1, 96, 128) and abs(float(y.mean())) < 1e-3 and float(y.std()) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(BadInput):
        to_model_input(np.zeros((5, 5, 4), np.uint8))


def test_coloured_grid_fades_but_the_trace_stays():
    """Max-channel gray: red, pink, blue and green grid lines go near white; a black trace stays black; a gray
    (black-and-white print) grid stays gray."""
    img = np.full((64, 64, 3), 255, np.uint8)
    img[:, 10] = (238, 160, 190)   # pink major line
    img[:, 20] = (120, 150, 235)   # blue
    img[:, 30] = (140, 215, 140)   # green
    img[:, 40] = (160, 160, 160)   # bw grid
    img[32, :] = (0, 0, 0)         # the trace
    g = letterbox_gray(img, (64, 64))
    assert g[5, 10] >= 215 and g[5, 20] >= 215 and g[5, 30] >= 215
    assert g[5, 40] == 160 and (g[32] == 0).all()


def test_process_pool_generates_the_same_items_as_one_process():
    kw = dict(seed=5, part="val", n_per_class=16, size=(48, 64), styles=("clean", "photographed"),
              layouts=ds.DEFAULT_LAYOUTS)
    one, pool = ds._generate(workers=1, **kw), ds._generate(workers=2, **kw)
    assert one["x"].shape == (64, 48, 64)
    for k in one:
        assert np.array_equal(one[k], pool[k]), k


def test_stacks_are_normalised_in_chunks_like_single_images():
    from plugins.ecg.preprocess import normalise

    g = np.random.default_rng(0).integers(0, 256, (7, 1, 12, 20)).astype(np.uint8)
    whole = normalise(g, chunk=3)
    assert whole.dtype == np.float32 and whole.shape == g.shape
    for i in range(len(g)):
        assert np.allclose(whole[i, 0], normalise(g[i, 0]), atol=1e-6)
        assert abs(float(whole[i].mean())) < 1e-5 and abs(float(whole[i].std()) - 1) < 1e-4


def test_gray_is_the_max_over_channels():
    """The model sees max(R, G, B) (coloured grids fade, the dark trace stays): exactly, for uint8 and float pages."""
    rng = np.random.default_rng(3)
    page = rng.integers(0, 256, (110, 160, 3), dtype=np.uint8)
    assert np.array_equal(letterbox_gray(page, (110, 160)), page.max(axis=2))
    f = page.astype(np.float64) * 1.2 - 20.0
    assert np.array_equal(letterbox_gray(f, (110, 160)), np.clip(f, 0, 255).astype(np.uint8).max(axis=2))
