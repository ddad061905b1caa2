"""Regression fine-tuning (holography calibration): the model's own augmentations, and validation that keeps the
best weights, the starting ones included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.train.arch.vit import VisionTransformer, ViTConfig
from app.train.finetune import FineTuned, finetune_regression


def _tuned(spec: dict | None) -> FineTuned:
    torch.manual_seed(0)
    cfg = ViTConfig(img_size=16, patch=8, in_chans=2, width=16, depth=1, heads=2, num_outputs=1, head="regression")
    ck = {"format": "vitascope", "version": 1}
    if spec is not None:
        ck["spec"] = spec
    return FineTuned(VisionTransformer(cfg), cfg, ck)


def _data(n: int, target: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 16, 16)).astype(np.float32), np.full(n, target, np.float32)


def test_augmentations_come_from_the_checkpoints_spec():
    assert _tuned({"augment": ["vflip", "vroll"]}).augment == ["vflip", "vroll"]  # qmap: never a |k|² flip
    assert _tuned({"augment": []}).augment == []
    assert _tuned(None).augment == ["hflip", "vflip"]


def test_validation_keeps_the_best_weights_including_the_start():
    x, y = _data(64, 3.0, 1)
    ft = _tuned({"augment": ["vflip"]})
    start = {k: v.clone() for k, v in ft.model.state_dict().items()}
    xv, _ = _data(16, 0.0, 2)

    def far_from_three() -> float:  # prefers the untrained output (near 0) over one fitted to 3
        with torch.no_grad():
            return float(ft.model(torch.from_numpy(xv))[:, 0].abs().mean())

    finetune_regression(ft, x, y, 40, lr=3e-3, validate=far_from_three, validate_every=10)
    assert ft.kept_step == 0 and [s for s, _ in ft.validation] == [0, 10, 20, 30, 40]
    for k, v in ft.model.state_dict().items():
        assert torch.equal(v, start[k])

    ft2 = _tuned({"augment": ["vflip"]})

    def close_to_three() -> float:
        with torch.no_grad():
            return float((ft2.model(torch.from_numpy(xv))[:, 0] - 3).abs().mean())

    finetune_regression(ft2, x, y, 40, lr=3e-3, validate=close_to_three, validate_every=10)
    assert ft2.kept_step and ft2.kept_step > 0
    assert close_to_three() == pytest.approx(min(v for _, v in ft2.validation))
