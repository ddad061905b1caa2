"""Fine-tuning a classifier on a small labelled set of real images (e.g. a hospital's own ECG scans): class-balanced
batches, mild geometric and photometric jitter, replay of the original (synthetic) training data so the model keeps
what it knew, and the pooled features that calibration and out-of-distribution scoring need."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.core.errors import BadInput
from app.core.jobs import CancelToken

from .finetune import FineTuned
from .loop import cancel_stop, run_steps


def jitter(x: torch.Tensor, g: torch.Generator, rotate: float = 0.035, scale: float = 0.06, shift: float = 0.04,
           contrast: float = 0.15, noise: float = 0.05) -> torch.Tensor:
    """Per-sample small rotation (rad), scale, shift (fraction of the image), contrast and Gaussian noise of a
    standardised (B, C, H, W) batch; the border is filled with each image's background (its maximum, the paper)."""
    n = x.shape[0]

    def u(a: float) -> torch.Tensor:
        return (torch.rand(n, generator=g) * 2 - 1) * a

    ang, sc = u(rotate), 1 + u(scale)
    tx, ty = u(shift), u(shift)
    theta = torch.stack([torch.stack([sc * torch.cos(ang), -sc * torch.sin(ang), tx], 1),
                         torch.stack([sc * torch.sin(ang), sc * torch.cos(ang), ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    bg = x.amax(dim=(2, 3), keepdim=True)
    out = F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg
    out = out * (1 + u(contrast).view(n, 1, 1, 1))
    return out + torch.randn(out.shape, generator=g) * noise * torch.rand(n, 1, 1, 1, generator=g)


class WithFeatures(nn.Module):
    """A ViT classifier that also returns its pooled features: forward(x) → (logits, features)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = getattr(model, "config", None)

    @property
    def dynamic_img_size(self) -> bool:
        return bool(self.model.dynamic_img_size)

    @dynamic_img_size.setter
    def dynamic_img_size(self, value: bool) -> None:
        self.model.dynamic_img_size = value

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model.head(f), f


def logits_and_features(model: nn.Module, x: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, K), pooled features (N, D)) of NCHW float32 `x`, in eval mode."""
    wf = WithFeatures(model).eval()
    lo, fe = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            a, b = wf(torch.from_numpy(np.ascontiguousarray(x[i:i + batch], np.float32)))
            lo.append(a.numpy())
            fe.append(b.numpy())
    k = int(getattr(getattr(model, "config", None), "num_outputs", 0) or 0)
    if not lo:
        return np.zeros((0, k), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(lo), np.concatenate(fe)


def _freeze_stem(model: nn.Module, stages: int) -> list[nn.Module]:
    """Turn off gradients of the first `stages` conv-BN-ReLU(-pool) stages of the patch-embedding stem; return them."""
    stem = getattr(model, "patch_embed", None)
    if stages <= 0 or not isinstance(stem, nn.Sequential):
        return []
    boundary = nn.MaxPool2d if any(isinstance(m, nn.MaxPool2d) for m in stem) else nn.ReLU  # a stage's last layer
    mods: list[nn.Module] = []
    seen = 0
    for m in stem:
        if seen >= stages:
            break
        mods.append(m)
        seen += isinstance(m, boundary)
    for m in mods:
        for q in m.parameters():
            q.requires_grad_(False)
    return mods


def finetune_classifier(ft: FineTuned, x: np.ndarray, y: np.ndarray, steps: int, *, lr: float = 5e-4,
                        batch_size: int = 16, seed: int = 0, label_smoothing: float = 0.1,
                        replay: tuple[np.ndarray, np.ndarray] | None = None, replay_fraction: float = 0.25,
                        warmup: int = 20, freeze_stem_stages: int = 0,
                        on_step: Callable[[int, float], None] | None = None,
                        cancel: CancelToken | None = None) -> FineTuned:
    """AdamW with a cosine schedule on class-balanced, jittered batches of (x, y); a `replay_fraction` of every batch
    comes from `replay` (the data the model was trained on). `freeze_stem_stages` keeps the first stages of a conv
    stem fixed (edge and stroke detectors that transfer; their full-resolution backward is most of a step's cost).
    Raises Cancelled (nothing written) when cancelled."""
    if len(x) == 0 or len(x) != len(y):
        raise BadInput(f"fine-tuning needs labelled images: got {len(x)} images and {len(y)} labels")
    y = np.asarray(y, np.int64)
    k = int(ft.config.num_outputs)
    if y.min() < 0 or y.max() >= k:
        raise BadInput(f"labels must be class indices 0..{k - 1}, got {int(y.min())}..{int(y.max())}")
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = 1.0 / counts[y]
    w /= w.sum()
    n_replay = int(round(batch_size * replay_fraction)) if replay is not None and len(replay[0]) else 0
    n_real = batch_size - n_replay
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    yt = torch.from_numpy(y)
    model = ft.model
    frozen = _freeze_stem(model, freeze_stem_stages)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=lr, weight_decay=0.05,
                            foreach=True)
    model.train()
    for m in frozen:
        m.eval()  # frozen batch-norm statistics stay as trained
    t0 = time.perf_counter()

    def batch_loss(step: int) -> torch.Tensor:
        idx = rng.choice(len(y), n_real, p=w)
        xb, yb = xt[idx], yt[idx]
        if n_replay:
            j = rng.integers(0, len(replay[0]), n_replay)
            xb = torch.cat([xb, torch.from_numpy(np.ascontiguousarray(replay[0][j], np.float32))])
            yb = torch.cat([yb, torch.from_numpy(np.asarray(replay[1][j], np.int64))])
        return F.cross_entropy(model(jitter(xb, g)), yb, label_smoothing=label_smoothing)

    def after(done: int, loss: torch.Tensor) -> None:
        if on_step:
            on_step(done, float(loss.detach()))

    run_steps(opt, list(model.parameters()), range(steps), batch_loss,
              lr=lambda step: lr * 0.5 * (1 + np.cos(np.pi * step / steps)) * min(1.0, (step + 1) / max(1, warmup)),
              grad_clip=1.0, stop=cancel_stop(cancel), after=after)
    for q in model.parameters():
        q.requires_grad_(True)
    model.eval()
    ft.seconds += time.perf_counter() - t0
    ft.steps += steps
    return ft
