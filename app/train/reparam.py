"""Exact depth reparameterization (docs/methods.md): a student of depth L whose blocks carry K parallel pre-LN branches,
joined at the entries of the nonlinear parts by a λ schedule; `reparameterize()` at λ = 1 returns a plain ViT.

Reading (Q/K/V join): every branch of a block reads the same input x;
x1 = x + Σ_k MHSA_k(LN1_k(x)) with Q/K/V of each head joined across branches, then
y = x1 + Σ_k FFN_k(LN2_k(x1)) with the GELU input joined. The join is z_k(λ) = (1-λ) z_k + λ Σ_j z_j (J = sum).
At λ = 1 every branch sees the same Q/K/V and GELU input, so the block folds into one plain block: the LN affines
go into qkv / fc1 (the merged LNs become affine-free, weight 1 and bias 0), first-stage weights and biases are
summed, and proj / fc2 are summed. Exact in eval mode (no dropout) with the same LN eps in every branch.

Initialisation (documented choice): branch k of student block l starts from teacher layer l·K + k (K consecutive
layers per student block); patch embedding, CLS token, position embeddings, final norm and head are copied.
At λ = 0 a student block is the *parallel* sum of K consecutive teacher blocks (not their composition), so the
student starts near, not at, the teacher; training (distillation) with λ ramping to 1 closes the gap."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .arch.vit import Block, VisionTransformer, ViTConfig

log = logging.getLogger(__name__)
LN_EPS = 1e-6


class BranchedBlock(nn.Module):
    """K parallel pre-LN branches (LN1+MHSA, LN2+FFN) joined at Q/K/V (per head) and at the GELU input."""

    def __init__(self, dim: int, heads: int, hidden: int, branches: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.heads, self.hidden, self.branches, self.dropout = dim, heads, hidden, branches, dropout
        k = range(branches)
        self.norm1 = nn.ModuleList(nn.LayerNorm(dim, eps=LN_EPS) for _ in k)
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim) for _ in k)
        self.proj = nn.ModuleList(nn.Linear(dim, dim) for _ in k)
        self.norm2 = nn.ModuleList(nn.LayerNorm(dim, eps=LN_EPS) for _ in k)
        self.fc1 = nn.ModuleList(nn.Linear(dim, hidden) for _ in k)
        self.fc2 = nn.ModuleList(nn.Linear(hidden, dim) for _ in k)
        self.lam = 0.0

    def _join(self, zs: list[torch.Tensor]) -> list[torch.Tensor]:
        """z_k(λ) = (1-λ) z_k + λ Σ_j z_j; at λ = 1 all branches share the same tensor."""
        total = torch.stack(zs).sum(0)
        if self.lam >= 1.0:
            return [total] * len(zs)
        return [(1.0 - self.lam) * z + self.lam * total for z in zs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h, dh = self.heads, c // self.heads
        drop = self.dropout if self.training else 0.0
        qkvs = self._join([lin(ln(x)) for ln, lin in zip(self.norm1, self.qkv, strict=True)])
        outs = []
        cache: dict[int, torch.Tensor] = {}
        for qkv, proj in zip(qkvs, self.proj, strict=True):
            if id(qkv) not in cache:  # joined branches (λ = 1) share one attention computation
                q, k, v = qkv.reshape(b, n, 3, h, dh).permute(2, 0, 3, 1, 4).unbind(0)
                a = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
                cache[id(qkv)] = a.transpose(1, 2).reshape(b, n, c)
            outs.append(F.dropout(proj(cache[id(qkv)]), drop, self.training))
        x = x + torch.stack(outs).sum(0)
        zs = self._join([fc1(ln(x)) for ln, fc1 in zip(self.norm2, self.fc1, strict=True)])
        acts: dict[int, torch.Tensor] = {}
        outs = []
        for z, fc2 in zip(zs, self.fc2, strict=True):
            if id(z) not in acts:
                acts[id(z)] = F.dropout(F.gelu(z), drop, self.training)
            outs.append(F.dropout(fc2(acts[id(z)]), drop, self.training))
        return x + torch.stack(outs).sum(0)

    @torch.no_grad()
    def init_from(self, blocks: list[Block]) -> None:
        """Branch k ← teacher block blocks[k] (LN, qkv, proj, fc1, fc2 copied)."""
        if len(blocks) != self.branches:
            raise ValueError(f"need {self.branches} teacher blocks, got {len(blocks)}")
        for k, blk in enumerate(blocks):
            self.norm1[k].load_state_dict(blk.norm1.state_dict())
            self.qkv[k].load_state_dict(blk.attn.qkv.state_dict())
            self.proj[k].load_state_dict(blk.attn.proj.state_dict())
            self.norm2[k].load_state_dict(blk.norm2.state_dict())
            self.fc1[k].load_state_dict(blk.mlp.fc1.state_dict())
            self.fc2[k].load_state_dict(blk.mlp.fc2.state_dict())

    @torch.no_grad()
    def merge_into(self, block: Block) -> None:
        """Write the exact λ = 1 fold of this block into a plain `Block` (computed in float64)."""
        if self.lam < 1.0:
            raise ValueError(f"cannot merge at λ = {self.lam:g} < 1: the branches are only joined (and the merge "
                             "exact) at λ = 1; finish the λ schedule first")
        if any(abs(ln.eps - LN_EPS) > 0 for ln in (*self.norm1, *self.norm2)):
            raise ValueError("branches must share the LayerNorm eps for an exact merge")

        def fold(norms: nn.ModuleList, lins: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
            pairs = list(zip(norms, lins, strict=True))
            w = sum(lin.weight.double() * ln.weight.double()[None, :] for ln, lin in pairs)
            bias = sum(lin.weight.double() @ ln.bias.double() + lin.bias.double() for ln, lin in pairs)
            return w, bias

        def total(lins: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
            return sum(lin.weight.double() for lin in lins), sum(lin.bias.double() for lin in lins)

        for dst, (w, bias) in ((block.attn.qkv, fold(self.norm1, self.qkv)), (block.attn.proj, total(self.proj)),
                               (block.mlp.fc1, fold(self.norm2, self.fc1)), (block.mlp.fc2, total(self.fc2))):
            dst.weight.copy_(w.to(dst.weight.dtype))
            dst.bias.copy_(bias.to(dst.bias.dtype))
        for ln in (block.norm1, block.norm2):
            nn.init.ones_(ln.weight)
            nn.init.zeros_(ln.bias)


class BranchedViT(VisionTransformer):
    """A ViT of depth L whose blocks are `BranchedBlock`s with K branches; same stem, tokens, norm and head."""

    def __init__(self, config: ViTConfig, branches: int) -> None:
        super().__init__(config)
        c = config
        self.branches = branches
        self.blocks = nn.Sequential(*[BranchedBlock(c.width, c.heads, c.hidden, branches, c.dropout)
                                      for _ in range(c.depth)])
        self.lam = 0.0

    def set_lambda(self, lam: float) -> None:
        """Set the join strength λ ∈ [0, 1] of every block."""
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"λ must be in [0, 1], got {lam}")
        self.lam = float(lam)
        for blk in self.blocks:
            blk.lam = self.lam

    @torch.no_grad()
    def reparameterize(self) -> VisionTransformer:
        """The plain depth-L VisionTransformer (teacher width) equal to this model at λ = 1 (eval mode)."""
        if self.lam < 1.0:
            raise ValueError(f"cannot reparameterize at λ = {self.lam:g} < 1: the merge is exact only at λ = 1 "
                             "(finish the λ schedule, or call set_lambda(1.0) and fine-tune)")
        plain = VisionTransformer(self.config).to(self.pos_embed.dtype)
        own = {k: v for k, v in self.state_dict().items() if not k.startswith("blocks.")}
        missing, unexpected = plain.load_state_dict(own, strict=False)
        if unexpected or any(not k.startswith("blocks.") for k in missing):
            raise RuntimeError(f"state mismatch while merging: missing {missing}, unexpected {unexpected}")
        for src, dst in zip(self.blocks, plain.blocks, strict=True):
            src.merge_into(dst)
        return plain.eval()


def branched_from_teacher(teacher: VisionTransformer, depth: int) -> BranchedViT:
    """A BranchedViT of depth `depth` with K = teacher depth / depth branches initialised from the teacher's
    consecutive layers (see the module docstring); λ = 0."""
    cfg: ViTConfig = teacher.config
    if depth < 1 or cfg.depth % depth:
        raise ValueError(f"student depth {depth} must divide the teacher depth {cfg.depth}")
    k = cfg.depth // depth
    student = BranchedViT(replace(cfg, depth=depth), k).to(teacher.pos_embed.dtype)
    own = {n: v for n, v in teacher.state_dict().items() if not n.startswith("blocks.")}
    student.load_state_dict(own, strict=False)
    for i, blk in enumerate(student.blocks):
        blk.init_from(list(teacher.blocks[i * k:(i + 1) * k]))
    log.info("branched student: depth %d × %d branches from a depth-%d teacher", depth, k, cfg.depth)
    return student


def lambda_at(step: int, total: int, ramp_start: float = 0.1, ramp_end: float = 0.7) -> float:
    """λ schedule: 0 until ramp_start·total, cosine ramp to 1 at ramp_end·total, then 1 (our choice: the
    paper does not publish its schedule; docs/methods.md)."""
    if total <= 0:
        return 1.0
    t = step / total
    if t <= ramp_start:
        return 0.0
    if t >= ramp_end:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * (t - ramp_start) / (ramp_end - ramp_start))
