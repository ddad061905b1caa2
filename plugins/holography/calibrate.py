"""Calibration: fine-tune the shipped autofocus model on a labelled z-stack from the user's own microscope, measure
vit+refine's systematic offset on it, and write a new model folder (ONNX + card + checkpoint.pt). Importable without
torch; app.train is imported lazily."""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.core.card import ModelCard, read_card, sha256_file, write_card
from app.core.errors import BadInput, ModelError, VitascopeError
from app.core.jobs import CancelToken, ProgressEvent
from app.core.validate import check_output_dir
from app.core.zoo import open_folder

from .autofocus import (
    TASK,
    Autofocus,
    card_optics,
    crop_source,
    crops_to_input,
    model_field,
    preprocess_params,
    select_crops,
    select_model,
)
from .background import NO_BACKGROUND_NOTE, self_background
from .cardtable import model_optics, with_optics
from .hdf5 import read_stack
from .optics import Optics, optics_mismatch
from .reconstruct import Reconstructor

log = logging.getLogger(__name__)
DEFAULT_BASE = "holo-autofocus-tvit"
CHECKPOINT_FILE = "checkpoint.pt"
HELDOUT_EVERY = 4  # every 4th frame (in z order) is held out for the card's metrics
TRAIN_CROPS = 8  # crops per training frame
VALIDATE_EVERY = 50  # fine-tuning steps between checks on the validation frames (the best weights are kept)
MIN_VALIDATION_FRAMES = 2  # fewer (stacks under ~11 frames): no validation, the last weights are kept
# vit+refine's physics search lands a sample-dependent distance from the true plane (thick phase objects, the in-line
# term of overlapping sidebands: bench/holo_focus_bias.py). On one microscope and one kind of sample that offset is
# systematic, so calibration measures it on the stack's training frames and the card's [refine] bias_m removes it —
# only when it is clearly there: at least this large, with at least this share of the frames on its side.
MIN_REFINE_BIAS_M = 0.1e-6
BIAS_SIGN_SHARE = 2 / 3
EventFn = Callable[[ProgressEvent], None]


def _base_folder(base: str | Path | None, optics: Optics) -> Path:
    """The base model folder: a folder, an installed id, or (None) the installed model matching the optics."""
    from app.core.zoo import Zoo

    zoo = Zoo()
    if base is None:
        card, _ = select_model(zoo.cards(TASK), optics)
        base = card.id if card is not None else DEFAULT_BASE
    return zoo.resolve(base, TASK)


def _split(z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): every HELDOUT_EVERY-th frame in z order, phase chosen by the seed."""
    order = np.argsort(z, kind="stable")
    phase = int(np.random.default_rng(seed).integers(HELDOUT_EVERY))
    held = np.zeros(len(z), bool)
    held[order[phase::HELDOUT_EVERY]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def _crops(rec: Reconstructor, frames: np.ndarray, z: np.ndarray, pp: dict[str, Any], n: int,
           rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    cache: dict = {}
    for frame, zi in zip(frames, z, strict=True):
        _, f = model_field(rec, frame, pp)
        f = crop_source(rec, frame, pp, f, cache)
        xs.append(crops_to_input(f, select_crops(f, pp, n, rng=rng), pp))
        ys.append(np.full(n, zi / float(pp["output_scale_m"]), np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def _frame_errors(pred_crops: np.ndarray, y: np.ndarray, n: int, scale: float) -> np.ndarray:
    """Per-frame |median of the crops' predictions − z| in µm (crops are stored frame by frame, n each)."""
    pred = np.median(pred_crops.reshape(-1, n), axis=1)
    return np.abs(pred - y.reshape(-1, n)[:, 0]) * scale * 1e6


