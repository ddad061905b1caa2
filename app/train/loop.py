"""A flat, deterministic training loop (nanoGPT style): TrainSpec → train(spec, on_event, cancel) → TrainResult,
with AdamW, warm-up + cosine/linear schedule, periodic evaluation, atomic checkpoints and exact resume."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from app.core.entries import resolve_entry
from app.core.errors import JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.validate import check_fields, dataclass_types

from . import ddp
from .arch.vit import VisionTransformer, ViTConfig, count_params, get_config
from .checkpoint import CKPT_LAST, load_checkpoint, save_checkpoint
from .objectives import Objective, get_objective

log = logging.getLogger(__name__)
SCHEDULES = ("cosine", "linear", "constant")
AUGMENTS = ("hflip", "vflip", "rot90", "vroll")
DATA_FIELDS = {"entry": "str", "params": "dict", "seed": "int"}  # a spec's params.data table
EventFn = Callable[[ProgressEvent], None]


@dataclass
class TrainSpec:
    """Everything a training run needs; built from a JobSpec's params by `from_job` (seed/out_dir/resume
    come from the JobSpec itself). `steps` wins over `epochs`; 0 means "use the other one"."""

    model: str = "vit-micro"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # {"entry": "pkg.mod:fn", "params": {...}, "seed": int}
    task: str = "classification"  # a registered objective (app.train.objectives)
    loss: str = ""  # one of the objective's losses; default: the objective's own
    steps: int = 0
    epochs: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    augment: list[str] = field(default_factory=list)  # label-preserving: "hflip", "vflip", "rot90", "vroll"
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 10
    threads: int = 2
    seed: int = 0
    out_dir: str = ""
    resume: bool = False
    name: str = ""
    export: dict[str, Any] = field(default_factory=dict)  # used by the "train"/"export" jobs, not by the loop
    init: str = ""  # a checkpoint whose weights start the run (fine-tuning; same config); ignored on resume
    init_deepen: bool = False  # init has fewer blocks: start from it deepened function-preservingly (deepen.py)

    @classmethod
    def from_job(cls, job: JobSpec) -> TrainSpec:
        """Validate and convert; raise JobError naming the first bad parameter."""
        params = dict(job.params)
        known = {f.name for f in fields(cls)} - {"seed", "out_dir", "resume", "name"}
        unknown = set(params) - known
        if unknown:
            raise JobError(f"job spec: unknown train parameter(s) {', '.join(sorted(map(str, unknown)))}")
        check_fields(params, dataclass_types(cls, exclude=("seed", "out_dir", "resume", "name")), "job spec: params",
                     JobError)
        if isinstance(params.get("data"), dict):
            check_fields(params["data"], DATA_FIELDS, "job spec: params.data", JobError)
        try:
            spec = cls(**params, seed=int(job.seed), out_dir=str(job.out_dir), resume=bool(job.resume),
                       name=job.name or "")
        except TypeError as e:
            raise JobError(f"job spec: {e}") from None
        spec.validate()
        return spec

    @property
    def objective(self) -> Objective:
        return get_objective(self.task)

    @property
    def loss_name(self) -> str:
        return self.objective.loss_name(self.loss)

    def model_config(self) -> ViTConfig:
        overrides = {"head": self.objective.head, **self.model_overrides}
        try:
            return get_config(self.model, **overrides)
        except (KeyError, ValueError, TypeError) as e:
            raise JobError(f"job spec: model {self.model!r}: {e.args[0] if e.args else e}") from None

    def validate(self) -> None:
        self.objective.loss_fn(self.loss)  # an unknown task or a loss that does not fit it: JobError
        if self.schedule not in SCHEDULES:
            raise JobError(f"job spec: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.steps <= 0 and self.epochs <= 0:
            raise JobError("job spec: give steps > 0 or epochs > 0")
        negative = [k for k in ("steps", "epochs", "warmup_steps", "eval_every", "checkpoint_every", "log_every",
                                "min_lr", "weight_decay", "grad_clip") if getattr(self, k) < 0]
        if negative:
            raise JobError(f"job spec: {', '.join(negative)} must not be negative")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise JobError(f"job spec: betas must be two numbers in [0, 1), got {self.betas}")
        if self.batch_size <= 0 or self.threads <= 0 or self.lr <= 0:
            raise JobError("job spec: batch_size, threads and lr must be positive")
        if not self.out_dir:
            raise JobError("job spec: out_dir is empty")
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad:
            raise JobError(f"job spec: unknown augment(s) {', '.join(map(str, bad))} (known: {', '.join(AUGMENTS)})")
        entry = self.data.get("entry") if isinstance(self.data, dict) else None
        if not isinstance(entry, str) or ":" not in entry:
            raise JobError("job spec: data.entry must be 'package.module:function'")
        self.model_config()


@dataclass
class TrainResult:
    status: str  # "finished" | "cancelled"
    model: VisionTransformer
    config: ViTConfig
    spec: TrainSpec
    step: int
    total: int
    metrics: dict[str, float]
    checkpoint: Path
    train_seconds: float


# evaluation -----------------------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Eval-mode outputs for all of x, in chunks; restores the training flag."""
    was = model.training
    model.eval()
    outs = [model(x[i:i + batch]) for i in range(0, len(x), batch)]
    model.train(was)
    return torch.cat(outs) if outs else torch.empty(0)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: TrainSpec) -> dict[str, float]:
    """Validation loss plus the objective's metrics (e.g. accuracy and macro-F1, MAE and RMSE, recall@1 and mAP)."""
    if len(x) == 0:
        return {}
    out = predict(model, x, max(256, spec.batch_size))
    obj = spec.objective
    with torch.no_grad():
        val_loss = float(obj.loss_fn(spec.loss)(out, y))
    return {"val_loss": val_loss, **obj.metrics(out.numpy(), y.numpy())}


