"""The synthetic re-ID generator: seeded (same seed, same pixels), identities distinct and sharing coarse bodies,
views of one identity differ, and the Market-1501 layout it writes reads back with the right ids and cameras."""

from __future__ import annotations

import numpy as np

from plugins.retrieval.layouts import read_market1501
from plugins.retrieval.synthetic import make_identities, make_split, render_object, write_market_layout


def test_seeded_and_distinct():
    a, ya, ca = make_split(5, 3, seed=11, size=48)
    b, _, _ = make_split(5, 3, seed=11, size=48)
    c, _, _ = make_split(5, 3, seed=12, size=48)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (15, 48, 48, 3) and ya.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert ca.tolist()[:3] == [0, 1, 2]
    assert not np.array_equal(a[0], a[1])  # two views of one identity differ


def test_identities_share_bodies_but_not_details():
    ids = make_identities(400, seed=3)
    assert len(set(ids)) == 400
    coarse = {(i.body, i.colour) for i in ids}
    assert len(coarse) <= 36  # many identities per coarse body: only the marks and stripes tell them apart
    same_body = [i for i in ids if (i.body, i.colour) == (ids[0].body, ids[0].colour)]
    assert len(same_body) >= 2
    img0, _ = render_object(same_body[0])
    img1, _ = render_object(same_body[1])
    changed = np.any(img0 != img1, axis=2).mean()
    assert 0 < changed < 0.15  # a small, local difference


def test_market_layout_round_trip(tmp_path):
    root = write_market_layout(tmp_path / "m", n_ids=4, seed=2, views=4)
    es = read_market1501(root)
    assert len(es.query) == 4 and len(es.gallery) == 12
    assert sorted(es.q_labels.tolist()) == [1, 2, 3, 4]
    assert set(es.g_cams.tolist()) == {0, 1, 2}
    assert es.exclude().sum() == 4  # each query's same-camera view (4th view, camera 0) is excluded
