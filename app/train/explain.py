"""Attention rollout (Abnar & Zuidema 2020) for the ViT family: a wrapper that returns the logits and a per-patch
relevance map, exported to `rollout.onnx` beside a model so the viewer can show where the model looked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.core import runtime
from app.core.card import sha256_file
from app.core.errors import JobError

from .arch.vit import Block, VisionTransformer
from .export import PARITY_ATOL, _onnx_export, export_errors

ROLLOUT_FILE = "rollout.onnx"


def _block_with_attention(block: Block, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The block's forward with the attention probabilities made explicit: (output, head-mean attention (B,N,N))."""
    attn = block.attn
    b, n, c = x.shape
    h = block.norm1(x)
    qkv = attn.qkv(h).reshape(b, n, 3, attn.heads, c // attn.heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    probs = torch.softmax((q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5), dim=-1)
    y = (probs @ v).transpose(1, 2).reshape(b, n, c)
    x = x + attn.proj(y)
    x = x + block.mlp(block.norm2(x))
    return x, probs.mean(dim=1)


class AttentionRollout(nn.Module):
    """(B, C, H, W) → (logits (B, K), rollout (B, gh, gw)): the product over layers of 0.5·A + 0.5·I (A the
    head-mean attention, rows renormalised), read from the CLS row (or averaged over tokens for mean pooling),
    scaled to [0, 1] per image. The logits equal the wrapped model's."""

    def __init__(self, model: VisionTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        t = m.patch_embed(x)
        gh, gw = t.shape[-2], t.shape[-1]
        t = t.flatten(2).transpose(1, 2) + m._pos_embed(gh, gw)
        if m.cls_token is not None:
            t = torch.cat([m.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        n = t.shape[1]
        eye = torch.eye(n, dtype=t.dtype, device=t.device).unsqueeze(0)
        roll = eye.expand(t.shape[0], n, n)
        for block in m.blocks:
            t, a = _block_with_attention(block, t)
            a = 0.5 * a + 0.5 * eye
            a = a / a.sum(dim=-1, keepdim=True)
            roll = a @ roll
        logits = m.forward_head(m.norm(t))
        p = m.num_prefix
        rel = roll[:, 0, p:] if p else roll.mean(dim=1)
        rel = rel - rel.amin(dim=1, keepdim=True)
        rel = rel / rel.amax(dim=1, keepdim=True).clamp_min(1e-12)
        return logits, rel.reshape(-1, gh, gw)


def rollout(model: VisionTransformer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Convenience: (logits, relevance map) for a batch, in eval mode, without gradients."""
    with torch.no_grad():
        return AttentionRollout(model.eval())(x)


def upsample(rel: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (gh, gw) relevance map → (height, width) float32 in [0, 1], bilinear (for overlays)."""
    t = torch.from_numpy(np.ascontiguousarray(rel, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def export_rollout(model: VisionTransformer, example: torch.Tensor, out_dir: str | Path,
                   atol: float = PARITY_ATOL) -> dict[str, Any]:
    """Write out_dir/rollout.onnx (inputs "image"; outputs "logits", "rollout"; free batch, height, width), check
    ORT against torch and return the card's `[explain]` table (file, sha256, method, parity)."""
    out_dir = Path(out_dir)
    path = out_dir / ROLLOUT_FILE
    tmp = out_dir / (ROLLOUT_FILE + ".tmp")
    wrapper = AttentionRollout(model.eval()).eval()
    previous = model.dynamic_img_size
    model.dynamic_img_size = True
    example = example.detach().float()
    if example.shape[0] < 2:
        example = example.repeat(2, 1, 1, 1)
    try:
        with export_errors("rollout export", out_dir, ROLLOUT_FILE):
            _onnx_export(wrapper, example, tmp, "image", ["logits", "rollout"], dynamic_hw=True, opset=None)
            tmp.replace(path)
            sess = runtime.create_session(path, threads=2, warmup=False)
            worst = 0.0
            for b in (1, 3):
                x = torch.randn(b, *example.shape[1:], generator=torch.Generator().manual_seed(b))
                with torch.no_grad():
                    want = [t.numpy() for t in wrapper(x)]
                got = sess.run(None, {"image": x.numpy()})
                worst = max(worst, *(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True)))
            if worst > atol:
                raise JobError(f"rollout export: ORT differs from torch by {worst:.3g} (> {atol})")
    finally:
        model.dynamic_img_size = previous
        tmp.unlink(missing_ok=True)
    return {"file": ROLLOUT_FILE, "sha256": sha256_file(path), "method": "attention rollout (Abnar & Zuidema 2020)",
            "parity_max_abs_diff": worst}