# data ------------------------------------------------------------------------------------------------------
def load_data(data: dict[str, Any], default_seed: int, task: str | Objective,
              overrides: dict[str, Any] | None = None) -> tuple[torch.Tensor, ...]:
    """Call the data entry (seed=..., **params) → (x_train, y_train, x_val, y_val) as torch tensors, the targets
    converted by the objective named `task`."""
    obj = task if isinstance(task, Objective) else get_objective(task)
    fn = resolve_entry(data["entry"])
    params = {**dict(data.get("params", {})), **(overrides or {})}
    seed = int(data.get("seed", default_seed))
    arrays = fn(seed=seed, **params)
    if not isinstance(arrays, (tuple, list)) or len(arrays) != 4:
        raise JobError(f"data entry {data['entry']!r} must return (x_train, y_train, x_val, y_val)")
    out = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if i % 2 == 0:
            if a.ndim != 4:
                raise JobError(f"data entry {data['entry']!r}: images must be NCHW, got shape {a.shape}")
            out.append(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))
        else:
            if len(a) != len(out[-1]):
                raise JobError(f"data entry {data['entry']!r}: {len(out[-1])} images but {len(a)} targets")
            out.append(obj.targets(a))
    return tuple(out)


def _check_data(cfg: ViTConfig, spec: TrainSpec, x: torch.Tensor, y: torch.Tensor) -> None:
    if len(x) == 0:
        raise JobError("data entry returned no training samples")
    if x.shape[1] != cfg.in_chans:
        raise JobError(f"data has {x.shape[1]} channels but model {spec.model!r} expects {cfg.in_chans}")
    spec.objective.check_data(y, cfg.num_outputs)


