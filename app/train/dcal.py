"""DCAL tiny ViT embedder (dual cross-attention learning): self-attention blocks, one global-local cross-attention
block whose queries are the top-R tokens of the attention rollout, and pair-wise cross-attention (training only,
weights shared with the self-attention blocks); triplet + ID cross-entropy with BNNeck, uncertainty-weighted."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DcalConfig:
    img_size: int = 64
    patch: int = 8
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    num_ids: int = 100
    glca: bool = True  # False: the SA-only twin
    pwca: bool = True
    top_r: float = 0.3  # fraction of patch tokens GLCA queries (re-ID setting)
    stem: str = "patch"  # "patch": one strided conv; "conv": stride-2 3x3 conv-BN-GELU layers (locality prior)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def tokens(self) -> int:
        return (self.img_size // self.patch) ** 2

    @property
    def embed_dim(self) -> int:
        return self.width * (2 if self.glca else 1)


class Attention(nn.Module):
    """Multi-head attention usable as self-attention (SA), pair-wise cross-attention (extra keys/values from a
    second image, same weights) and global-local cross-attention (queries from a subset of tokens)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: torch.Tensor, pair: torch.Tensor | None = None,
                query_idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, N, D). `pair` (B, N, D): a second image's tokens whose keys/values join x's (PWCA).
        `query_idx` (B, R): only those tokens of x ask (GLCA). Returns (out (B, Nq, D), attention (B, H, Nq, Nk))."""
        b, n, d = x.shape
        q, k, v = self._split(x)
        if pair is not None:
            _, k2, v2 = self._split(pair)
            k, v = torch.cat([k, k2], dim=2), torch.cat([v, v2], dim=2)
        if query_idx is not None:
            idx = query_idx[:, None, :, None].expand(-1, self.heads, -1, q.shape[-1])
            q = torch.gather(q, 2, idx)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, q.shape[2], d)
        return self.proj(out), attn


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, pair: torch.Tensor | None = None,
                query_idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm1(x)
        a, attn = self.attn(h, None if pair is None else self.norm1(pair), query_idx)
        if query_idx is not None:  # the residual stream of the selected tokens only
            x = torch.gather(x, 1, query_idx[:, :, None].expand(-1, -1, x.shape[-1]))
        x = x + a
        return x + self.mlp(self.norm2(x)), attn


def conv_stem(width: int, patch: int) -> nn.Sequential:
    """log2(patch) stride-2 3x3 conv-BN-GELU layers ending at `width` channels: one token per patch."""
    n = int(round(math.log2(patch)))
    if 2 ** n != patch:
        raise ValueError(f"conv stem needs a power-of-two patch, got {patch}")
    chans = [3] + [max(16, width >> (n - 1 - i)) for i in range(n)]
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1, bias=False), nn.BatchNorm2d(chans[i + 1])]
        if i < n - 1:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def attention_rollout(attns: list[torch.Tensor]) -> torch.Tensor:
    """Ŝ = S̄_L ⋯ S̄_1 with S̄ = 0.5·S + 0.5·I (heads averaged): (B, N, N); each row sums to 1."""
    roll = None
    for a in attns:
        s = a.mean(dim=1)
        s = 0.5 * s + 0.5 * torch.eye(s.shape[-1], device=s.device, dtype=s.dtype)
        roll = s if roll is None else s @ roll
    return roll


class BNNeck(nn.Module):
    """Feature → BatchNorm (no bias shift learned) → bias-free ID classifier."""

    def __init__(self, dim: int, num_ids: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_ids, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.bn(f)
        return b, self.classifier(b)


class DcalViT(nn.Module):
    def __init__(self, cfg: DcalConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.patch_embed = conv_stem(d, cfg.patch) if cfg.stem == "conv" else nn.Conv2d(3, d, cfg.patch, cfg.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.tokens + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        self.neck = BNNeck(d, cfg.num_ids)
        if cfg.glca:
            self.glca = Block(d, cfg.heads, cfg.mlp_ratio)  # its own weights
            self.glca_norm = nn.LayerNorm(d)
            self.glca_neck = BNNeck(d, cfg.num_ids)
        # uncertainty weights of the SA, GLCA and PWCA losses
        self.loss_w = nn.Parameter(torch.zeros(3))
        self.apply(_init)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed

    def sa(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """SA stack: final tokens, each block's input, each block's attention."""
        h, inputs, attns = self.tokens(x), [], []
        for blk in self.blocks:
            inputs.append(h)
            h, a = blk(h)
            attns.append(a)
        return h, inputs, attns

    def glca_branch(self, h: torch.Tensor, attns: list[torch.Tensor]) -> torch.Tensor:
        """CLS + the top-R patch tokens by accumulated attention ask all tokens of the last SA output."""
        roll = attention_rollout(attns)[:, 0, 1:]  # CLS row over patch tokens
        r = max(1, int(math.ceil(self.cfg.top_r * self.cfg.tokens)))
        top = torch.topk(roll, r, dim=-1).indices + 1
        idx = torch.cat([torch.zeros_like(top[:, :1]), top], dim=1)
        g, _ = self.glca(h, query_idx=idx)
        return self.glca_norm(g[:, 0])

    def pwca_branch(self, inputs: list[torch.Tensor], partner: torch.Tensor) -> torch.Tensor:
        """The SA blocks (same weights) where each image's keys/values are joined by its partner image's
        tokens at the same depth (from the SA pass); training only."""
        h = inputs[0]
        for blk, hin in zip(self.blocks, inputs, strict=True):
            h, _ = blk(h, pair=hin[partner])
        return self.norm(h[:, 0])

    def forward_train(self, x: torch.Tensor, partner: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        h, inputs, attns = self.sa(x)
        f_sa = self.norm(h[:, 0])
        out = {"f_sa": f_sa}
        out["bn_sa"], out["logits_sa"] = self.neck(f_sa)
        if self.cfg.glca:
            f_gl = self.glca_branch(h, attns)
            out["f_glca"] = f_gl
            out["bn_glca"], out["logits_glca"] = self.glca_neck(f_gl)
        if self.cfg.pwca and partner is not None:
            f_pw = self.pwca_branch(inputs, partner)
            out["f_pwca"] = f_pw
            _, out["logits_pwca"] = self.neck(f_pw)
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: BNNeck features of SA (and GLCA), each unit length, concatenated, unit length."""
        h, _, attns = self.sa(x)
        parts = [F.normalize(self.neck.bn(self.norm(h[:, 0])), dim=-1)]
        if self.cfg.glca:
            parts.append(F.normalize(self.glca_neck.bn(self.glca_branch(h, attns)), dim=-1))
        return F.normalize(torch.cat(parts, dim=-1), dim=-1)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class Embedder(nn.Module):
    """What is exported: image (B, 3, H, W) normalised → L2-normalised embedding (B, E)."""

    def __init__(self, model: DcalViT) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.embed(image)


