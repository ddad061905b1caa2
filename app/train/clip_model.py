"""A CLIP model in open_clip's layout and parameter names: a ViT image tower and a causal text transformer (pre-LN,
GELU or QuickGELU), class-token and end-of-text pooling, projection matrices and a learned logit scale."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClipConfig:
    embed_dim: int = 512
    image_size: int = 224
    patch_size: int = 16
    vision_width: int = 256
    vision_layers: int = 10
    vision_heads: int = 4
    vision_mlp: int = 1024
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 256
    text_heads: int = 4
    text_layers: int = 3
    text_mlp: int = 1024
    act: str = "gelu"  # "gelu" | "quick_gelu"

    def to_dict(self) -> dict:
        return asdict(self)


TINYCLIP_8M_16 = ClipConfig()  # TinyCLIP-ViT-8M-16-Text-3M


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameter names (in_proj_*, out_proj)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, w = x.shape
        h = self.heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).reshape(b, n, 3, h, w // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q * (1.0 / math.sqrt(w // h))) @ k.transpose(-2, -1)
        if mask is not None:
            att = att + mask
        out = att.softmax(dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, n, w))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp: int, act: str) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, mlp)),
                                              ("gelu", QuickGELU() if act == "quick_gelu" else nn.GELU()),
                                              ("c_proj", nn.Linear(mlp, width))]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp: int, act: str) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp, act) for _ in range(layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        w, p = cfg.vision_width, cfg.patch_size
        if cfg.image_size % p:
            raise ValueError(f"image size {cfg.image_size} is not a multiple of the patch size {p}")
        scale = w ** -0.5
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(w))
        self.positional_embedding = nn.Parameter(scale * torch.randn((cfg.image_size // p) ** 2 + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads, cfg.vision_mlp, cfg.act)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(scale * torch.randn(w, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [B, grid², W]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """encode_image: float [B,3,S,S] → [B,E]; encode_text: int64 ids [B,ctx] → [B,E] (not normalised)."""

    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTransformer(cfg)
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads, cfg.text_mlp, cfg.act)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width))
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        mask = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", mask, persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=cfg.text_width ** -0.5)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        n = text.shape[1]
        x = self.token_embedding(text) + self.positional_embedding[:n]
        x = self.ln_final(self.transformer(x, self.attn_mask[:n, :n]))
        eot = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]  # the end-of-text token has the largest id
        return eot @ self.text_projection

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        img = F.normalize(self.encode_image(image), dim=-1)
        txt = F.normalize(self.encode_text(text), dim=-1)
        return img, txt, self.logit_scale.exp()


class ImageTower(nn.Module):
    """The image encoder alone, L2-normalised output (what the ONNX image encoder computes)."""

    def __init__(self, clip: CLIP) -> None:
        super().__init__()
        self.visual = clip.visual

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(image), dim=-1)


class TextTower(nn.Module):
    """The text encoder alone, L2-normalised output (what the ONNX text encoder computes)."""

    def __init__(self, clip: CLIP) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.clip.encode_text(text), dim=-1)


def config_from_state_dict(sd: dict[str, torch.Tensor], act: str = "gelu", head_width: int = 64,
                           vision_heads: int | None = None, text_heads: int | None = None) -> ClipConfig:
    """Read the architecture off an open_clip-layout state dict (heads = width / head_width unless given)."""
    conv = sd["visual.conv1.weight"]
    vw, patch = int(conv.shape[0]), int(conv.shape[-1])
    grid = round(math.sqrt(sd["visual.positional_embedding"].shape[0] - 1))
    tw = int(sd["token_embedding.weight"].shape[1])

    def layers(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})

    return ClipConfig(embed_dim=int(sd["visual.proj"].shape[1]), image_size=grid * patch, patch_size=patch,
                      vision_width=vw, vision_layers=layers("visual.transformer.resblocks."),
                      vision_heads=vision_heads or max(1, vw // head_width),
                      vision_mlp=int(sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
                      context_length=int(sd["positional_embedding"].shape[0]),
                      vocab_size=int(sd["token_embedding.weight"].shape[0]), text_width=tw,
                      text_heads=text_heads or max(1, tw // head_width), text_layers=layers("transformer.resblocks."),
                      text_mlp=int(sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]), act=act)
