"""Job functions built from the loop and the exporter: "train" (optionally followed by an export step) and
"export" (from a checkpoint, or train then export). Each takes (JobSpec, on_event, cancel) and returns a status."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from app.core.card import ModelCard
from app.core.entries import resolve_entry
from app.core.errors import JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.validate import check_call_params, check_fields

from . import loop
from .arch.vit import VisionTransformer, ViTConfig
from .checkpoint import load_checkpoint, model_from_checkpoint
from .export import export_onnx
from .loop import EventFn, TrainSpec

log = logging.getLogger(__name__)
# keys of a spec's `export` table that describe the export itself rather than card fields
_EXPORT_KEYS = {"out_dir", "heldout", "recipe", "recipe_file", "latency_runs", "provenance", "metrics", "explain",
                "example_hw"}
_CARD_KEYS = {"id", "task", "version", "license", "description", "labels", "preprocess", "optics", "arch"}


def heldout_metrics(model: VisionTransformer, spec: TrainSpec, heldout: dict[str, Any]) -> list[dict[str, Any]]:
    """Evaluate on held-out data: heldout = {entry?, seed, params}; the entry defaults to the training data's
    and its (x_val, y_val) part is used. Returns card [[metrics]] entries."""
    entry = heldout.get("entry", spec.data["entry"])
    seed = int(heldout.get("seed", spec.seed))
    if seed == int(spec.data.get("seed", spec.seed)) and entry == spec.data["entry"]:
        raise JobError(f"export.heldout.seed {seed} is the training data seed; held-out data needs another seed")
    data = {"entry": entry, "params": dict(heldout.get("params", {})), "seed": seed}
    _, _, x, y = loop.load_data(data, seed, spec.task)
    if len(x) == 0:
        raise JobError(f"held-out data from {entry!r} (seed {seed}) is empty")
    values = loop.evaluate(model, x, y, spec)
    values.pop("val_loss", None)
    where = f"{entry} seed={seed} (held-out)"
    return [{"name": k, "value": round(float(v), 6), "dataset": where, "seed": seed, "n": int(len(x))}
            for k, v in values.items()]


def _recipe_ref(recipe_file: str | None, out: Path) -> str:
    """How a card names its recipe: the bare file name when it sits in the model folder, else its full path."""
    if not recipe_file:
        return ""
    rf = Path(recipe_file)
    return rf.name if rf.parent.resolve() == out.resolve() else str(rf)


def export_trained(model: VisionTransformer, cfg: ViTConfig, spec: TrainSpec, *, train_seconds: float,
                   val_metrics: dict[str, float], export: dict[str, Any] | None = None) -> tuple[ModelCard, Path]:
    """Export a trained model to its model folder with card fields from `spec.export` (or `export`)."""
    ex = dict(spec.export if export is None else export)
    unknown = set(ex) - _EXPORT_KEYS - _CARD_KEYS
    if unknown:
        raise JobError(f"job spec: unknown export field(s) {', '.join(sorted(unknown))}")
    out = Path(ex.get("out_dir") or Path(spec.out_dir) / "model")
    model.eval()
    if ex.get("heldout"):
        metrics = heldout_metrics(model, spec, dict(ex["heldout"]))
    else:
        seed = int(spec.data.get("seed", spec.seed))
        where = f"{spec.data['entry']} seed={seed} (validation split, not held-out)"
        metrics = [{"name": k, "value": round(float(v), 6), "dataset": where, "seed": seed}
                   for k, v in val_metrics.items() if k != "val_loss"]
    metrics += list(ex.get("metrics", []))
    provenance = {
        "recipe": str(ex.get("recipe") or _recipe_ref(ex.get("recipe_file"), out)),
        "model": spec.model, "seed": spec.seed,
        "data": spec.data["entry"], "data_seed": int(spec.data.get("seed", spec.seed)),
        "data_params": dict(spec.data.get("params", {})), "steps": spec.steps or None,
        "epochs": spec.epochs or None, "batch_size": spec.batch_size, "lr": spec.lr, "loss": spec.loss_name,
        "training_seconds": round(float(train_seconds), 2), "torch": str(torch.__version__),
        "threads": spec.threads, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **dict(ex.get("provenance", {})),
    }
    fields = {k: ex[k] for k in _CARD_KEYS if k in ex}
    fields.setdefault("task", spec.task)
    fields.update(metrics=metrics, provenance=provenance)
    h, w = (int(v) for v in ex.get("example_hw", (cfg.img_size, cfg.img_size)))
    example = torch.zeros(2, cfg.in_chans, h, w)
    if ex.get("explain"):
        if ex["explain"] != "rollout":
            raise JobError(f"job spec: export.explain must be 'rollout', got {ex['explain']!r}")
        from .explain import export_rollout

        out.mkdir(parents=True, exist_ok=True)
        fields["extra"] = {"explain": export_rollout(model, example, out)}
    card = export_onnx(model, example, out, fields, latency_runs=int(ex.get("latency_runs", 100)))
    return card, out


def train_job(job: JobSpec, on_event: EventFn, cancel: CancelToken) -> str:
    """Train; if the spec has an `export` table, export the result and emit "artifact" then "finished"."""
    spec = TrainSpec.from_job(job)
    res = loop.train(spec, on_event, cancel, emit_finished=not spec.export)
    if res.status != "finished" or not spec.export:
        return res.status
    return _export_and_finish(res.model, res.config, spec, res.train_seconds, res.metrics, on_event)


def _export_and_finish(model: VisionTransformer, cfg: ViTConfig, spec: TrainSpec, seconds: float,
                       metrics: dict[str, float], on_event: EventFn, export: dict[str, Any] | None = None) -> str:
    card, out = export_trained(model, cfg, spec, train_seconds=seconds, val_metrics=metrics, export=export)
    on_event(ProgressEvent("artifact", path=str(out), message=f"model {card.id} exported to {out}"))
    values = {m["name"]: float(m["value"]) for m in card.metrics if isinstance(m.get("value"), (int, float))}
    values.update(latency_ms=float(card.latency.get("ms", 0.0)), params=float(card.params),
                  bytes=float(card.bytes), train_seconds=float(seconds))
    on_event(ProgressEvent("finished", path=str(out), values=values, message=f"{card.id}: {out}"))
    return "finished"


def export_from_checkpoint(ckpt_path: str | Path, out_dir: str | Path | None, on_event: EventFn | None = None,
                           **export_overrides: Any) -> str:
    """Rebuild the model from a checkpoint and export it (card fields from the checkpoint's spec.export)."""
    ckpt = load_checkpoint(ckpt_path)
    model, cfg, _ = model_from_checkpoint(ckpt)
    raw = dict(ckpt.get("spec", {}))
    known = set(TrainSpec.__dataclass_fields__)
    spec = TrainSpec(**{k: v for k, v in raw.items() if k in known})
    export = {**spec.export, **{k: v for k, v in export_overrides.items() if v is not None}}
    if out_dir is not None:
        export["out_dir"] = str(out_dir)
    if ckpt.get("step") != ckpt.get("total"):
        log.warning("%s: checkpoint is from step %s of %s (an unfinished run)", ckpt_path, ckpt.get("step"),
                    ckpt.get("total"))
    return _export_and_finish(model, cfg, spec, float(ckpt.get("train_seconds", 0.0)),
                              dict(ckpt.get("metrics", {})), on_event or (lambda ev: None), export)


def export_job(job: JobSpec, on_event: EventFn, cancel: CancelToken) -> str:
    """params.checkpoint given: export it to params.export.out_dir (or out_dir/model); otherwise train, then
    export (params.export required)."""
    params = dict(job.params)
    ckpt = params.pop("checkpoint", None)
    if ckpt:
        on_event(ProgressEvent("started", message=f"exporting {ckpt}"))
        export = dict(params.get("export", {}))
        out = export.pop("out_dir", None) or (Path(job.out_dir) / "model" if job.out_dir else None)
        return export_from_checkpoint(ckpt, out, on_event, **export)
    if not params.get("export"):
        raise JobError("job spec: an 'export' job needs params.checkpoint or a params.export table")
    return train_job(job, on_event, cancel)


def validate_train(job: JobSpec) -> None:
    spec = TrainSpec.from_job(job)
    fn = resolve_entry(spec.data["entry"])
    check_call_params(fn, dict(spec.data.get("params", {})), "job spec: params.data.params", JobError)
    heldout = spec.export.get("heldout")
    if heldout is not None:
        check_fields(heldout, {"entry": "str", "seed": "int", "params": "dict"}, "job spec: params.export.heldout",
                     JobError)
        held_fn = resolve_entry(heldout["entry"]) if "entry" in heldout else fn
        check_call_params(held_fn, dict(heldout.get("params", {})), "job spec: params.export.heldout.params",
                          JobError)


def validate_export(job: JobSpec) -> None:
    params = dict(job.params)
    ckpt = params.get("checkpoint")
    if ckpt:
        if not Path(ckpt).is_file():
            raise JobError(f"{ckpt}: no such checkpoint")
        return
    if not params.get("export"):
        raise JobError("job spec: an 'export' job needs params.checkpoint or a params.export table")
    validate_train(job)