def batch_hard_triplet(f: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss on L2-normalised features (euclidean distance)."""
    f = F.normalize(f, dim=-1)
    d = torch.cdist(f, f)
    same = labels[:, None] == labels[None, :]
    hardest_pos = (d * same.float()).max(dim=1).values
    hardest_neg = (d + same.float() * 1e4).min(dim=1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def dcal_loss(model: DcalViT, out: dict[str, torch.Tensor], labels: torch.Tensor,
              smoothing: float = 0.1, margin: float = 0.3) -> tuple[torch.Tensor, dict[str, float]]:
    """ID cross-entropy (BNNeck logits) + batch-hard triplet per branch; the branches' losses are combined with
    learnable uncertainty weights: ½ Σ (e^-w_i L_i + w_i)."""
    parts: dict[str, torch.Tensor] = {}
    parts["sa"] = (F.cross_entropy(out["logits_sa"], labels, label_smoothing=smoothing)
                   + batch_hard_triplet(out["f_sa"], labels, margin))
    if "logits_glca" in out:
        parts["glca"] = (F.cross_entropy(out["logits_glca"], labels, label_smoothing=smoothing)
                         + batch_hard_triplet(out["f_glca"], labels, margin))
    if "logits_pwca" in out:
        parts["pwca"] = F.cross_entropy(out["logits_pwca"], labels, label_smoothing=smoothing)
    if len(parts) == 1:
        return parts["sa"], {"loss_sa": float(parts["sa"].detach())}
    w = model.loss_w
    slot = {"sa": 0, "glca": 1, "pwca": 2}
    total = 0.5 * sum(torch.exp(-w[slot[k]]) * v + w[slot[k]] for k, v in parts.items())
    return total, {f"loss_{k}": float(v.detach()) for k, v in parts.items()}
