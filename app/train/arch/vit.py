"""A tiny Vision Transformer family written by hand (pre-LN blocks, SDPA attention, interpolated position
embeddings) that exports to ONNX with free batch/height/width, plus a registry of named configs ("tvit", ...)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

POOLS = ("cls", "mean")
HEADS = ("classification", "regression", "metric")  # the training objectives (app.train.objectives)
STEMS = ("patch", "conv", "cnn")


@dataclass(frozen=True)
class ViTConfig:
    """Architecture hyper-parameters. `mlp_dim` wins over `mlp_ratio` when set."""

    img_size: int = 64
    patch: int = 8
    in_chans: int = 3
    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    mlp_dim: int | None = None
    pool: str = "cls"
    num_outputs: int = 10
    head: str = "classification"
    dropout: float = 0.0
    pos_interp: str = "bicubic"
    stem: str = "patch"  # "patch": Conv2d(k=s=patch); "conv": stride-2 3×3 convs (Xiao et al. 2021); "cnn": 3×3
    #                      conv + max-pool stages (thin-line images such as ECG printouts)

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.img_size % self.patch:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch {self.patch}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if self.stem in ("conv", "cnn") and (self.patch < 2 or self.patch & (self.patch - 1)):
            raise ValueError(f"a conv stem needs a power-of-two patch, got {self.patch}")
        if self.pos_interp not in ("bicubic", "bilinear"):
            raise ValueError(f"pos_interp must be 'bicubic' or 'bilinear', got {self.pos_interp!r}")
        if min(self.img_size, self.patch, self.in_chans, self.width, self.depth, self.heads, self.num_outputs) < 1:
            raise ValueError("sizes, depth, heads and num_outputs must be positive")

    @property
    def hidden(self) -> int:
        return int(self.mlp_dim) if self.mlp_dim else int(round(self.width * self.mlp_ratio))

    @property
    def grid(self) -> int:
        return self.img_size // self.patch

    def to_dict(self) -> dict[str, Any]:
        """Plain dict without None values (TOML- and checkpoint-friendly)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViTConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ViT config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def _stem_layers(in_chans: int, width: int, patch: int, min_channels: int,
                 stage: Callable[[int, int], list[nn.Module]]) -> list[nn.Module]:
    """log2(patch) halving stages `stage(c_in, c_out)`, channels doubling up to `width` (at least `min_channels`),
    then a 1×1 conv to `width`."""
    layers: list[nn.Module] = []
    n = patch.bit_length() - 1
    c_in = in_chans
    for i in range(n):
        c_out = max(min_channels, width >> (n - 1 - i))
        layers += stage(c_in, c_out)
        c_in = c_out
    layers.append(nn.Conv2d(c_in, width, 1))
    return layers


class ConvStem(nn.Sequential):
    """log2(patch) stride-2 3×3 Conv-BN-ReLU layers, then a 1×1 conv to `width`: the same token grid as a
    patch embedding, with the convolutional inductive bias that makes small ViTs train fast and stably."""

    def __init__(self, in_chans: int, width: int, patch: int) -> None:
        super().__init__(*_stem_layers(in_chans, width, patch, 8, lambda c_in, c_out: [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]))


