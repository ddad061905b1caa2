"""Function-preserving deepening (Net2DeeperNet-style): a depth-d ViT checkpoint → the same function at depth m·d,
each source block followed by m − 1 copies of itself whose residual output projections are zero (identity blocks).
Used to start a deep teacher (e.g. the 12-layer teacher of a 12 → 4 reparameterization) from a trained shallow one."""

from __future__ import annotations

import re
from typing import Any

import torch

from app.core.errors import JobError

_BLOCK = re.compile(r"^blocks\.(\d+)\.(.*)$")
ZEROED = ("attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight", "mlp.fc2.bias")


def deepen_state(state: dict[str, torch.Tensor], src_depth: int, depth: int) -> dict[str, torch.Tensor]:
    """State dict of the depth-`depth` model: block i·m is source block i, blocks i·m+1 … i·m+m−1 are copies of it
    with attn.proj and mlp.fc2 zeroed, so x + attn(·) + mlp(·) = x there and the output is unchanged. The copies
    (not fresh weights) give the new blocks' Q/K/V and fc1 useful features once their outputs start to grow."""
    if src_depth < 1 or depth % src_depth or depth < src_depth:
        raise JobError(f"cannot deepen {src_depth} blocks to {depth}: the new depth must be a multiple of the old")
    m = depth // src_depth
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        hit = _BLOCK.match(key)
        if not hit:
            out[key] = value.clone()
            continue
        i, rest = int(hit.group(1)), hit.group(2)
        for j in range(m):
            out[f"blocks.{i * m + j}.{rest}"] = torch.zeros_like(value) if j and rest in ZEROED else value.clone()
    return out


def deepen_checkpoint(init: dict[str, Any], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The init checkpoint's weights deepened to `config` (a ViTConfig dict); JobError unless the two configs
    differ in depth only."""
    src = dict(init["config"])
    if {k: v for k, v in src.items() if k != "depth"} != {k: v for k, v in config.items() if k != "depth"}:
        diff = sorted(k for k in set(src) | set(config) if k != "depth" and src.get(k) != config.get(k))
        raise JobError(f"init_deepen: the init checkpoint differs from the model in more than depth "
                       f"({', '.join(diff)})")
    return deepen_state(init["model"], int(src["depth"]), int(config["depth"]))
