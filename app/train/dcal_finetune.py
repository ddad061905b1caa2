"""Fine-tune a DCAL embedder on a user's labelled classes (job kind "app.train.dcal_finetune:run", the retrieval
task's wizard job): the parent's weights from its card's `checkpoint` artifact with new ID heads for the user's
classes, P×K training on the training classes, ONNX export, then the new model and its parent scored on the
held-out classes with the retrieval plug-in's protocol; both results go on the card.
CLI: `python -m app.train.dcal_finetune --parent ID|DIR --data DIR --out DIR [--steps N]`."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.card import Artifact, ModelCard, read_card, sha256_file, write_card
from app.core.entries import resolve_entry
from app.core.errors import BadInput, JobError, VitascopeError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.validate import check_fields

from .checkpoint import save_checkpoint
from .dcal import DcalConfig, DcalViT, dcal_loss
from .dcal_train import MEAN, STD, augment, export, pk_batch
from .loop import EventFn

TASK = "retrieval.embed"
CHECKPOINT_ROLE = "checkpoint"
CHECKPOINT_FILE = "checkpoint.pt"  # the DCAL layout: {"state", "cfg", "info"}
RESUME_FILE = "finetune_last.pt"
HEAD_KEYS = ("neck.classifier.weight", "glca_neck.classifier.weight")
EVALUATE = "plugins.retrieval.wizard_data:evaluate_model"
PARAMS = {"task": "str", "model_id": "str", "parent": "str", "data": "dict", "steps": "int", "batch_size": "int",
          "lr": "float", "backbone_lr": "float", "k": "int", "warmup_steps": "int", "weight_decay": "float",
          "threads": "int", "log_every": "int", "export": "dict", "eval_every": "int", "checkpoint_every": "int"}
EXPORT = {"id": "str", "task": "str", "version": "str", "license": "str", "description": "str", "out_dir": "str",
          "latency_runs": "int", "provenance": "dict", "recipe": "str", "heldout": "dict", "labels": "list"}


def validate(params: dict[str, Any]) -> None:
    """Types and required keys of the job's params; JobError (one line) otherwise."""
    check_fields(params, PARAMS, "job spec: params", JobError)
    check_fields(dict(params.get("export") or {}), EXPORT, "job spec: params.export", JobError)
    if not params.get("parent"):
        raise JobError("job spec: params.parent must name the zoo model to fine-tune (an id or its folder)")
    data = params.get("data") or {}
    if not isinstance(data.get("entry"), str):
        raise JobError("job spec: params.data.entry must name the data entry (the task's folder or simulator)")
    bad = [k for k in ("steps", "batch_size", "lr") if k in params and params[k] <= 0]
    if bad:
        raise JobError(f"job spec: params {', '.join(bad)} must be positive")


def load_parent(parent: str | Path) -> tuple[Path, ModelCard, dict[str, Any]]:
    """(folder, card, checkpoint) of the parent: an installed model id or a model folder whose card lists a
    `checkpoint` artifact (checked against its sha256 and size) in the DCAL layout."""
    from app.core.zoo import Zoo, check_artifact

    folder = Zoo().resolve(str(parent), TASK)
    card = read_card(folder)
    art = card.artifact(CHECKPOINT_ROLE)
    if art is None:
        raise JobError(f"{card.id}: its card lists no {CHECKPOINT_ROLE!r} artifact (the torch weights a fine-tune "
                       "starts from); it can be compared, not fine-tuned")
    check_artifact(folder, art)
    path = folder / art.file
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise JobError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state"), dict) or not isinstance(ckpt.get("cfg"), dict):
        raise JobError(f"{path}: not a DCAL checkpoint (needs 'state' and 'cfg')")
    return folder, card, ckpt


def build_model(ckpt: dict[str, Any], num_ids: int, seed: int) -> DcalViT:
    """The parent's architecture and weights with fresh ID heads of `num_ids` classes (seeded)."""
    try:
        cfg = DcalConfig(**{**ckpt["cfg"], "num_ids": int(num_ids)})
    except TypeError as e:
        raise JobError(f"checkpoint config is not a DCAL config ({e})") from None
    torch.manual_seed(seed)
    model = DcalViT(cfg)
    state = {k: v for k, v in ckpt["state"].items() if k not in HEAD_KEYS}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise JobError(f"checkpoint weights do not fit its config ({str(e).splitlines()[0][:160]})") from None
    wrong = sorted(set(missing) - set(HEAD_KEYS)) + sorted(unexpected)
    if wrong:
        raise JobError(f"checkpoint weights do not fit its config (e.g. {wrong[0]})")
    return model