class ConvPoolStem(nn.Sequential):
    """log2(patch) stages of 3×3 Conv-BN-ReLU + 2×2 max-pool, then a 1×1 conv to `width`. Max-pooling keeps
    1-px strokes (ECG traces on a grid) that strided convolutions and linear patches alias away: on ECG printouts
    a patch or strided stem left the ViT at chance for 300 steps where this stem learned."""

    def __init__(self, in_chans: int, width: int, patch: int) -> None:
        super().__init__(*_stem_layers(in_chans, width, patch, 16, lambda c_in, c_out: [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.MaxPool2d(2)]))


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and F.scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = dropout
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT: Conv2d patch embedding, optional CLS token, learned position embeddings, pre-LN blocks, head.

    Input (B, C, H, W) float32; H and W may differ from `config.img_size` (multiples of `patch`): the position
    embeddings are then resampled. Set `dynamic_img_size = True` (export does) to always resample so that a
    traced graph keeps H and W free."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.dynamic_img_size = False
        c = config
        if c.stem == "conv":
            self.patch_embed: nn.Module = ConvStem(c.in_chans, c.width, c.patch)
        elif c.stem == "cnn":
            self.patch_embed = ConvPoolStem(c.in_chans, c.width, c.patch)
        else:
            self.patch_embed = nn.Conv2d(c.in_chans, c.width, kernel_size=c.patch, stride=c.patch)
        self.num_prefix = 1 if c.pool == "cls" else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.width)) if self.num_prefix else None
        self.pos_embed = nn.Parameter(torch.zeros(1, c.grid * c.grid, c.width))
        self.pos_drop = nn.Dropout(c.dropout)
        self.blocks = nn.Sequential(*[Block(c.width, c.heads, c.hidden, c.dropout) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.width, eps=1e-6)
        self.head_drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.width, c.num_outputs)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.patch_embed.modules():
            if isinstance(m, nn.Conv2d):
                w = m.weight
                nn.init.trunc_normal_(w, std=math.sqrt(1.0 / (w.shape[1] * w.shape[2] * w.shape[3])))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.weight)

    def _pos_embed(self, gh: int, gw: int) -> torch.Tensor:
        """Position embeddings for a gh × gw patch grid, resampled from the config's grid when needed."""
        g = self.config.grid
        exporting = self.dynamic_img_size or torch.compiler.is_exporting()
        if not exporting and gh == g and gw == g:
            return self.pos_embed
        pos = self.pos_embed.reshape(1, g, g, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(gh, gw), mode=self.config.pos_interp, align_corners=False)
        return pos.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → normalised tokens (B, num_prefix + H/p · W/p, width)."""
        x = self.patch_embed(x)
        gh, gw = x.shape[-2], x.shape[-1]
        x = x.flatten(2).transpose(1, 2) + self._pos_embed(gh, gw)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(self.pos_drop(x))
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the tokens (CLS or mean of patch tokens), then the linear head unless `pre_logits`."""
        x = x[:, 0] if self.config.pool == "cls" else x[:, self.num_prefix:].mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_CONFIGS: dict[str, ViTConfig] = {
    # Cuenat et al. 2022: 128 px, patch 16, 12 × width 128, 8 heads, MLP 1024, CLS, 1 regression output.
    "tvit": ViTConfig(img_size=128, patch=16, width=128, depth=12, heads=8, mlp_dim=1024, pool="cls",
                      num_outputs=1, head="regression", dropout=0.1),
    # Small members for tests, demos and quick experiments (64 px, patch 8 → 64 tokens).
    "vit-micro": ViTConfig(img_size=64, patch=8, width=64, depth=2, heads=2, mlp_ratio=2.0, num_outputs=4),
    "vit-mini": ViTConfig(img_size=64, patch=8, width=96, depth=4, heads=3, mlp_ratio=2.0, num_outputs=4),
    "vit-small64": ViTConfig(img_size=64, patch=8, width=128, depth=6, heads=4, mlp_ratio=3.0, num_outputs=4),
    # DeiT-Ti/16 geometry at 224 px, as a reference point.
    "vit-tiny": ViTConfig(img_size=224, patch=16, width=192, depth=12, heads=3, mlp_ratio=4.0, num_outputs=1000),
}


def register_config(name: str, config: ViTConfig) -> None:
    """Add (or replace) a named config."""
    _CONFIGS[name] = config


def list_configs() -> list[str]:
    return sorted(_CONFIGS)


def get_config(name: str, **overrides: Any) -> ViTConfig:
    """The named config with `overrides` applied; KeyError/ValueError name the problem."""
    if name not in _CONFIGS:
        raise KeyError(f"unknown model config {name!r} (known: {', '.join(list_configs())})")
    known = {f.name for f in fields(ViTConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown ViT config field(s): {', '.join(sorted(unknown))}")
    return replace(_CONFIGS[name], **overrides)


def create_model(name_or_config: str | ViTConfig, **overrides: Any) -> VisionTransformer:
    """Build a VisionTransformer from a registry name (plus overrides) or a ViTConfig."""
    if isinstance(name_or_config, ViTConfig):
        cfg = replace(name_or_config, **overrides) if overrides else name_or_config
    else:
        cfg = get_config(name_or_config, **overrides)
    return VisionTransformer(cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
