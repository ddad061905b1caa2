"""Temperature scaling, ECE, the Mahalanobis OOD score and near-duplicate-aware folds, on data with known answers."""

from __future__ import annotations

import numpy as np

from app.core.calibration import expected_calibration_error, fit_temperature, softmax
from app.core.folds import near_duplicate_groups, stratified_group_folds
from app.core.ood import MahalanobisStats, auroc, fit_mahalanobis


def _overconfident(n: int = 4000, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true temperature is 3: labels drawn from softmax(z / 3), model states softmax(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, k))
    p = softmax(z, 3.0)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z, y


def test_temperature_recovers_the_true_one_and_lowers_ece():
    z, y = _overconfident()
    t = fit_temperature(z, y)
    assert 2.6 < t < 3.4
    before = expected_calibration_error(softmax(z), y)
    after = expected_calibration_error(softmax(z, t), y)
    assert before > 0.1 and after < 0.03


def test_ece_is_zero_for_perfectly_calibrated_certain_answers_and_one_for_certain_wrong_ones():
    y = np.array([0, 1, 2, 3])
    assert expected_calibration_error(np.eye(4), y) == 0.0
    assert expected_calibration_error(np.eye(4)[[1, 2, 3, 0]], y) == 1.0


def test_mahalanobis_scores_far_points_higher_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    means = rng.normal(0, 5, (3, 8))
    y = rng.integers(0, 3, 600)
    x = means[y] + rng.normal(0, 1, (600, 8))
    stats = fit_mahalanobis(x, y)
    inl = stats.score(means[rng.integers(0, 3, 200)] + rng.normal(0, 1, (200, 8)))
    out = stats.score(rng.normal(0, 1, (200, 8)) * 4 + 20)
    assert auroc(inl, out) > 0.99
    assert np.median(inl) < 4.0  # ~sqrt(8) for in-distribution Gaussian points
    stats.threshold = 5.0
    stats.save(tmp_path / "ood.npz")
    back = MahalanobisStats.load(tmp_path / "ood.npz")
    assert back.threshold == 5.0
    np.testing.assert_allclose(back.score(x[:10]), stats.score(x[:10]), rtol=1e-4)


def test_auroc_matches_hand_computed_values():
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([0.0, 2.0]), np.array([1.0, 3.0])) == 0.75
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5


def test_near_duplicates_share_a_group_and_never_straddle_folds():
    rng = np.random.default_rng(2)
    template = np.full((64, 88), 255, np.uint8)
    template[::8] = 200  # a shared grid every image has
    imgs = []
    for _ in range(30):
        im = template.copy()
        rows = rng.integers(5, 60, 4)
        for r in rows:
            im[r, rng.integers(0, 40):rng.integers(48, 88)] = 0
        imgs.append(im)
    dup = imgs[3].copy()
    dup[rng.integers(0, 64, 20), rng.integers(0, 88, 20)] = 128  # the same trace re-scanned with specks
    imgs.append(dup)
    groups = near_duplicate_groups(np.stack(imgs))
    assert groups[3] == groups[30]
    assert len(np.unique(groups)) == 30
    labels = np.array([i % 3 for i in range(30)] + [0])
    folds = stratified_group_folds(labels, groups, [f"h{i}" for i in range(31)], k=5, seed=0)
    assert folds[3] == folds[30]
    for c in range(3):
        counts = np.bincount(folds[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 2
    again = stratified_group_folds(labels, groups, [f"h{i}" for i in range(31)], k=5, seed=0)
    np.testing.assert_array_equal(folds, again)


def test_crossfit_ece_is_small_when_one_temperature_fits_every_fold():
    from app.core.calibration import crossfit_ece

    z, y = _overconfident(n=3000)
    folds = np.arange(len(y)) % 5
    assert crossfit_ece(z, y, folds) < 0.04
    assert crossfit_ece(z, y, folds) >= expected_calibration_error(softmax(z, fit_temperature(z, y)), y) - 0.01