def _optimizer(model: DcalViT, lr: float, backbone_lr: float, weight_decay: float) -> torch.optim.AdamW:
    heads = [p for n, p in model.named_parameters() if n in HEAD_KEYS]
    rest = [p for n, p in model.named_parameters() if n not in HEAD_KEYS]
    return torch.optim.AdamW([{"params": rest, "base": backbone_lr}, {"params": heads, "base": lr}], lr=lr,
                             weight_decay=weight_decay)


def finetune(model: DcalViT, x: np.ndarray, y: np.ndarray, photos: bool, params: dict[str, Any], seed: int,
             on_event: EventFn, cancel: CancelToken, resume: Path | None = None, note: str = ""
             ) -> tuple[str, dict[str, Any]]:
    """Train in place on (x normalised NCHW, labels 0..C-1); ("finished" | "cancelled", info). On cancel the
    state is saved to `resume` (if given) and a later call with that file continues from the same step. `note`
    is appended to the "started" message."""
    steps, batch = int(params.get("steps", 200)), int(params.get("batch_size", 64))
    lr = float(params.get("lr", 1e-3))
    backbone_lr = float(params.get("backbone_lr", lr / 10))
    n_ids = int(y.max()) + 1
    k = max(2, int(params.get("k", 4)))
    p = max(2, min(n_ids, batch // k))
    warmup = int(params.get("warmup_steps", max(1, steps // 10)))
    log_every = max(1, int(params.get("log_every", 10)))
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    opt = _optimizer(model, lr, backbone_lr, float(params.get("weight_decay", 0.05)))
    start = 1
    if resume is not None and resume.is_file():
        state = torch.load(resume, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        g.set_state(state["gen"])
        start = int(state["step"]) + 1
    by_id = [np.flatnonzero(y == i) for i in range(n_ids)]
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)) * STD + MEAN  # back to [0, 1] for augment
    yt = torch.from_numpy(y.astype(np.int64))
    real = torch.full((len(y),), bool(photos))
    on_event(ProgressEvent("started", step=start - 1, total=steps,
                           message=f"fine-tuning on {len(y)} images of {n_ids} classes ({p}×{k} batches)"
                                   + (f"; {note}" if note else "")))
    t0 = time.perf_counter()
    history: list[dict[str, float]] = []
    model.train()
    for step in range(start, steps + 1):
        if cancel.cancelled:
            if resume is not None:
                save_checkpoint(resume, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step - 1,
                                         "rng": rng.bit_generator.state, "gen": g.get_state()})
                on_event(ProgressEvent("checkpoint", step=step - 1, total=steps, path=str(resume)))
            on_event(ProgressEvent("cancelled", step=step - 1, total=steps,
                                   message=f"cancelled at step {step - 1}/{steps}"))
            return "cancelled", {}
        f = min(1.0, step / max(1, warmup)) * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.98 + 0.02)
        for grp in opt.param_groups:
            grp["lr"] = grp["base"] * f
        idx = torch.from_numpy(pk_batch(by_id, p, k, rng))
        xb = (augment(xt[idx], real[idx], g) - MEAN) / STD
        partner = torch.randperm(len(idx), generator=g) if model.cfg.pwca else None
        loss, parts = dcal_loss(model, model.forward_train(xb, partner), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            rec = {"loss": float(loss.detach()), "lr": lr * f, **parts}
            history.append({"step": step, **rec})
            on_event(ProgressEvent("progress", step=step, total=steps, values=rec))
    model.eval()
    info = {"seed": seed, "steps": steps, "p": p, "k": k, "lr": lr, "backbone_lr": backbone_lr,
            "training_seconds": round(time.perf_counter() - t0, 1), "n_train_images": int(len(y)),
            "n_train_ids": n_ids, "torch": str(torch.__version__), "threads": torch.get_num_threads(),
            "history": history[-5:], "arch": model.cfg.to_dict()}
    return "finished", info


def _load_split(data: dict[str, Any], size: int) -> Any:
    """The task's data entry (folder reader or simulator) called with the job's seed and params at `size` px."""
    fn = resolve_entry(data["entry"], "data entry")
    split = fn(seed=int(data.get("seed", 0)), **{**dict(data.get("params", {})), "size": size})
    x_train, y_train, x_val, y_val = (np.asarray(a) for a in split)
    if len(np.unique(y_train)) < 2 or len(y_val) < 2:
        raise BadInput("the data split has fewer than two training classes or two held-out images")
    return split


def _metrics_rows(m: Any, prefix: str, where: str, seed: int) -> list[dict[str, Any]]:
    vals = {"map": m.map, "minp": m.minp, **{f"cmc_rank{k}": v for k, v in m.cmc.items()},
            **{f"recall_at_{k}": v for k, v in m.recall.items()}}
    return [{"name": f"{prefix}{k}", "value": round(float(v), 6), "dataset": where, "seed": seed, "n": m.queries}
            for k, v in vals.items()]


def _record(m: Any) -> dict[str, Any]:
    return {"map": round(m.map, 6), "minp": round(m.minp, 6), "cmc": {k: round(v, 6) for k, v in m.cmc.items()},
            "recall": {k: round(v, 6) for k, v in m.recall.items()}, "queries": m.queries}


def compare_with_parent(new_dir: Path, parent_dir: Path, split: Any) -> tuple[Any, Any]:
    """(new, parent) RankMetrics on the held-out classes, both run with onnxruntime as the app runs them."""
    from app.core.zoo import open_folder

    evaluate = resolve_entry(EVALUATE, "evaluation entry")
    return (evaluate(open_folder(new_dir, threads=2), split), evaluate(open_folder(parent_dir, threads=2), split))


def run(job: JobSpec, on_event: EventFn, cancel: CancelToken) -> str:
    """params: parent (zoo id or folder), data {entry, seed, params}, steps, batch_size, lr, threads, export
    (card fields and out_dir; without it the job only trains, as the wizard's speed measurement does)."""
    p = dict(job.params)
    validate(p)
    torch.set_num_threads(int(p.get("threads", 2)))
    parent_dir, parent_card, ckpt = load_parent(p["parent"])
    size = int(ckpt["cfg"].get("img_size", 64))
    on_event(ProgressEvent("progress", message=f"reading data for {parent_card.id} ({size} px)"))
    split = _load_split(dict(p["data"]), size)
    x_train, y_train, x_val, y_val = (np.asarray(a) for a in split)
    skipped = list(getattr(split, "unreadable", []))
    note = ""
    if skipped:
        note = (f"skipped {len(skipped)} unreadable image(s): "
                + ", ".join(Path(f).name for f, _ in skipped[:5]) + ("…" if len(skipped) > 5 else ""))
    n_ids = int(y_train.max()) + 1
    model = build_model(ckpt, n_ids, int(job.seed))
    out = Path(job.out_dir or ".")
    resume = out / RESUME_FILE
    if not job.resume:
        resume.unlink(missing_ok=True)
    status, info = finetune(model, x_train, y_train, bool(getattr(split, "photos", False)), p, int(job.seed),
                            on_event, cancel, resume, note)
    if status != "finished":
        return status
    resume.unlink(missing_ok=True)
    ex = dict(p.get("export") or {})
    if not ex:
        on_event(ProgressEvent("finished", values={"train_seconds": info["training_seconds"]}))
        return "finished"
    return _export_and_compare(model, ckpt, info, p, ex, job, split, parent_dir, parent_card, on_event)


def _export_and_compare(model: DcalViT, parent_ckpt: dict[str, Any], info: dict[str, Any], p: dict[str, Any],
                        ex: dict[str, Any], job: JobSpec, split: Any, parent_dir: Path, parent_card: ModelCard,
                        on_event: EventFn) -> str:
    folder = Path(ex.get("out_dir") or Path(job.out_dir or ".") / "model")
    folder.mkdir(parents=True, exist_ok=True)
    record = split.record() if hasattr(split, "record") else {"seed": int(p["data"].get("seed", 0))}
    info = {**info, "parent": parent_card.id, "split": record}
    torch.save({"state": model.state_dict(), "cfg": model.cfg.to_dict(), "info": info}, folder / CHECKPOINT_FILE)
    data = dict(p["data"])
    provenance = {**dict(ex.get("provenance") or {}), "recipe": str(ex.get("recipe", "")),
                  "model": "DcalViT (fine-tuned)", "parent": parent_card.id, "parent_sha256": parent_card.sha256,
                  "seed": int(job.seed), "data": data["entry"], "data_seed": int(data.get("seed", 0)),
                  "data_params": dict(data.get("params", {})), "steps": info["steps"],
                  "batch_size": info["p"] * info["k"], "lr": info["lr"], "backbone_lr": info["backbone_lr"],
                  "loss": "ID cross-entropy (new BNNeck heads, label smoothing 0.1) + batch-hard triplet (margin 0.3), "
                          "uncertainty-weighted over SA/GLCA/PWCA",
                  "training_seconds": info["training_seconds"], "torch": info["torch"], "threads": info["threads"],
                  "n_train_images": info["n_train_images"], "n_train_ids": info["n_train_ids"],
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    fields = {"id": str(ex.get("id") or job.name or "retrieval-dcal-finetuned"),
              "version": str(ex.get("version", "1.0.0")), "license": str(ex.get("license", parent_card.license)),
              "description": str(ex.get("description") or f"{parent_card.id} fine-tuned on "
                                 f"{info['n_train_ids']} classes of the user's images"),
              "provenance": provenance}
    on_event(ProgressEvent("progress", message=f"exporting {fields['id']} to ONNX"))
    export(model, folder, fields)
    on_event(ProgressEvent("progress", message=f"evaluating {fields['id']} and {parent_card.id} on "
                                               f"{len(record.get('heldout_classes', [])) or 'the'} held-out classes"))
    new_m, parent_m = compare_with_parent(folder, parent_dir, split)
    where = (f"{len(np.unique(split.y_val))} held-out classes never trained on ({len(split.y_val)} images, "
             f"split seed {record['seed']}; each image queries all others)")
    card = read_card(folder)
    card.metrics = _metrics_rows(new_m, "", where, int(record["seed"]))
    card.extra["comparison"] = {"note": "the fine-tuned model and its parent on the same held-out classes, same "
                                        "protocol (retrieval plug-in, layout 'folders')",
                                "split": record, "new": _record(new_m), "parent": {"id": parent_card.id,
                                                                                  **_record(parent_m)}}
    ckpt_path = folder / CHECKPOINT_FILE
    card.sidecars = [*[a for a in card.sidecars if a.role != CHECKPOINT_ROLE],
                     Artifact(CHECKPOINT_ROLE, CHECKPOINT_FILE, sha256_file(ckpt_path), ckpt_path.stat().st_size)]
    write_card(folder, card)
    card = read_card(folder)
    on_event(ProgressEvent("metric", step=info["steps"], total=info["steps"],
                           values={"map": new_m.map, "recall_at_1": new_m.recall["1"],
                                   "parent_map": parent_m.map, "parent_recall_at_1": parent_m.recall["1"]}))
    on_event(ProgressEvent("artifact", path=str(folder), message=f"model {card.id} exported to {folder}"))
    values = {"map": new_m.map, "recall_at_1": new_m.recall["1"], "cmc_rank5": new_m.cmc["5"],
              "parent_map": parent_m.map, "parent_recall_at_1": parent_m.recall["1"],
              "parent_cmc_rank5": parent_m.cmc["5"], "latency_ms": float(card.latency.get("ms", 0.0)),
              "params": float(card.params), "bytes": float(card.bytes), "train_seconds": info["training_seconds"]}
    on_event(ProgressEvent("finished", path=str(folder), values=values,
                           message=f"{card.id}: mAP {new_m.map:.3f} vs parent {parent_m.map:.3f}, Recall@1 "
                                   f"{new_m.recall['1']:.3f} vs {parent_m.recall['1']:.3f} on held-out classes"))
    return "finished"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parent", required=True, help="installed retrieval model id or model folder")
    ap.add_argument("--data", required=True, help="folder with one sub-folder per class / identity")
    ap.add_argument("--out", required=True, help="run folder (the model goes to OUT/model)")
    ap.add_argument("--heldout-fraction", type=float, default=0.2, help="fraction of the classes held out")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--split-seed", type=int, default=1, help="seed of the class split")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--backbone-lr", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--id", default="retrieval-dcal-finetuned")
    args = ap.parse_args(argv)
    params: dict[str, Any] = {
        "parent": args.parent, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
        "threads": args.threads, "log_every": max(1, args.steps // 20),
        "data": {"entry": "plugins.retrieval.wizard_data:folder_dataset", "seed": args.split_seed,
                 "params": {"path": str(Path(args.data).resolve()), "val_fraction": args.heldout_fraction}},
        "export": {"id": args.id, "out_dir": str(Path(args.out) / "model")}}
    if args.backbone_lr is not None:
        params["backbone_lr"] = args.backbone_lr

    def show(ev: ProgressEvent) -> None:
        if ev.event in ("finished", "failed", "cancelled") or ev.message:
            print(json.dumps({"event": ev.event, "step": ev.step, "message": ev.message,
                              **{k: round(v, 4) for k, v in ev.values.items()}}), flush=True)

    try:
        status = run(JobSpec("app.train.dcal_finetune:run", params, out_dir=args.out, name=args.id, seed=args.seed),
                     show, CancelToken())
    except VitascopeError as e:
        sys.stderr.write(f"{str(e).splitlines()[0] if str(e) else e.__class__.__name__}\n")
        return 2
    return 0 if status == "finished" else 3


if __name__ == "__main__":
    raise SystemExit(main())