# schedule and batching -------------------------------------------------------------------------------------
def lr_at(spec: TrainSpec, step: int, total: int) -> float:
    """Learning rate for `step` (0-based): linear warm-up, then cosine/linear decay to min_lr, or constant."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    if spec.schedule == "constant":
        return spec.lr
    progress = min(1.0, (step - spec.warmup_steps) / max(1, total - spec.warmup_steps))
    if spec.schedule == "linear":
        return spec.lr + (spec.min_lr - spec.lr) * progress
    return spec.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (spec.lr - spec.min_lr)


class Batches:
    """Shuffled mini-batch indices as a pure function of (seed, step): epoch e uses a permutation drawn from a
    torch.Generator seeded with (seed, e), so resuming at any step reproduces the same order. Drops the last
    incomplete batch."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.bs, self.seed = n, min(batch_size, n), seed
        self.per_epoch = max(1, n // self.bs)
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[i * self.bs:(i + 1) * self.bs]


def augment_batch(x: torch.Tensor, ops: list[str], seed: int, step: int) -> torch.Tensor:
    """Per-sample random flips / 90° rotations / cyclic row shifts ("vroll": a rotation of the object on an
    angle × radius map) drawn from a generator seeded by (seed, step), so resuming reproduces them. rot90 needs
    square images."""
    if not ops:
        return x
    g = torch.Generator().manual_seed((seed * 1_000_003 + 7_919 * step + 1) % (2**63))
    n = x.shape[0]
    for op in ops:
        if op == "rot90" and x.shape[2] == x.shape[3]:
            k = torch.randint(0, 4, (n,), generator=g).view(n, 1, 1, 1)
            x = torch.where(k == 0, x, torch.where(k == 1, x.rot90(1, (2, 3)),
                                                   torch.where(k == 2, x.rot90(2, (2, 3)), x.rot90(3, (2, 3)))))
        elif op == "vroll":
            shift = torch.randint(0, x.shape[2], (n,), generator=g)
            rows = (torch.arange(x.shape[2]).view(1, -1) - shift.view(-1, 1)) % x.shape[2]
            x = torch.gather(x, 2, rows.view(n, 1, -1, 1).expand(-1, x.shape[1], -1, x.shape[3]))
        elif op in ("hflip", "vflip"):
            flip = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1, 1)
            x = torch.where(flip, x.flip(3 if op == "hflip" else 2), x)
    return x


def make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms, position embeddings and the CLS token."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name in ("pos_embed", "cls_token") else decay).append(p)
    groups = [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=spec.lr, betas=tuple(spec.betas))


# the loop --------------------------------------------------------------------------------------------------
def cancel_stop(cancel: CancelToken | None) -> Callable[[int], bool]:
    """A `stop` for run_steps that never ends the run early but raises Cancelled once `cancel` is cancelled."""

    def stop(step: int) -> bool:
        if cancel is not None:
            cancel.check()
        return False

    return stop


def run_steps(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], steps: range,
              batch_loss: Callable[[int], torch.Tensor], *, lr: Callable[[int], float] | None = None,
              grad_clip: float = 0.0, stop: Callable[[int], bool] | None = None,
              after: Callable[[int, torch.Tensor], None] | None = None) -> int | None:
    """The optimisation loop every trainer shares (recipes and the wizard, compression, calibration fine-tuning):
    per step, `stop(step)` may end the run (its step is returned; it may also raise), the learning rate is set to
    `lr(step)`, `batch_loss(step)` is backpropagated, gradients of `params` are clipped to `grad_clip` (0: no
    clipping) and the optimiser steps; `after(done, loss)` sees each finished step. Returns None when every step
    ran."""
    for step in steps:
        if stop is not None and stop(step):
            return step
        if lr is not None:
            value = lr(step)
            for group in optimizer.param_groups:
                group["lr"] = value
        loss = batch_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        if after is not None:
            after(step + 1, loss)
    return None


