"""Compress a user's CLIP checkpoint (job kind "app.train.clip_compress_job:run", the wizard's "Compress a CLIP
model"): the teacher's embeddings of the captioned images, a student inheriting the teacher's weights, affinity
mimicking, both scored on validation captions, the student written as a text-search model folder."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.card import parse_card, write_card
from app.core.errors import BadInput, Cancelled, JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.validate import check_fields
from app.core.wizard_clip import KS, PRESETS, read_captions, student_config

from .clip_convert import build_model, load_checkpoint, to_open_clip_keys, write_folder
from .clip_distill import inherit, train
from .clip_model import CLIP, ClipConfig
from .loop import EventFn

PARAMS = {"teacher": "str", "captions": "str", "images": "str", "val_captions": "str", "val_images": "str",
          "preset": "str", "act": "str", "steps": "int", "batch_size": "int", "lr": "float", "threads": "int",
          "model_id": "str", "license": "str", "description": "str", "latency_runs": "int",
          "val_fraction": "float"}
REQUIRED = ("teacher", "captions", "images")
MODEL_DIR = "model"
EMBED_BATCH = 64
MIN_IMAGES = 4


def validate(job: JobSpec) -> None:
    """Types, required inputs and the captioned data (rows well formed, every image present), before anything
    heavy runs; JobError with one line."""
    p = job.params
    check_fields(p, PARAMS, "job spec: params", JobError)
    missing = [k for k in REQUIRED if not p.get(k)]
    if missing:
        raise JobError(f"job spec: params.{missing[0]} is required (the teacher checkpoint, captions JSON and "
                       "images folder)")
    if p.get("preset", "half") not in PRESETS:
        raise JobError(f"job spec: params.preset must be one of {', '.join(PRESETS)}")
    if p.get("act", "gelu") not in ("gelu", "quick_gelu"):
        raise JobError("job spec: params.act must be gelu or quick_gelu")
    if int(p.get("steps", 300)) < 1 or int(p.get("batch_size", 32)) < 2 or float(p.get("lr", 5e-4)) <= 0:
        raise JobError("job spec: steps must be positive, batch_size at least 2 and lr above 0")
    if not Path(p["teacher"]).expanduser().is_file():
        raise JobError(f"{p['teacher']}: no such checkpoint file")
    try:
        read_captions(p["captions"], p["images"])
        if p.get("val_captions"):
            read_captions(p["val_captions"], p.get("val_images") or p["images"])
    except BadInput as e:
        raise JobError(str(e)) from None


def load_teacher(path: str | Path, act: str = "gelu") -> tuple[CLIP, dict[str, Any]]:
    """The teacher CLIP from an open_clip / TinyCLIP checkpoint, and where it came from (name, sha256, layout)."""
    p = Path(path).expanduser()
    sd, layout = to_open_clip_keys(load_checkpoint(p))
    model = build_model(sd, str(p), act=act)
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return model, {"checkpoint": p.name, "checkpoint_sha256": h.hexdigest(), "layout": layout, "activation": act}


def load_pairs(rows: list[dict[str, str]], names: list[str], folder: Path, size: int, context: int,
               cancel: CancelToken, on_event: EventFn, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images float16 [N,3,S,S] preprocessed as CLIP does, caption tokens [M,ctx], (image, caption) pairs [M,2])."""
    from plugins.textsearch.preprocess import load_rgb, resize_crop, to_tensor
    from plugins.textsearch.tokenizer import load_tokenizer

    imgs = np.empty((len(names), 3, size, size), np.float16)
    for i, name in enumerate(names):
        cancel.check()
        imgs[i] = to_tensor(resize_crop(load_rgb(folder / name), size))
        if (i + 1) % 100 == 0 or i + 1 == len(names):
            on_event(ProgressEvent("progress", message=f"{what}: read {i + 1}/{len(names)} images"))
    index = {n: i for i, n in enumerate(names)}
    tokens = load_tokenizer()([r["caption"] for r in rows], context)
    pairs = np.array([[index[r["image"]], j] for j, r in enumerate(rows)], np.int64)
    return torch.from_numpy(imgs), torch.from_numpy(tokens), torch.from_numpy(pairs)


