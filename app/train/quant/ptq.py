"""Post-training quantization recipes on a QuantViT: MinMax / percentile baselines, RepQ-ViT and I&S-ViT
(SULQ + the three-stage smooth optimization with block reconstruction). Deterministic given the calibration
tensor and the seed."""

from __future__ import annotations

import copy
import logging
import math
import re

import torch
import torch.nn.functional as F

from ..arch.vit import VisionTransformer
from .qvit import QuantConfig, QuantViT, repq_all

log = logging.getLogger(__name__)
METHODS = ("minmax", "percentile", "repq", "sulq", "ias")
_SPEC = re.compile(r"^w(\d)a(\d)-([a-z]+)$")


def parse_spec(spec: str) -> tuple[int, int, str]:
    """'w4a4-repq' → (4, 4, 'repq'); ValueError naming the accepted forms."""
    m = _SPEC.match(spec.strip().lower())
    if not m or m.group(3) not in METHODS:
        raise ValueError(f"quantization spec {spec!r}: expected wXaY-METHOD with METHOD in {', '.join(METHODS)} "
                         "(e.g. w4a4-repq)")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def _block_params(blk: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for lin in (blk.qkv, blk.proj, blk.fc1, blk.fc2) for p in (lin.weight, lin.bias)]


def reconstruct(qm: QuantViT, ref: VisionTransformer, calib_x: torch.Tensor, iters: int, lr: float = 4e-5,
                batch: int = 64, seed: int = 0) -> list[float]:
    """Block-wise reconstruction: for each block, Adam (cosine lr, STE rounding) on its Linear weights/biases so its
    output on the quantized model's inputs matches the FP block output on FP inputs (MSE). Quantizer parameters
    stay fixed. Returns the final loss per block."""
    losses: list[float] = []
    if iters <= 0:
        return losses
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        xq = qm.embed(calib_x)
        xf = ref.patch_embed(calib_x)
        gh, gw = xf.shape[-2], xf.shape[-1]
        xf = xf.flatten(2).transpose(1, 2) + ref._pos_embed(gh, gw)
        if ref.cls_token is not None:
            xf = torch.cat([ref.cls_token.expand(xf.shape[0], -1, -1), xf], dim=1)
    for i, blk in enumerate(qm.blocks):
        with torch.no_grad():
            target = ref.blocks[i](xf)
        params = _block_params(blk)
        opt = torch.optim.Adam(params, lr=lr, weight_decay=0.0)
        bs = min(batch, len(xq))
        last = float("nan")
        for it in range(iters):
            for grp in opt.param_groups:
                grp["lr"] = lr * 0.5 * (1 + math.cos(math.pi * it / iters))
            idx = torch.randint(0, len(xq), (bs,), generator=g)
            loss = F.mse_loss(blk(xq[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = loss.item()
        losses.append(last)
        with torch.no_grad():
            xq, xf = blk(xq), target
    log.info("block reconstruction: %d iterations, final losses %s", iters, [f"{v:.3g}" for v in losses])
    return losses


def quantize(model: VisionTransformer, calib_x: torch.Tensor, method: str, wbits: int, abits: int, *,
             iters: int = 200, lr: float = 4e-5, batch: int = 64, seed: int = 0, init_samples: int = 32
             ) -> QuantViT:
    """A fake-quantized copy of `model`. `calib_x` (32–1024 samples, deterministic) calibrates; the first
    `init_samples` initialise the quantizer ranges (RepQ uses 32), all of them feed I&S-ViT's reconstruction."""
    if method not in METHODS:
        raise ValueError(f"unknown PTQ method {method!r} (known: {', '.join(METHODS)})")
    model = model.eval()
    init = calib_x[:max(1, init_samples)]
    if method in ("minmax", "percentile"):
        qm = QuantViT(model, QuantConfig(wbits, abits, minmax=method == "minmax"))
        qm.calibrate(init)
        return qm
    softmax = "log_sqrt2" if method == "repq" else "sulq"
    qm = QuantViT(model, QuantConfig(wbits, abits, post_ln_per_channel=True, softmax=softmax))
    if method in ("repq", "sulq"):
        qm.calibrate(init)
        repq_all(qm, requant_weights=True)
        return qm
    # I&S-ViT SOS. Stage 1: FP weights, post-LN per-channel activations; reconstruct.
    ref = copy.deepcopy(model).eval()
    qm.set_weight_quant(False)
    qm.calibrate(init)
    reconstruct(qm, ref, calib_x, iters, lr, batch, seed)
    # Stage 2: lossless (integer z̃, FP weights) reparameterization to per-tensor.
    repq_all(qm, requant_weights=False)
    # Stage 3: quantize the weights (per channel) and reconstruct again.
    qm.set_weight_quant(True)
    with torch.no_grad():
        for wq, w in _weights(qm):
            wq.calibrate(w)
    reconstruct(qm, ref, calib_x, iters, lr, batch, seed + 1)
    return qm


def _weights(qm: QuantViT) -> list[tuple]:
    pairs = []
    for m in qm.modules():
        if hasattr(m, "wq") and hasattr(m, "weight"):
            pairs.append((m.wq, m.weight))
    if qm.pe_wq is not None:
        pairs.append((qm.pe_wq, qm.fp.patch_embed.weight))
    return pairs
