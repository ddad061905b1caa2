"""The teacher of a compression or a logit store: a model folder's torch model rebuilt from its checkpoint.pt, with
the training spec that recreates its training and held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from app.core.errors import BadInput, VitascopeError

from . import loop
from .arch.vit import VisionTransformer
from .checkpoint import load_checkpoint, model_from_checkpoint
from .loop import TrainSpec

CHECKPOINT_FILE = "checkpoint.pt"


def resolve_model_dir(model: str) -> Path:
    """A model folder path, or the folder of an installed/shipped model id; BadInput if neither."""
    from app.core.zoo import Zoo

    try:
        return Zoo().resolve(model).resolve()
    except VitascopeError as e:
        raise BadInput(f"{model}: neither a model folder nor a known model id ({e})") from None


def load_teacher(folder: Path) -> tuple[VisionTransformer, TrainSpec, dict[str, Any]]:
    """The teacher rebuilt from folder/checkpoint.pt, its training spec and the checkpoint; BadInput if absent."""
    ckpt_path = folder / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        raise BadInput(f"{folder}: no {CHECKPOINT_FILE} in the model folder; compression rebuilds the torch model "
                       "from the teacher's training checkpoint (copy the run's ckpt_last.pt there)")
    ckpt = load_checkpoint(ckpt_path)
    model, _, _ = model_from_checkpoint(ckpt)
    raw = dict(ckpt.get("spec", {}))
    spec = TrainSpec(**{k: v for k, v in raw.items() if k in TrainSpec.__dataclass_fields__})
    if not isinstance(spec.data, dict) or "entry" not in spec.data:
        raise BadInput(f"{ckpt_path}: the checkpoint carries no training spec (data entry); cannot rebuild the "
                       "training and held-out data")
    return model, spec, ckpt


def heldout_data(spec: TrainSpec) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(x, y, description) from the recipe's export.heldout (data entry + held-out seed), else the val split."""
    held = dict(spec.export.get("heldout", {})) if isinstance(spec.export, dict) else {}
    if held:
        entry = held.get("entry", spec.data["entry"])
        seed = heldout_seed(spec)
        data = {"entry": entry, "params": dict(held.get("params", {})), "seed": seed}
        _, _, x, y = loop.load_data(data, seed, spec.task)
        return x, y, f"{entry} seed={seed} (held-out)"
    _, _, x, y = loop.load_data(spec.data, spec.seed, spec.task)
    return x, y, f"{spec.data['entry']} seed={spec.data.get('seed', spec.seed)} (validation split, not held-out)"


def heldout_seed(spec: TrainSpec) -> int:
    """The seed of the data heldout_data(spec) evaluates on (cards record it beside every metric)."""
    held = dict(spec.export.get("heldout", {})) if isinstance(spec.export, dict) else {}
    if held:
        return int(held.get("seed", spec.seed))
    return int(spec.data.get("seed", spec.seed))
