"""Training checkpoints (`ckpt_last.pt`): written atomically (temp file + os.replace), carrying the model config,
the spec, optimizer state, step and RNG state, so a model can be rebuilt and a run resumed from the file alone."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from app.core.errors import JobError

from .arch.vit import VisionTransformer, ViTConfig

log = logging.getLogger(__name__)
CKPT_LAST = "ckpt_last.pt"
FORMAT = "vitascope.ckpt"
VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically. On any OS error the previous file is left untouched and a JobError
    naming the path is raised."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    payload = {"format": FORMAT, "version": VERSION, "torch_version": str(torch.__version__), **state}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save wraps some write errors in RuntimeError
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise JobError(f"{path}: cannot write checkpoint ({_reason(e)}); the previous checkpoint is kept") from None
    log.info("checkpoint written: %s", path)
    return path


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else e.__class__.__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by save_checkpoint (tensors on CPU, weights_only); JobError if unusable."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise JobError(f"{path}: no such checkpoint") from None
    except Exception as e:  # unpickling errors come in many types
        raise JobError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "config" not in ckpt or "model" not in ckpt:
        raise JobError(f"{path}: not a Vitascope checkpoint (no format/config/model entries)")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> tuple[VisionTransformer, ViTConfig, dict[str, Any]]:
    """Rebuild the model from the config stored in the checkpoint and load its weights (eval mode)."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    try:
        cfg = ViTConfig.from_dict(dict(ckpt["config"]))
    except (TypeError, ValueError) as e:
        raise JobError(f"checkpoint config is invalid ({e})") from None
    model = VisionTransformer(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg, ckpt
