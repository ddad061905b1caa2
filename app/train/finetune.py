"""Fine-tuning a regression model from its checkpoint on in-memory data (used by plug-ins such as holography
calibration), and exporting the result as a model folder with a slim checkpoint for further fine-tuning."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.card import ModelCard
from app.core.jobs import CancelToken

from .arch.vit import VisionTransformer, ViTConfig
from .checkpoint import load_checkpoint, model_from_checkpoint
from .export import export_onnx
from .loop import augment_batch, cancel_stop, run_steps
from .objectives import REGRESSION

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class FineTuned:
    model: VisionTransformer
    config: ViTConfig
    checkpoint: dict[str, Any]
    seconds: float = 0.0
    steps: int = 0
    torch_version: str = str(torch.__version__)
    kept_step: int | None = None  # with validation: the step whose weights were kept (0 = the starting weights)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, validation error) as measured

    @property
    def augment(self) -> list[str]:
        """The label-preserving augmentations the model was trained with (its checkpoint's spec); flips of both axes
        for checkpoints without one. Why it matters: on an angle × |k|² map (the qmap input) a horizontal flip
        reverses the defocus chirp — fine-tuning with it taught the model wrong labels."""
        spec = self.checkpoint.get("spec") or {}
        ops = spec.get("augment") if isinstance(spec, dict) else None
        return list(ops) if ops is not None else ["hflip", "vflip"]


def load(ckpt_path: str | Path, threads: int = 2) -> FineTuned:
    torch.set_num_threads(threads)
    ckpt = load_checkpoint(ckpt_path)
    model, cfg, _ = model_from_checkpoint(ckpt)
    return FineTuned(model, cfg, ckpt)


def predict(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """First output of the model on NCHW float32 `x`, in eval mode."""
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()[:, 0]


def finetune_regression(ft: FineTuned, x: np.ndarray, y: np.ndarray, steps: int, lr: float = 1e-4,
                        batch_size: int = 32, seed: int = 0, loss: str = "logcosh",
                        on_step: Callable[[int, float], None] | None = None,
                        cancel: CancelToken | None = None, augment: list[str] | None = None,
                        validate: Callable[[], float] | None = None, validate_every: int = 50) -> FineTuned:
    """AdamW on random batches augmented as the model was trained (`augment`, default ft.augment); raises Cancelled
    (nothing changed on disk) when cancelled. With `validate` (an error to minimise, measured on data the steps do
    not see) it is measured before the first step and every `validate_every` steps, and the weights with the lowest
    one are kept — the starting weights included, so a small calibration set cannot make the model worse there."""
    torch.manual_seed(seed)
    model = ft.model
    loss_fn = REGRESSION.loss_fn(loss)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y.astype(np.float32))
    yt = yt.reshape(-1, 1)
    g = torch.Generator().manual_seed(seed)
    bs = min(batch_size, len(xt))
    ops = ft.augment if augment is None else list(augment)
    t0 = time.perf_counter()
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None

    def check(done: int) -> None:
        nonlocal best
        v = float(validate())  # type: ignore[misc]
        ft.validation.append((ft.steps + done, v))
        if best is None or v < best[0]:
            best = (v, done, {k: t.detach().clone() for k, t in model.state_dict().items()})
        model.train()

    if validate is not None:
        check(0)
    model.train()

    def batch_loss(step: int) -> torch.Tensor:
        idx = torch.randint(0, len(xt), (bs,), generator=g)
        xb = augment_batch(xt[idx], ops, seed, ft.steps + step)
        return loss_fn(model(xb), yt[idx])

    def after(done: int, value: torch.Tensor) -> None:
        if on_step:
            on_step(done, float(value.detach()))
        if validate is not None and (done % validate_every == 0 or done == steps):
            check(done)

    run_steps(opt, list(model.parameters()), range(steps), batch_loss, grad_clip=1.0, stop=cancel_stop(cancel),
              after=after)
    if best is not None:
        model.load_state_dict(best[2])
        ft.kept_step = ft.steps + best[1]
    model.eval()
    ft.seconds += time.perf_counter() - t0
    ft.steps += steps
    return ft


def export_finetuned(ft: FineTuned, out_dir: Path, card_fields: dict[str, Any], latency_runs: int = 30,
                     **ckpt_extra: Any) -> ModelCard:
    """model.onnx + golden + card via export_onnx, plus a slim checkpoint (config + weights) beside them."""
    cfg = ft.config
    example = torch.zeros(2, cfg.in_chans, cfg.img_size, cfg.img_size)
    card = export_onnx(ft.model, example, out_dir, card_fields, latency_runs=latency_runs)
    ck = ft.checkpoint
    slim = {"format": ck["format"], "version": ck["version"], "config": cfg.to_dict(),
            "model": ft.model.state_dict(), "model_name": ck.get("model_name"), "spec": ck.get("spec"), **ckpt_extra}
    torch.save(slim, Path(out_dir) / CHECKPOINT_FILE)
    return card