def subset(data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], keep: np.ndarray
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The images `keep` (indices) with their captions, re-indexed."""
    imgs, toks, pairs = data
    new = {int(i): j for j, i in enumerate(keep)}
    rows = [r for r in range(pairs.shape[0]) if int(pairs[r, 0]) in new]
    sub = torch.tensor([[new[int(pairs[r, 0])], j] for j, r in enumerate(rows)], dtype=torch.int64)
    return imgs[torch.from_numpy(keep)], toks[rows], sub


@torch.no_grad()
def embed(model: CLIP, images: torch.Tensor, tokens: torch.Tensor, cancel: CancelToken) -> tuple[torch.Tensor,
                                                                                                 torch.Tensor]:
    """Unit image and caption embeddings, in batches, cancellable between batches."""
    model.eval()
    img, txt = [], []
    for i in range(0, images.shape[0], EMBED_BATCH):
        cancel.check()
        img.append(torch.nn.functional.normalize(model.encode_image(images[i:i + EMBED_BATCH].float()), dim=-1))
    for i in range(0, tokens.shape[0], 4 * EMBED_BATCH):
        cancel.check()
        txt.append(torch.nn.functional.normalize(model.encode_text(tokens[i:i + 4 * EMBED_BATCH]), dim=-1))
    return torch.cat(img), torch.cat(txt)


def recall_of(model: CLIP, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cancel: CancelToken
              ) -> dict[str, float]:
    """{"t2i_R@1": …, "i2t_R@10": …} in percent on (images, tokens, pairs)."""
    from plugins.textsearch.evaluate import recall

    img, txt = embed(model, data[0], data[1], cancel)
    res = recall((txt @ img.T).numpy(), data[2][:, 0].numpy())
    return {f"{d}_R@{k}": float(res[d][str(k)]) for d in ("t2i", "i2t") for k in KS}


def n_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def teacher_onnx(teacher: CLIP, out: Path, runs: int) -> dict[str, Any]:
    """The teacher exported as the app would run it: ONNX bytes and image/text encoder latency (then deleted)."""
    tmp = Path(tempfile.mkdtemp(prefix=".teacher-", dir=out))
    try:
        card = write_folder(teacher, tmp / "teacher", "teacher", {"checkpoint": "teacher"}, latency_runs=runs)
        lat = dict(card.get("latency", {}))
        return {"onnx_bytes": int(sum(a["bytes"] for a in card["artifacts"])),
                **{k: lat[k] for k in ("image_ms", "text_ms") if k in lat}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _validation(p: dict[str, Any], train_rows: tuple, seed: int, size: int, context: int, cancel: CancelToken,
                on_event: EventFn) -> tuple[tuple, tuple, str]:
    """(training data, validation data, description): the validation captions given, else a held-out tenth of
    the training images (by seed)."""
    rows, names, data = train_rows
    if p.get("val_captions"):
        vfolder = Path(p.get("val_images") or p["images"]).expanduser()
        vrows, vnames = read_captions(p["val_captions"], vfolder)
        val = load_pairs(vrows, vnames, vfolder, size, context, cancel, on_event, "validation")
        return data, val, f"{Path(p['val_captions']).name}: {len(vnames)} images, {len(vrows)} captions"
    n = len(names)
    if n < 2 * MIN_IMAGES:
        raise BadInput(f"{p['captions']}: {n} images; without validation captions at least {2 * MIN_IMAGES} are "
                       "needed (a tenth is held out to score the models)")
    n_val = max(MIN_IMAGES, round(float(p.get("val_fraction", 0.1)) * n))
    order = np.random.default_rng(seed).permutation(n)
    val = subset(data, np.sort(order[:n_val]))
    return subset(data, np.sort(order[n_val:])), val, \
        f"{n_val} of the {n} images of {Path(p['captions']).name} held out (seed {seed}), {val[1].shape[0]} captions"


def run(job: JobSpec, on_event: EventFn, cancel: CancelToken) -> str:
    """params: teacher, captions, images, val_captions?, val_images?, preset, act, steps, batch_size, lr, threads,
    model_id, license, description, latency_runs, val_fraction. Writes <out_dir>/model; emits one "finished"."""
    p = dict(job.params)
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / MODEL_DIR
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest}: exists and is not empty; choose another output folder")
    torch.set_num_threads(max(1, int(p.get("threads", 2))))
    torch.manual_seed(job.seed)
    steps, preset = int(p.get("steps", 300)), str(p.get("preset", "half"))
    t0 = time.perf_counter()
    on_event(ProgressEvent("started", message=f"compressing {Path(p['teacher']).name} ({PRESETS[preset][0]})"))
    last = {"step": 0}
    try:
        teacher, source = load_teacher(p["teacher"], str(p.get("act", "gelu")))
        tcfg: ClipConfig = teacher.cfg
        scfg = ClipConfig(**student_config(tcfg.to_dict(), preset))
        rows, names = read_captions(p["captions"], p["images"])
        data = load_pairs(rows, names, Path(p["images"]).expanduser(), tcfg.image_size, tcfg.context_length,
                          cancel, on_event, "training")
        (images, tokens, pairs), val, val_desc = _validation(p, (rows, names, data), job.seed, tcfg.image_size,
                                                             tcfg.context_length, cancel, on_event)
        on_event(ProgressEvent("progress", message=f"teacher embeddings of {images.shape[0]} images and "
                               f"{tokens.shape[0]} captions"))
        t_img, t_txt = embed(teacher, images, tokens, cancel)
        student = inherit(teacher, scfg)
        on_event(ProgressEvent("progress", message=f"student inherits from the teacher: {n_params(student):,} of "
                               f"{n_params(teacher):,} parameters; affinity mimicking for {steps} steps"))

        def log(step: int, loss: float) -> None:
            last["step"] = step + 1
            on_event(ProgressEvent("progress", step=step + 1, total=steps, values={"loss": loss}))

        run_info = train(student, images, tokens, pairs, steps, min(int(p.get("batch_size", 32)), images.shape[0]),
                         float(p.get("lr", 5e-4)), mode="affinity", teacher_img=t_img, teacher_txt=t_txt,
                         seed=job.seed, warmup=max(1, min(50, steps // 10)), log=log, stop=lambda: cancel.cancelled,
                         log_every=max(1, min(20, steps // 50)))
        cancel.check()
        on_event(ProgressEvent("progress", message="scoring the teacher and the student on " + val_desc))
        scores = {"student": recall_of(student, val, cancel), "teacher": recall_of(teacher, val, cancel)}
        on_event(ProgressEvent("metric", step=run_info["steps"], total=steps,
                               values={**scores["student"], **{f"teacher_{k}": v
                                                               for k, v in scores["teacher"].items()}}))
        runs = int(p.get("latency_runs", 20))
        on_event(ProgressEvent("progress", message="exporting the teacher and the student to ONNX"))
        t_onnx = teacher_onnx(teacher, out, runs)
        cancel.check()
    except Cancelled:
        on_event(ProgressEvent("cancelled", step=last["step"], total=steps,
                               message="cancelled; nothing was written"))
        return "cancelled"
    seconds = time.perf_counter() - t0
    provenance = {**source, "wizard": True, "method": "weight inheritance + affinity mimicking",
                  "preset": preset, "steps": run_info["steps"], "batch_size": int(p.get("batch_size", 32)),
                  "lr": float(p.get("lr", 5e-4)), "seed": int(job.seed),
                  "training_data": f"{Path(p['captions']).name} ({images.shape[0]} images, {tokens.shape[0]} "
                                   "captions)",
                  "validation": val_desc, "validation_captions": int(val[1].shape[0]),
                  "training_seconds": round(seconds, 1), "final_loss": run_info["final_loss"],
                  "teacher": {"checkpoint": source["checkpoint"], "checkpoint_sha256": source["checkpoint_sha256"],
                              "params": n_params(teacher), **t_onnx, "arch": tcfg.to_dict()}}
    mid = str(p.get("model_id") or job.name or "clip-student")
    desc = str(p.get("description") or f"{mid}: compressed from {source['checkpoint']} ({PRESETS[preset][0]}) "
               "with the Vitascope wizard (weight inheritance + affinity mimicking)")
    card = write_folder(student, dest, mid, provenance, license=str(p.get("license") or "as the teacher checkpoint"),
                        description=desc, latency_runs=runs)
    card["metrics"] = list(card.get("metrics", [])) + [
        {"name": f"{who}{k}", "value": v, "dataset": val_desc}
        for who, res in (("", scores["student"]), ("teacher_", scores["teacher"])) for k, v in res.items()]
    write_card(dest, parse_card(card, str(dest / "card.toml"), dest))
    values = {**scores["student"], **{f"teacher_{k}": v for k, v in scores["teacher"].items()},
              "params": float(n_params(student)), "teacher_params": float(n_params(teacher)),
              "latency_ms": float(card.get("latency", {}).get("image_ms", 0.0)),
              "teacher_latency_ms": float(t_onnx.get("image_ms", 0.0)), "train_seconds": round(seconds, 1)}
    on_event(ProgressEvent("artifact", path=str(dest), message=f"student model written to {dest}"))
    on_event(ProgressEvent("finished", path=str(dest), values=values, message=f"{mid}: {dest}"))
    return "finished"
