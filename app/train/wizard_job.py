"""The training wizard's job (kind "app.train.wizard_job:run"): optionally train or fine-tune (the "train" job),
then optionally compress (depth reparameterization + distillation, quantization) the result or a zoo model."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from app.core.card import read_card
from app.core.errors import Cancelled, JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.validate import check_fields

from . import pipeline
from .arch.vit import list_configs
from .checkpoint import CKPT_LAST, load_checkpoint
from .loop import EventFn

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.pt"
PARAMS = {"task": "str", "model_id": "str", "train": "dict", "parent": "str", "init": "str", "compress": "dict"}
COMPRESS = {"reparam_depth": "int", "distill": "str", "quant": "str", "steps": "int", "threads": "int",
            "batch_size": "int"}


def validate(job: JobSpec) -> None:
    """Types and known keys of the wizard job's params (and its train table, as the "train" job checks it)."""
    p = job.params
    check_fields(p, PARAMS, "job spec: params", JobError)
    c = p.get("compress") or {}
    check_fields(c, COMPRESS, "job spec: params.compress", JobError)
    negative = [k for k, v in c.items() if isinstance(v, int) and v < 0]
    if negative:
        raise JobError(f"job spec: params.compress {', '.join(negative)} must not be negative")
    if p.get("init") not in (None, "", "parent"):
        raise JobError(f"job spec: params.init must be 'parent', got {p['init']!r}")
    if p.get("train"):
        pipeline.validate_train(JobSpec("train", dict(p["train"]), out_dir=job.out_dir, name=job.name,
                                        seed=job.seed, resume=job.resume))
    elif not p.get("parent"):
        raise JobError("job spec: nothing to do (no params.train and no params.parent to compress)")


def finetune_params(train: dict[str, Any], parent: Path) -> dict[str, Any]:
    """The train params with the parent's architecture (from its checkpoint) and its weights as the start."""
    ckpt_path = parent / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        raise JobError(f"{parent}: no {CHECKPOINT_FILE}; fine-tuning starts from the parent's torch weights")
    ckpt = load_checkpoint(ckpt_path)
    cfg, name = dict(ckpt["config"]), str(ckpt.get("model_name") or "vit-micro")
    return {**train, "model": name if name in list_configs() else "vit-micro", "model_overrides": cfg,
            "init": str(ckpt_path)}


def _finished_values(folder: Path, seconds: float = 0.0) -> dict[str, float]:
    card = read_card(folder)
    values = {m["name"]: float(m["value"]) for m in card.metrics if isinstance(m.get("value"), (int, float))}
    values.update(latency_ms=float(card.latency.get("ms", 0.0)), params=float(card.params), bytes=float(card.bytes))
    if seconds:
        values["train_seconds"] = float(seconds)
    return values


def run(job: JobSpec, on_event: EventFn, cancel: CancelToken) -> str:
    """params: task, model_id, train? (TrainSpec params), parent? (zoo model folder), init? ("parent"),
    compress? {reparam_depth, distill, quant, steps, threads}. Emits one "finished" at the very end."""
    p = dict(job.params)
    parent = Path(p["parent"]) if p.get("parent") else None
    compress_cfg = dict(p.get("compress") or {})
    out = Path(job.out_dir)
    model_dir: Path | None = None
    seconds = 0.0
    if p.get("train"):
        train = dict(p["train"])
        if p.get("init") == "parent":
            if parent is None:
                raise JobError("job spec: init = 'parent' needs params.parent (a zoo model folder)")
            train = finetune_params(train, parent)
        held: dict[str, Any] = {}

        def inner(ev: ProgressEvent) -> None:
            if ev.event == "finished" and compress_cfg:
                held.update(ev.values)  # the last stage reports "finished"
                return
            on_event(ev)

        sub = JobSpec("train", train, out_dir=job.out_dir, name=job.name, seed=job.seed, resume=job.resume)
        status = pipeline.train_job(sub, inner, cancel)
        if status != "finished":
            return status
        model_dir = Path(dict(train.get("export", {})).get("out_dir") or out / "model")
        seconds = float(held.get("train_seconds", 0.0))
        if not compress_cfg:
            return "finished"
        shutil.copy2(out / CKPT_LAST, model_dir / CHECKPOINT_FILE)  # compression rebuilds the torch model
    teacher = model_dir or parent
    if teacher is None:
        raise JobError("job spec: nothing to do (no params.train and no params.parent to compress)")
    if not compress_cfg:
        raise JobError("job spec: no params.train and no params.compress")
    if cancel.cancelled:
        on_event(ProgressEvent("cancelled", message="cancelled before compression"))
        return "cancelled"
    return _compress(job, teacher, compress_cfg, on_event, cancel, seconds)


def _compress(job: JobSpec, teacher: Path, c: dict[str, Any], on_event: EventFn, cancel: CancelToken,
              seconds: float) -> str:
    from .compress import CompressSpec, compress

    out = Path(job.out_dir) / "compressed"
    distill = str(c.get("distill") or "")
    if distill == "logits":
        from . import logits_store

        on_event(ProgressEvent("progress", message=f"saving sparse teacher logits of {teacher.name}"))
        store = logits_store.save_for_model(str(teacher), Path(job.out_dir) / "logits", seed=job.seed)
        distill = f"logits:{store}"
    steps = [s for s in (f"depth → {c['reparam_depth']} + {distill or 'kd'}" if c.get("reparam_depth") else "",
                         str(c.get("quant") or "")) if s]
    on_event(ProgressEvent("started", message=f"compressing {teacher.name}: {', '.join(steps)}"))
    cs = CompressSpec(model=str(teacher), out=str(out), reparam_depth=int(c.get("reparam_depth", 0)),
                      distill=distill if c.get("reparam_depth") else "", quant=str(c.get("quant") or ""),
                      steps=int(c.get("steps", 200)), batch_size=int(c.get("batch_size", 64)),
                      threads=int(c.get("threads", 2)), seed=int(job.seed),
                      id=str(job.params.get("model_id") or job.name or out.name), latency_runs=50)
    try:
        folder = compress(cs, on_event, cancel)
    except Cancelled:
        on_event(ProgressEvent("cancelled", message=f"cancelled while compressing {teacher.name}; nothing was "
                               "written (the trained model and its checkpoint are kept)"))
        return "cancelled"
    on_event(ProgressEvent("artifact", path=str(folder), message=f"compressed model written to {folder}"))
    on_event(ProgressEvent("finished", path=str(folder), values=_finished_values(folder, seconds),
                           message=f"{read_card(folder).id}: {folder}"))
    return "finished"