def train(spec: TrainSpec, on_event: EventFn, cancel: CancelToken, *, emit_finished: bool = True) -> TrainResult:
    """Train per `spec`, emitting started/progress/metric/checkpoint and finished or cancelled events.
    With `spec.resume`, continue from out_dir/ckpt_last.pt (bit-identical to an uninterrupted run).
    `emit_finished=False` leaves the "finished" event to a caller that has more to do (e.g. export).
    Under torchrun (app.train.ddp_launch) each rank trains on its shard of every batch and rank 0 alone reports and
    writes checkpoints; without a process group the ddp hooks are identities."""
    spec.validate()
    dist = ddp.context()
    on_event = dist.events(on_event)
    torch.set_num_threads(spec.threads)
    out_dir = Path(spec.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise JobError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from None
    ckpt_path = out_dir / CKPT_LAST
    cfg = spec.model_config()

    torch.manual_seed(spec.seed)
    model = VisionTransformer(cfg)
    spec.objective.init_model(model, spec.seed)
    x_train, y_train, x_val, y_val = load_data(spec.data, spec.seed, spec.objective)
    _check_data(cfg, spec, x_train, y_train)
    batches = Batches(len(x_train), spec.batch_size, spec.seed)
    total = spec.steps if spec.steps > 0 else spec.epochs * batches.per_epoch
    optimizer = make_optimizer(model, spec)
    loss_fn = spec.objective.loss_fn(spec.loss)

    start, seconds_before, metrics = 0, 0.0, {}
    if spec.init and not (spec.resume and ckpt_path.exists()):
        init = load_checkpoint(spec.init)
        if spec.init_deepen:
            from .deepen import deepen_checkpoint

            model.load_state_dict(deepen_checkpoint(init, cfg.to_dict()))
        elif init["config"] != cfg.to_dict():
            raise JobError(f"{spec.init}: was written for a different model config; cannot start from it")
        else:
            model.load_state_dict(init["model"])
        log.info("starting from the weights of %s", spec.init)
    if spec.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["config"] != cfg.to_dict():
            raise JobError(f"{ckpt_path}: was written for a different model config; cannot resume")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start, seconds_before = int(ckpt["step"]), float(ckpt.get("train_seconds", 0.0))
        metrics = dict(ckpt.get("metrics", {}))
        log.info("resuming from %s at step %d", ckpt_path, start)
        if start > total:
            log.warning("%s is at step %d, past this spec's %d steps; nothing left to train", ckpt_path, start, total)
            total = start
    elif spec.resume:
        log.warning("resume requested but %s does not exist; starting from scratch", ckpt_path)

    n_params = count_params(model)
    on_event(ProgressEvent("started", step=start, total=total, values={"params": n_params},
                           message=f"{spec.model}: {n_params:,} params, {total} steps, batch {batches.bs}"))
    t0 = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - t0

    def checkpoint(step: int) -> Path:
        state = {"config": cfg.to_dict(), "model_name": spec.model, "spec": asdict(spec),
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": {"name": spec.schedule, "step": step, "total": total, "lr": lr_at(spec, step, total)},
                 "step": step, "total": total, "rng": {"torch": torch.get_rng_state()},
                 "metrics": metrics, "train_seconds": elapsed(), "params": n_params}
        path, error = ckpt_path, None
        if dist.main:
            try:
                path = save_checkpoint(ckpt_path, state)
            except JobError as e:
                error = e
        if dist.any(error is not None):  # every rank stops together if rank 0 could not write
            raise error or JobError(f"{ckpt_path}: rank 0 could not write the checkpoint")
        on_event(ProgressEvent("checkpoint", step=step, total=total, path=str(path)))
        return path

    def result(status: str, step: int, path: Path) -> TrainResult:
        model.eval()
        return TrainResult(status, model, cfg, spec, step, total, metrics, path, elapsed())

    net = dist.wrap(model)
    model.train()

    def batch_loss(step: int) -> torch.Tensor:
        idx = batches.indices(step)
        xb = augment_batch(x_train[idx], spec.augment, spec.seed, step)
        return loss_fn(net(dist.shard(xb)), dist.shard(y_train[idx]))

    def after(done: int, loss: torch.Tensor) -> None:
        nonlocal metrics
        loss_value = dist.mean(loss.detach())
        if not math.isfinite(loss_value):
            raise JobError(f"loss became {loss_value} at step {done}; try a lower lr")
        if done % max(1, spec.log_every) == 0 or done == total:
            on_event(ProgressEvent("progress", step=done, total=total,
                                   values={"loss": loss_value, "lr": lr_at(spec, done - 1, total)}))
        if spec.eval_every > 0 and done % spec.eval_every == 0 and done < total:
            metrics = evaluate(model, x_val, y_val, spec)
            on_event(ProgressEvent("metric", step=done, total=total, values=metrics))
        if spec.checkpoint_every > 0 and done % spec.checkpoint_every == 0 and done < total:
            checkpoint(done)

    stopped = run_steps(optimizer, list(model.parameters()), range(start, total), batch_loss,
                        lr=lambda step: lr_at(spec, step, total), grad_clip=spec.grad_clip,
                        stop=lambda step: dist.any(cancel.cancelled), after=after)
    if stopped is not None:
        path = checkpoint(stopped)
        on_event(ProgressEvent("cancelled", step=stopped, total=total, path=str(path),
                               message=f"cancelled at step {stopped}/{total}; resume from {path}"))
        return result("cancelled", stopped, path)

    metrics = evaluate(model, x_val, y_val, spec)
    if metrics:
        on_event(ProgressEvent("metric", step=total, total=total, values=metrics))
    path = checkpoint(total)
    res = result("finished", total, path)
    if emit_finished:
        on_event(ProgressEvent("finished", step=total, total=total, path=str(path),
                               values={**metrics, "train_seconds": res.train_seconds, "params": n_params}))
    return res
