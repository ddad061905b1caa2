"""A fake-quantized copy of a VisionTransformer for evaluation: inputs of every Linear and of both attention matmuls
quantized (patch-embedding input 8-bit), weights per output channel; LayerNorm, softmax and GELU stay FP."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..arch.vit import Block, VisionTransformer
from .quantizer import LogSqrt2Quantizer, SULQuantizer, UniformQuantizer

log = logging.getLogger(__name__)
SOFTMAX_QUANT = ("uniform", "log_sqrt2", "sulq")


@dataclass(frozen=True)
class QuantConfig:
    """W/A bits, percentile search or MinMax, post-LN per-channel activations, the post-softmax quantizer."""

    wbits: int = 8
    abits: int = 8
    minmax: bool = False
    post_ln_per_channel: bool = False
    softmax: str = "uniform"

    def __post_init__(self) -> None:
        if self.softmax not in SOFTMAX_QUANT:
            raise ValueError(f"softmax quantizer must be one of {SOFTMAX_QUANT}, got {self.softmax!r}")
        if not (2 <= self.wbits <= 8 and 2 <= self.abits <= 8):
            raise ValueError(f"bits must be in 2..8, got W{self.wbits}A{self.abits}")

    def act(self, channel_dim: int | None = None) -> UniformQuantizer:
        return UniformQuantizer(self.abits, channel_dim, (1.0,) if self.minmax else (0.999, 0.9999, 0.99999, 1.0))

    def weight(self) -> UniformQuantizer:
        return UniformQuantizer(self.wbits, 0, (1.0,) if self.minmax else (0.999, 0.9999, 0.99999, 1.0))


class QLinear(nn.Module):
    """Linear with quantized input (`aq`) and per-output-channel quantized weight (`wq`)."""

    def __init__(self, lin: nn.Linear, aq: nn.Module, wq: UniformQuantizer) -> None:
        super().__init__()
        self.weight, self.bias = lin.weight, lin.bias
        self.aq, self.wq = aq, wq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.aq(x), self.wq(self.weight), self.bias)


class QBlock(nn.Module):
    """Pre-LN block with explicit attention so Q, K, the softmax output and V can be quantized."""

    def __init__(self, blk: Block, qc: QuantConfig) -> None:
        super().__init__()
        self.norm1, self.norm2, self.heads = blk.norm1, blk.norm2, blk.attn.heads
        ln_dim = -1 if qc.post_ln_per_channel else None
        self.qkv = QLinear(blk.attn.qkv, qc.act(ln_dim), qc.weight())
        self.proj = QLinear(blk.attn.proj, qc.act(), qc.weight())
        self.fc1 = QLinear(blk.mlp.fc1, qc.act(ln_dim), qc.weight())
        self.fc2 = QLinear(blk.mlp.fc2, qc.act(), qc.weight())
        self.q_q, self.q_k, self.q_v = qc.act(), qc.act(), qc.act()
        if qc.softmax == "log_sqrt2":
            self.q_attn: nn.Module = LogSqrt2Quantizer(qc.abits)
        elif qc.softmax == "sulq":
            self.q_attn = SULQuantizer(qc.abits)
        else:
            self.q_attn = UniformQuantizer(qc.abits, None, (1.0,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (self.q_q(q) * (c // self.heads) ** -0.5) @ self.q_k(k).transpose(-2, -1)
        attn = self.q_attn(attn.softmax(dim=-1))
        o = (attn @ self.q_v(v)).transpose(1, 2).reshape(b, n, c)
        x = x + self.proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))

    def quantizers(self) -> list[nn.Module]:
        return [m for m in self.modules() if hasattr(m, "inited")]


class QuantViT(nn.Module):
    """Fake-quantized VisionTransformer (a deep copy; the float model is untouched)."""

    def __init__(self, model: VisionTransformer, qc: QuantConfig) -> None:
        super().__init__()
        self.fp = copy.deepcopy(model).eval()
        self.config, self.qc = model.config, qc
        self.in_q = UniformQuantizer(8, None, (1.0,) if qc.minmax else (0.999, 0.9999, 0.99999, 1.0))
        pe = self.fp.patch_embed
        self.pe_wq = qc.weight() if isinstance(pe, nn.Conv2d) else None
        self.blocks = nn.ModuleList(QBlock(b, qc) for b in self.fp.blocks)
        self.head = QLinear(self.fp.head, qc.act(), qc.weight())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Quantized patch embedding → tokens (with CLS and position embeddings)."""
        m, pe = self.fp, self.fp.patch_embed
        x = self.in_q(x)
        if self.pe_wq is not None:
            x = F.conv2d(x, self.pe_wq(pe.weight), pe.bias, stride=pe.stride)
        else:  # conv stem: only its input is quantized (8-bit)
            x = pe(x)
        gh, gw = x.shape[-2], x.shape[-1]
        x = x.flatten(2).transpose(1, 2) + m._pos_embed(gh, gw)
        if m.cls_token is not None:
            x = torch.cat([m.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        m = self.fp
        x = m.norm(x)
        x = x[:, 0] if m.config.pool == "cls" else x[:, m.num_prefix:].mean(dim=1)
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return self.tail(x)

    def quantizers(self) -> list[nn.Module]:
        return [m for m in self.modules() if hasattr(m, "inited")]

    def weight_quantizers(self) -> list[UniformQuantizer]:
        out = [m.wq for m in self.modules() if isinstance(m, QLinear)]
        return out + ([self.pe_wq] if self.pe_wq is not None else [])

    def set_weight_quant(self, enabled: bool) -> None:
        for wq in self.weight_quantizers():
            wq.enabled = enabled

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Initialise every quantizer (in forward order, on already-quantized inputs) from one calibration pass."""
        for q in self.quantizers():
            q.inited = False
        self.eval()
        self(x)
        log.info("calibrated %d quantizers on %d samples", len(self.quantizers()), len(x))


@torch.no_grad()
def repq_reparameterize(qlin: QLinear, norm: nn.LayerNorm, requant_weights: bool = True) -> None:
    """RepQ-ViT post-LN reparameterization: per-channel (s, z) of `qlin.aq` → per-tensor (s̃, z̃ = round(mean z)),
    folded into the LayerNorm affine and the Linear (γ̃ = γ/r1, β̃ = (β + s⊙r2)/r1, W̃[:, j] = r1[j]·W[:, j],
    b̃ = b − W(s⊙r2)). The integer z̃ makes the quantized output equal the channel-wise one exactly."""
    aq = qlin.aq
    if aq.channel_dim is None:
        return
    s, z = aq.scale.double(), aq.zero_point.double()
    s_t, z_t = s.mean(), torch.round(z.mean())
    r1, r2 = s / s_t, z - z_t
    w, bias = qlin.weight.double(), qlin.bias.double()
    norm.weight.copy_((norm.weight.double() / r1).float())
    norm.bias.copy_(((norm.bias.double() + s * r2) / r1).float())
    qlin.bias.copy_((bias - w @ (s * r2)).float())
    qlin.weight.copy_((w * r1[None, :]).float())
    aq.channel_dim = None
    aq.set_params(s_t.reshape(1), z_t.reshape(1))
    if requant_weights and qlin.wq.enabled:
        qlin.wq.calibrate(qlin.weight)


def repq_all(qm: QuantViT, requant_weights: bool = True) -> None:
    """Apply the post-LN reparameterization to every qkv and fc1 of a calibrated QuantViT."""
    for blk in qm.blocks:
        repq_reparameterize(blk.qkv, blk.norm1, requant_weights)
        repq_reparameterize(blk.fc1, blk.norm2, requant_weights)