def _refine_predictions(folder: Path, stack: Any, idx: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """vit+refine's z (m) for frames `idx` of the stack with the model in `folder`, before any bias correction, and
    the z range its results are clipped to."""
    rec = Reconstructor(stack.optics, stack.background,
                        self_background=self_background(stack.optics, stack.background))
    af = Autofocus(rec, open_folder(folder, threads=2), "vit+refine")
    af.refine_params["bias_m"] = 0.0
    return np.array([af.predict(stack.holograms[i]).z_m for i in idx]), af.z_range


def refine_bias(errors_m: np.ndarray) -> float:
    """The offset to subtract from vit+refine's z, from its signed errors on the training frames: their median when
    |median| ≥ MIN_REFINE_BIAS_M and at least BIAS_SIGN_SHARE of the errors share its sign, else 0."""
    e = np.asarray(errors_m, np.float64)
    if e.size == 0:
        return 0.0
    b = float(np.median(e))
    if abs(b) < MIN_REFINE_BIAS_M or float(np.mean(np.sign(e) == np.sign(b))) < BIAS_SIGN_SHARE:
        return 0.0
    return b


def _model_id(out_dir: Path, base_id: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", out_dir.name.lower()).strip("-._")
    return name[:64] if name and re.match(r"^[a-z0-9]", name) else f"{base_id}-calibrated"[:64]


def calibrate(stack_path: str | Path, out_dir: str | Path, base_model_dir_or_id: str | Path | None = DEFAULT_BASE,
              steps: int = 300, seed: int = 0, on_event: EventFn | None = None, cancel: CancelToken | None = None,
              lr: float = 1e-4, batch_size: int = 32) -> ModelCard:
    """Fine-tune the base autofocus model on a z-stack (HDF5 with /z_m, optics attributes, ideally /background):
    every 4th frame in z order is held out for the card's metrics, and a quarter of the rest validates the
    fine-tuning (the weights with the lowest validation error are kept, the base's included); then vit+refine's
    offset is measured on the training frames (card [refine] bias_m). Base None = the installed model matching the
    stack's optics (else the shipped one). Writes out_dir (model.onnx, card.toml, golden.npz, checkpoint.pt) and
    returns its card. BadInput/ModelError for unusable inputs."""
    emit = on_event or (lambda ev: None)
    cancel = cancel or CancelToken()
    stack_path, out_dir = Path(stack_path), Path(out_dir)
    if steps < 1:
        raise BadInput(f"calibrate: steps must be ≥ 1, got {steps}")
    stack = read_stack(stack_path)
    if stack.z_m is None:
        raise BadInput(f"{stack_path}: no /z_m (stage positions); calibration needs a labelled z-stack")
    if len(stack.holograms) < 4:
        raise BadInput(f"{stack_path}: {len(stack.holograms)} frames; calibration needs at least 4")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BadInput(f"{out_dir}: exists and is not empty; choose a new --out folder")
    base_dir = _base_folder(base_model_dir_or_id, stack.optics)
    base = read_card(base_dir)
    if base.task != TASK:
        raise ModelError(f"{base_dir}: model {base.id!r} is a {base.task!r} model, not {TASK}")
    ckpt_path = base_dir / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        raise ModelError(f"{base_dir}: no {CHECKPOINT_FILE}; this model cannot be fine-tuned")
    base_mode = model_optics(base).get("mode")
    if stack.optics.mode != base_mode:
        raise BadInput(f"{stack_path}: a {stack.optics.mode} stack cannot calibrate the {base_mode} "
                       f"model {base.id!r}")

    stack.optics, sign_note = _measure_sideband(stack, stack_path)

    from app.core.errors import Cancelled
    from app.train import finetune  # imports torch

    pp = preprocess_params(base)
    scale = float(pp["output_scale_m"])
    z = np.asarray(stack.z_m, np.float64)
    tr, ho = _split(z, seed)
    rng = np.random.default_rng(seed)
    # without a background hologram the fields are fitted per frame, as autofocus will fit them on this microscope
    rec = Reconstructor(stack.optics, stack.background,
                        self_background=self_background(stack.optics, stack.background))
    emit(ProgressEvent("started", step=0, total=steps,
                       message=f"calibrating {base.id} on {stack_path.name}: {len(tr)} frames, {len(ho)} held out"))
    emit(ProgressEvent("progress", step=0, total=steps, message=sign_note))
    if rec.background_source == "frame":
        emit(ProgressEvent("progress", step=0, total=steps, message=NO_BACKGROUND_NOTE))
    fit_i, val_i = _split(z[tr], seed + 1)  # the training frames again: fitted ones, and a validation quarter
    fit, val = tr[fit_i], tr[val_i]
    if len(val) < MIN_VALIDATION_FRAMES:  # too few frames to validate on: fit them all, keep the last weights
        fit, val = tr, tr[:0]
    x_tr, y_tr = _crops(rec, stack.holograms[fit], z[fit], pp, TRAIN_CROPS, rng)
    n_eval = int(pp["n_crops"])
    x_val, y_val = _crops(rec, stack.holograms[val], z[val], pp, n_eval, None) if len(val) else (None, None)
    x_ho, y_ho = _crops(rec, stack.holograms[ho], z[ho], pp, n_eval, None)

    ft = finetune.load(ckpt_path)
    before = _frame_errors(finetune.predict(ft.model, x_ho), y_ho, n_eval, scale)
    bs = min(batch_size, len(x_tr))

    def validate() -> float:
        return float(_frame_errors(finetune.predict(ft.model, x_val), y_val, n_eval, scale).mean())

    def on_step(step: int, loss: float) -> None:
        if step % 10 == 0 or step == steps:
            emit(ProgressEvent("progress", step=step, total=steps, values={"loss": loss}))

    try:
        finetune.finetune_regression(ft, x_tr, y_tr, steps, lr=lr, batch_size=bs, seed=seed, on_step=on_step,
                                     cancel=cancel, validate=validate if len(val) else None,
                                     validate_every=VALIDATE_EVERY)
    except Cancelled:
        emit(ProgressEvent("cancelled", total=steps, message="calibration cancelled"))
        raise VitascopeError(f"calibration cancelled before step {steps}; nothing was written") from None
    done, seconds = ft.steps, ft.seconds
    after = _frame_errors(finetune.predict(ft.model, x_ho), y_ho, n_eval, scale)
    emit(ProgressEvent("metric", step=done, total=steps,
                       values={"heldout_mae_um_before": float(before.mean()), "heldout_mae_um": float(after.mean())}))

    o = stack.optics
    optics = {"mode": o.mode, "wavelength_m": o.wavelength_m, "pixel_size_m": o.pixel_size_m, "na": o.na,
              "z_range_m": list(model_optics(base).get("z_range_m", o.z_range_m)), "medium_index": o.medium_index,
              "calibrated_z_span_m": [float(z.min()), float(z.max())], "preset": model_optics(base).get("preset")}
    if o.mode == "offaxis" and o.sideband in ("+1", "-1"):
        optics["sideband"] = o.sideband
    mism = optics_mismatch(o, card_optics(base))
    where = f"{stack_path.name} held-out frames (every {HELDOUT_EVERY}th in z order, seed {seed})"
    metrics = [
        {"name": "vit_mae_um", "value": round(float(after.mean()), 4), "dataset": where, "seed": seed, "n": len(ho)},
        {"name": "vit_max_um", "value": round(float(after.max()), 4), "dataset": where, "seed": seed, "n": len(ho)},
        {"name": "base_vit_mae_um", "value": round(float(before.mean()), 4), "dataset": where, "seed": seed,
         "n": len(ho)},
    ]
    base_sha = base.sha256
    provenance = {
        "calibrated_from": base.id, "base_sha256": base_sha, "base_version": base.version,
        "stack": stack_path.name, "stack_sha256": sha256_file(stack_path), "frames_train": int(len(tr)),
        "frames_heldout": int(len(ho)), "frames_validation": int(len(val)), "steps": int(steps),
        "kept_step": int(ft.kept_step if ft.kept_step is not None else done),
        "validation_mae_um": "; ".join(f"step {k} {v:.3f}" for k, v in ft.validation),
        "lr": lr, "batch_size": bs, "seed": int(seed),
        "loss": "logcosh", "augment": ",".join(ft.augment), "training_seconds": round(seconds, 2),
        "torch": ft.torch_version,
        "checkpoint": CHECKPOINT_FILE, "optics_differences_from_base": "; ".join(mism) or "none",
        "sideband": sign_note,
        "background": rec.background_source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    mid = _model_id(out_dir, base.id)
    fields = {"id": mid, "task": TASK, "version": "1.0.0", "license": base.license,
              "description": (f"{base.id} fine-tuned on the z-stack {stack_path.name} ({len(tr)} frames, {steps} "
                              f"steps); held-out MAE {after.mean():.2f} µm (base {before.mean():.2f} µm)."
                              + (f" Object wave in sideband {o.sideband} (measured before any offset)."
                                 if "sideband" in optics else "")),
              "preprocess": dict(base.preprocess), "metrics": metrics, "provenance": provenance,
              "extra": with_optics({"refine": dict(base.extra["refine"])} if base.extra.get("refine") else {}, optics)}
    tmp = out_dir.with_name(out_dir.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    card = finetune.export_finetuned(ft, tmp, fields, calibrated_from=base.id)
    card = _add_refine_bias(tmp, card, stack, z, tr, ho, where, seed, emit, done, steps)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        out_dir.rmdir()  # empty (checked above)
    tmp.replace(out_dir)
    emit(ProgressEvent("artifact", path=str(out_dir), message=f"calibrated model {card.id} written to {out_dir}"))
    emit(ProgressEvent("finished", step=done, total=steps, path=str(out_dir),
                       values={"heldout_mae_um": float(after.mean()), "train_seconds": seconds}))
    return card


def _measure_sideband(stack: Any, stack_path: Path) -> tuple[Optics, str]:
    """The stack's optics with the sideband (sign of z) measured from its stage positions (sideband.sign_from_stack)
    — before any offset is fitted, so a mirrored microscope is fixed by the sign, not by a bias. A stated sideband
    is kept when the stack cannot tell and overruled (with a note) when the stack says otherwise; neither: "+1"."""
    from .sideband import sign_from_stack

    o = stack.optics
    if o.mode != "offaxis":
        return o, "in-line: no sideband"
    stated = o.sideband if o.sideband in ("+1", "-1") else None
    try:
        fit = sign_from_stack(stack.holograms, stack.z_m, o, stack.background)
    except BadInput as e:
        side = stated or "+1"
        note = f"sideband {side} {'as stated by the stack' if stated else 'assumed'}: {e}"
        log.warning("%s: %s", stack_path, note)
        return o.with_(sideband=side), note
    note = fit.note
    if stated and stated != fit.sideband:
        note += f" (the stack stated {stated}; the measurement wins)"
    log.info("%s: %s", stack_path, note)
    return o.with_(sideband=fit.sideband), note


def _add_refine_bias(folder: Path, card: ModelCard, stack: Any, z: np.ndarray, tr: np.ndarray, ho: np.ndarray,
                     where: str, seed: int, emit: EventFn, done: int, steps: int) -> ModelCard:
    """Measure vit+refine with the calibrated model on the stack: the bias from the training frames (refine_bias),
    its effect on the held-out frames; both into the card ([refine] bias_m, metrics), which is rewritten."""
    emit(ProgressEvent("progress", step=done, total=steps, message="measuring vit+refine on the stack"))
    zs, (lo, hi) = _refine_predictions(folder, stack, np.concatenate([tr, ho]))
    z_tr, z_ho = zs[:len(tr)], zs[len(tr):]
    bias = refine_bias(z_tr - z[tr])
    raw = np.abs(z_ho - z[ho]) * 1e6
    fixed = np.abs(np.clip(z_ho - bias, lo, hi) - z[ho]) * 1e6
    n = len(ho)
    card.metrics += [
        {"name": "vit_refine_mae_um", "value": round(float(fixed.mean()), 4), "dataset": where, "seed": seed, "n": n,
         "note": f"with the calibrated refine bias {bias * 1e6:+.2f} µm"},
        {"name": "vit_refine_mae_um_uncorrected", "value": round(float(raw.mean()), 4), "dataset": where,
         "seed": seed, "n": n},
    ]
    card.extra["refine"] = {**card.extra.get("refine", {}), "bias_m": bias}
    card.provenance["refine_bias"] = (
        f"{bias * 1e6:+.3f} µm: median signed vit+refine error on the {len(tr)} training frames of the stack (applied "
        f"when ≥ {MIN_REFINE_BIAS_M * 1e6:g} µm with ≥ {BIAS_SIGN_SHARE:.0%} of them on its side; 0 = not applied)")
    card.description += (f" vit+refine held-out MAE {fixed.mean():.2f} µm (uncorrected {raw.mean():.2f} µm, "
                         f"refine bias {bias * 1e6:+.2f} µm).")
    write_card(folder, card)
    emit(ProgressEvent("metric", step=done, total=steps,
                       values={"refine_bias_um": bias * 1e6, "vit_refine_mae_um_uncorrected": float(raw.mean()),
                               "vit_refine_mae_um": float(fixed.mean())}))
    return card


# CLI -----------------------------------------------------------------------------------------------------------
def calibrate_cmd(args: argparse.Namespace) -> int:
    """CLI entry: 0 done, 2 + one line on stderr for bad input (missing torch, bad stack, unknown model...)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        sys.stderr.write("calibration needs the core library (torch), which this build does not include; "
                         "install vitascope[train]\n")
        return 2

    def show(ev: ProgressEvent) -> None:
        if ev.event in ("started", "artifact") or (ev.event == "progress" and (ev.step and ev.step % 50 == 0
                                                                               or ev.step == 0 and ev.message)):
            extra = " ".join(f"{k} {v:.4g}" for k, v in ev.values.items())
            sys.stderr.write(f"[{ev.event}] {ev.step}/{ev.total} {extra} {ev.message or ''}\n".replace("  ", " "))
        elif ev.event == "metric" and "heldout_mae_um_before" in ev.values:
            sys.stderr.write("held-out MAE (vit): base {:.2f} µm → calibrated {:.2f} µm\n".format(
                ev.values["heldout_mae_um_before"], ev.values["heldout_mae_um"]))
        elif ev.event == "metric" and "refine_bias_um" in ev.values:
            sys.stderr.write("held-out MAE (vit+refine): {:.2f} µm uncorrected → {:.2f} µm with the measured refine "
                             "bias {:+.2f} µm\n".format(ev.values["vit_refine_mae_um_uncorrected"],
                                                       ev.values["vit_refine_mae_um"], ev.values["refine_bias_um"]))

    try:
        steps, seed = int(getattr(args, "steps", 300)), int(getattr(args, "seed", 0))
        if steps < 1 or seed < 0:
            raise BadInput(f"--steps must be at least 1 and --seed at least 0, got {steps} and {seed}")
        check_output_dir(args.out)
        card = calibrate(args.stack, args.out, getattr(args, "model", None), steps, seed, show)
    except VitascopeError as e:
        sys.stderr.write(f"{e}\n")
        return 2
    background = card.provenance.get("background")
    warnings = [NO_BACKGROUND_NOTE] if background == "frame" else []
    for w in warnings:
        sys.stderr.write(f"vitascope: note: {w}\n")
    if getattr(args, "json", False):
        side = model_optics(card).get("sideband")
        doc: dict[str, Any] = {
            "model": card.id, "out": str(Path(args.out)), "background": background,
            "sideband": None if side is None else {"value": str(side), "source": card.provenance.get("sideband")},
            "heldout_mae_um": card.metric("vit_mae_um")}
        if warnings:
            doc["warnings"] = warnings
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(f"{card.id}: {Path(args.out)} (held-out MAE {card.metric('vit_mae_um'):.2f} µm)\n")
    return 0

