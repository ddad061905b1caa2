"""`compress`: teacher model folder (with checkpoint.pt) → depth-reparameterized student trained by distillation
→ optional int8 QDQ or fake-quant evaluation → a model folder whose card records lineage, held-out metrics, size,
params and latency."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.core import paths
from app.core.card import read_card
from app.core.errors import BadInput, JobError
from app.core.jobs import CancelToken, ProgressEvent

from . import loop
from .arch.vit import VisionTransformer, count_params
from .distill import RegressionDistill, USKDLoss, nkd_loss, soft_target_ce
from .export import export_onnx
from .loop import EventFn, TrainSpec
from .objectives import get_objective
from .teacher import CHECKPOINT_FILE, heldout_data, heldout_seed, load_teacher, resolve_model_dir

__all__ = ["CompressSpec", "compress", "distill_student", "heldout_data", "heldout_seed", "load_teacher",
           "resolve_model_dir"]

log = logging.getLogger(__name__)
DISTILL = ("kd", "nkd", "uskd")
PROGRESS_EVERY = 10  # distillation steps between progress events


@dataclass
class CompressSpec:
    """What `vitascope compress` does; `model` is a model id or a model folder."""

    model: str
    out: str
    reparam_depth: int = 0
    distill: str = ""  # "" (kd; regression: prediction + feature MSE) | kd | nkd | uskd | logits:DIR
    quant: str = ""  # "" | int8 | wXaY-METHOD (fake-quant evaluation, recorded on the card)
    steps: int = 200
    batch_size: int = 64
    lr: float = 5e-4
    temperature: float = 4.0
    calib_samples: int = 256
    seed: int = 0
    threads: int = 2
    id: str = ""
    latency_runs: int = 50
    quant_iters: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


def portable_dir(path: Path) -> str:
    """"jobs:REL" for a folder under the user's jobs folder (cards travel to other machines), else the path."""
    try:
        return "jobs:" + path.resolve().relative_to(paths.jobs_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def metrics_of(out: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """The metrics of the objective named `task` (the teacher's training task)."""
    return get_objective(task).metrics(out, y)


def calibration_set(x_train: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """n training samples drawn by a seeded permutation (deterministic) and its description for the card."""
    n = max(1, min(n, len(x_train)))
    idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:n]
    return x_train[idx], {"samples": int(n), "seed": int(seed), "source": "training split, seeded permutation"}


def _no_event(ev: ProgressEvent) -> None:
    pass


def distill_student(teacher: VisionTransformer, depth: int, spec: TrainSpec, cs: CompressSpec,
                    x: torch.Tensor, y: torch.Tensor, on_event: EventFn = _no_event,
                    cancel: CancelToken | None = None) -> tuple[VisionTransformer, dict[str, Any]]:
    """Branched student (reparam.py) trained `cs.steps` steps against the teacher with λ ramping 0 → 1, merged.
    Emits a "progress" event (values distill_loss, lambda) every PROGRESS_EVERY steps; raises Cancelled between
    steps once `cancel` is set (nothing is written)."""
    from .reparam import branched_from_teacher, lambda_at

    torch.manual_seed(cs.seed)
    student = branched_from_teacher(teacher, depth)
    teacher.eval()
    obj = spec.objective
    mode = cs.distill or obj.default_distill
    if mode.split(":", 1)[0] not in obj.distill_modes:
        raise BadInput(f"--distill {mode}: a {obj.name} model distils with {', '.join(obj.distill_modes)} "
                       "(or omit --distill)")
    store = None
    if mode.startswith("logits:"):
        from .logits_store import LogitStore

        store = LogitStore.open(mode.split(":", 1)[1])
        if store.n != len(x):
            raise BadInput(f"{store.path}: the store holds {store.n} samples but the training split has {len(x)}")
    elif mode not in (*DISTILL, "regression"):
        raise BadInput(f"--distill {mode!r}: expected kd, nkd, uskd or logits:STORE")
    extra_params: list[torch.nn.Parameter] = []
    uskd = reg = None
    if mode == "uskd":
        uskd = USKDLoss(teacher.config.width, teacher.config.num_outputs)
        extra_params = list(uskd.parameters())
    if mode == "regression":
        reg = RegressionDistill(teacher.config.width, teacher.config.width)
    opt = torch.optim.AdamW(list(student.parameters()) + extra_params, lr=cs.lr, weight_decay=0.05)
    batches = loop.Batches(len(x), cs.batch_size, cs.seed)
    student.train()
    last = float("nan")
    t0 = time.perf_counter()

    def batch_loss(step: int) -> torch.Tensor:
        student.set_lambda(lambda_at(step, cs.steps))
        idx = batches.indices(step)
        if store is not None:
            epoch = step // batches.per_epoch
            xb, target = store.batch(x, idx.numpy(), epoch % store.epochs)
            return soft_target_ce(student(xb), target)
        xb = loop.augment_batch(x[idx], spec.augment, cs.seed, step)
        yb = y[idx]
        with torch.no_grad():
            t_feat = teacher.forward_head(teacher.forward_features(xb), pre_logits=True)
            t_out = teacher.head(t_feat)
        s_feat = student.forward_head(student.forward_features(xb), pre_logits=True)
        s_out = student.head(s_feat)
        if mode == "kd":
            return obj.distill_loss(s_out, t_out, yb, cs.temperature)
        if mode == "nkd":
            return F.cross_entropy(s_out, yb) + nkd_loss(s_out, t_out, yb)
        if mode == "uskd":
            return F.cross_entropy(s_out, yb) + uskd(s_feat, s_out, yb)
        return reg(s_out, t_out, yb, s_feat, t_feat)

    def after(done: int, loss: torch.Tensor) -> None:
        nonlocal last
        last = loss.item()
        if (done - 1) % 50 == 0:
            log.info("distill step %d/%d λ=%.3f loss %.4g", done - 1, cs.steps, student.lam, last)
        if done % PROGRESS_EVERY == 0 or done == cs.steps:
            on_event(ProgressEvent("progress", step=done, total=cs.steps,
                                   values={"distill_loss": last, "lambda": float(student.lam)}))

    loop.run_steps(opt, list(student.parameters()), range(cs.steps), batch_loss,
                   lr=lambda step: cs.lr * 0.5 * (1 + np.cos(np.pi * step / max(1, cs.steps))), grad_clip=1.0,
                   stop=loop.cancel_stop(cancel), after=after)
    student.set_lambda(1.0)
    student.eval()
    merged = student.reparameterize()
    info = {"reparam_depth": depth, "branches": student.branches, "distill": mode, "steps": cs.steps,
            "batch_size": cs.batch_size, "lr": cs.lr, "final_loss": round(last, 6), "seed": cs.seed,
            "seconds": round(time.perf_counter() - t0, 2), "init": "branch k of block l = teacher layer l*K+k",
            "lambda_schedule": "0 until 10 %, cosine ramp to 1 at 70 % of the steps"}
    return merged, info


def compress(cs: CompressSpec, on_event: EventFn = _no_event, cancel: CancelToken | None = None) -> Path:
    """Run the compression steps of `cs`; returns the written model folder. Stage messages and distillation
    progress go to `on_event`; a set `cancel` raises Cancelled between steps and stages, before anything is
    written to `cs.out`."""

    def stage(message: str) -> None:
        if cancel is not None:
            cancel.check()
        log.info("%s", message)
        on_event(ProgressEvent("started", message=message))

    if not 32 <= cs.calib_samples <= 1024:
        raise BadInput(f"--calib-samples {cs.calib_samples}: calibration sets hold 32-1024 samples")
    torch.set_num_threads(cs.threads)
    src = resolve_model_dir(cs.model)
    teacher, spec, ckpt = load_teacher(src)
    tcard = read_card(src)
    out = Path(cs.out).expanduser().resolve()
    stage(f"loading the training and held-out data of {tcard.id}")
    x_train, y_train, _, _ = loop.load_data(spec.data, spec.seed, spec.task)
    x_held, y_held, where = heldout_data(spec)
    calib, calib_info = calibration_set(x_train, cs.calib_samples, cs.seed)
    steps: list[str] = []
    lineage: dict[str, Any] = {"teacher": tcard.id, "teacher_sha256": tcard.sha256, "teacher_dir": portable_dir(src),
                               "teacher_params": count_params(teacher), "seed": cs.seed}
    model = teacher
    if cs.reparam_depth:
        stage(f"distilling a depth-{cs.reparam_depth} student from the depth-{teacher.config.depth} teacher "
              f"({cs.steps} steps)")
        model, info = distill_student(teacher, cs.reparam_depth, spec, cs, x_train, y_train, on_event, cancel)
        steps.append(f"reparam{teacher.config.depth}to{cs.reparam_depth}+{info['distill']}")
        lineage["reparam"] = info
    elif cs.distill:
        raise BadInput("--distill trains a student: give --reparam-depth too")

    held_seed = heldout_seed(spec)

    def card_metrics(values: dict[str, float], suffix: str = "") -> list[dict[str, Any]]:
        return [{"name": k + suffix, "value": round(float(v), 6), "dataset": where, "seed": held_seed,
                 "n": int(len(x_held))} for k, v in values.items()]

    stage(f"evaluating on {len(x_held)} held-out samples")
    with torch.no_grad():
        fp_out = loop.predict(model, x_held).numpy()
    fp_metrics = metrics_of(fp_out, y_held.numpy(), spec.task)
    metrics = card_metrics(fp_metrics)
    qinfo: dict[str, Any] = {}
    if cs.quant and cs.quant != "int8":
        from .quant import parse_spec, quantize

        try:
            wb, ab, method = parse_spec(cs.quant)
        except ValueError as e:
            raise BadInput(str(e)) from None
        stage(f"fake-quantizing ({cs.quant})")
        qm = quantize(model, calib, method, wb, ab, iters=cs.quant_iters, seed=cs.seed)
        with torch.no_grad():
            q_out = loop.predict(qm, x_held).numpy()
        q_metrics = metrics_of(q_out, y_held.numpy(), spec.task)
        metrics += card_metrics(q_metrics, f"_{cs.quant.replace('-', '_')}")
        qinfo = {"spec": cs.quant, "simulated": True, "method": method, "wbits": wb, "abits": ab,
                 "note": "fake-quantized in torch for evaluation; model.onnx is the fp32 model"}
        steps.append(cs.quant)
    cfg = model.config
    new_id = cs.id or out.name
    provenance = {**lineage, "teacher_provenance": dict(tcard.provenance), "steps": steps, "calibration": calib_info,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": str(torch.__version__),
                  "checkpoint": "checkpoint.pt: fp32 torch weights of this (plain) model, for further compression"}
    fields: dict[str, Any] = {"id": new_id, "task": tcard.task, "version": tcard.version, "license": tcard.license,
                              "description": f"{tcard.description} — compressed: {', '.join(steps) or 'copy'}",
                              "labels": tcard.labels or None, "preprocess": tcard.preprocess or None,
                              "optics": tcard.optics or None, "metrics": metrics, "provenance": provenance}
    ex = spec.export if isinstance(spec.export, dict) else {}
    h, w = (int(v) for v in ex.get("example_hw", (cfg.img_size, cfg.img_size)))
    example = torch.zeros(2, cfg.in_chans, h, w)
    stage(f"exporting {new_id} to {out}" + (" (int8 QDQ)" if cs.quant == "int8" else ""))
    extra: dict[str, Any] = {"fake_quant": qinfo} if qinfo else {}
    if ex.get("explain") == "rollout" and cs.quant != "int8":
        from .explain import export_rollout

        out.mkdir(parents=True, exist_ok=True)
        extra["explain"] = export_rollout(model, example, out)
    if extra:
        fields["extra"] = extra
    if cs.quant != "int8":
        export_onnx(model, example, out, fields, latency_runs=cs.latency_runs)
        _save_student(model, spec, out)
        return out
    from .int8 import quantize_folder, run_onnx

    with tempfile.TemporaryDirectory(prefix="vitascope-fp32-") as tmp:
        fp_dir = Path(tmp) / "fp32"
        fp_card = export_onnx(model, example, fp_dir, {**fields, "id": new_id}, latency_runs=cs.latency_runs)
        if out.exists() and any(out.iterdir()):
            shutil.rmtree(out)
        q_metrics = metrics_of(run_onnx(fp_dir / "model.onnx", x_held.numpy(), fp_card.inputs[0].name),
                               y_held.numpy(), spec.task)
        provenance = {**provenance, "steps": steps + ["int8"], "fp32_latency_ms": fp_card.latency["ms"],
                      "fp32_bytes": fp_card.bytes}
        card = quantize_folder(fp_dir, out, calib.numpy(), latency_runs=cs.latency_runs,
                               card_updates={"provenance": provenance})
        i8 = metrics_of(run_onnx(out / "model.onnx", x_held.numpy(), card.inputs[0].name), y_held.numpy(),
                        spec.task)
    if ex.get("explain") == "rollout":  # the heatmap model stays fp32: it is run once per viewed ECG
        from .explain import export_rollout

        _add_extra(out, {"explain": export_rollout(model, example, out)})
    _rewrite_metrics(out, card_metrics(i8) + card_metrics(q_metrics, "_fp32"))
    _save_student(model, spec, out)
    return out


def _rewrite_metrics(out: Path, metrics: list[dict[str, Any]]) -> None:
    from app.core.card import parse_card, write_card

    card = read_card(out)
    data = card.to_dict()
    data["metrics"] = metrics
    write_card(out, parse_card(data, str(out / "card.toml")))


def _add_extra(out: Path, tables: dict[str, Any]) -> None:
    from app.core.card import write_card

    card = read_card(out)
    card.extra.update(tables)
    write_card(out, card)


def _save_student(model: VisionTransformer, spec: TrainSpec, out: Path) -> None:
    """checkpoint.pt next to the ONNX so the compressed model can be compressed/quantized further."""
    from dataclasses import asdict

    from .checkpoint import save_checkpoint

    try:
        save_checkpoint(out / CHECKPOINT_FILE, {"config": model.config.to_dict(), "model": model.state_dict(),
                                                "spec": asdict(spec), "step": 0, "total": 0})
    except JobError as e:
        log.warning("%s", e)
