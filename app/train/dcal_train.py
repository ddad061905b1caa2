"""Train the DCAL embedder (or its SA-only twin) on identity-labelled images with P×K batches, and export it to
ONNX (image → L2-normalised embedding). Run as a job (`kind = "app.train.dcal_train:train_job"`) or as
`python -m app.train.dcal_train --recipe RECIPE [--out DIR] [--twin] [--steps N]`."""

from __future__ import annotations

import argparse
import json
import math
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.core.entries import resolve_entry
from app.core.errors import BadInput, Cancelled
from app.core.jobs import CancelToken, JobSpec, ProgressEvent

from .dcal import DcalConfig, DcalViT, Embedder, dcal_loss

MEAN, STD = 0.5, 0.5


def load_data(data: dict[str, Any], img_size: int, base: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, s, s, 3) uint8, labels 0..C-1, real flag): synthetic identities from `data.synthetic` and,
    optionally, labelled photo folders (`data.real_root` + `data.real_classes`, one folder per class)."""
    xs, ys, real = [], [], []
    offset = 0
    syn = data.get("synthetic")
    if syn:
        cache = Path(syn["cache"]) if syn.get("cache") else None
        if cache is not None and cache.is_file():
            with np.load(cache) as z:
                x, y = z["x"], z["y"]
        else:
            make = resolve_entry(str(syn.get("entry", "plugins.retrieval.synthetic:make_split")),
                                 "data.synthetic.entry")
            x, y, _ = make(int(syn["n_ids"]), int(syn["views"]), int(syn["seed"]), img_size)
            if cache is not None:
                np.savez(cache, x=x, y=y)
        xs.append(x)
        ys.append(y)
        real.append(np.zeros(len(y), bool))
        offset = int(y.max()) + 1
    root = data.get("real_root")
    if root:
        import cv2

        from app.core.collection import iter_image_files
        from app.core.io.images import read_image

        root_path = (base / root).resolve()
        classes = list(data.get("real_classes", []))
        if not classes or not root_path.is_dir():
            raise BadInput(f"{root_path}: real photo folder missing or no real_classes listed")
        imgs, labs = [], []
        for ci, c in enumerate(classes):
            for f in iter_image_files(root_path / c):
                imgs.append(cv2.resize(read_image(f), (img_size, img_size), interpolation=cv2.INTER_AREA))
                labs.append(offset + ci)
        xs.append(np.stack(imgs))
        ys.append(np.asarray(labs))
        real.append(np.ones(len(labs), bool))
    if not xs:
        raise BadInput("recipe data: neither synthetic nor real data given")
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64), np.concatenate(real)


def augment(x: torch.Tensor, real: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random resized crop (scale 0.65-1), flips for photos only (a flipped synthetic identity would be another
    identity), brightness/contrast jitter and random erasing; x in [0, 1], (B, 3, H, W)."""
    b = x.shape[0]
    s = torch.empty(b).uniform_(0.8, 1.0, generator=g)
    ar = torch.exp(torch.empty(b).uniform_(-0.15, 0.15, generator=g))
    sx, sy = s * ar.sqrt(), s / ar.sqrt()
    tx = (1 - sx) * (torch.rand(b, generator=g) * 2 - 1)
    ty = (1 - sy) * (torch.rand(b, generator=g) * 2 - 1)
    flip = torch.where(real & (torch.rand(b, generator=g) < 0.5), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    bright = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=g)
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=g)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean) * bright
    h, w = x.shape[-2:]
    for i in range(b):  # random erasing, p = 0.5
        if float(torch.rand(1, generator=g)) < 0.5:
            eh, ew = (int(h * float(torch.empty(1).uniform_(0.2, 0.45, generator=g))) for _ in range(2))
            y0 = int(torch.randint(0, h - eh + 1, (1,), generator=g))
            x0 = int(torch.randint(0, w - ew + 1, (1,), generator=g))
            x[i, :, y0:y0 + eh, x0:x0 + ew] = torch.rand(3, 1, 1, generator=g)
    return x.clamp(0, 1)


def pk_batch(by_id: list[np.ndarray], p: int, k: int, rng: np.random.Generator,
             pools: tuple[np.ndarray, np.ndarray] | None = None, share: float = 0.0) -> np.ndarray:
    """P identities × K images each. With `pools` (synthetic ids, real ids) and `share` > 0, round(share·P) of the
    identities come from the real pool, so a few real classes are not drowned by many synthetic ones."""
    n_real = min(len(pools[1]), int(round(share * p))) if pools is not None else 0
    if pools is not None and n_real > 0 and len(pools[0]) >= p - n_real:
        ids = np.concatenate([rng.choice(pools[1], size=n_real, replace=False),
                              rng.choice(pools[0], size=p - n_real, replace=False)])
    else:
        ids = rng.choice(len(by_id), size=p, replace=False)
    return np.concatenate([rng.choice(by_id[i], size=k, replace=len(by_id[i]) < k) for i in ids])


def train(params: dict[str, Any], seed: int, base: Path, on_event=None, cancel: CancelToken | None = None,
          overrides: dict[str, Any] | None = None) -> tuple[DcalViT, dict[str, Any]]:
    """Train per `params` (the recipe's [params]); returns the model and a provenance record."""
    params = {**params, **(overrides or {})}
    torch.manual_seed(seed)
    torch.set_num_threads(int(params.get("threads", 2)))
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    arch = dict(params.get("arch", {}))
    if params.get("twin"):
        arch.update(glca=False, pwca=False)
    t_data = time.perf_counter()
    x, y, real = load_data(params["data"], int(arch.get("img_size", 64)), base)
    data_seconds = time.perf_counter() - t_data
    cfg = DcalConfig(**{**arch, "num_ids": int(y.max()) + 1})
    model = DcalViT(cfg)
    by_id = [np.flatnonzero(y == i) for i in range(cfg.num_ids)]
    id_real = np.array([bool(real[ix[0]]) for ix in by_id])
    pools = (np.flatnonzero(~id_real), np.flatnonzero(id_real))
    share = float(params.get("real_share", 0.0))
    steps, p, k = int(params["steps"]), int(params.get("p", 16)), int(params.get("k", 4))
    lr, warmup = float(params.get("lr", 1e-3)), int(params.get("warmup_steps", 100))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=float(params.get("weight_decay", 0.05)))
    xt, yt, rt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(real)
    log_every = int(params.get("log_every", 50))
    t0 = time.perf_counter()
    history = []
    model.train()
    for step in range(1, steps + 1):
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        f = min(1.0, step / max(1, warmup))
        cur = lr * f * (0.5 * (1 + math.cos(math.pi * min(1.0, step / steps))) * 0.98 + 0.02)
        for grp in opt.param_groups:
            grp["lr"] = cur
        idx = torch.from_numpy(pk_batch(by_id, p, k, rng, pools, share))
        xb = augment(xt[idx].permute(0, 3, 1, 2).float() / 255.0, rt[idx], g)
        xb = (xb - MEAN) / STD
        partner = torch.randperm(xb.shape[0], generator=g) if cfg.pwca else None
        out = model.forward_train(xb, partner)
        loss, parts = dcal_loss(model, out, yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            rec = {"step": step, "loss": float(loss.detach()), "lr": cur, **parts,
                   "seconds": time.perf_counter() - t0}
            history.append(rec)
            if on_event is not None:
                on_event(ProgressEvent("progress", step=step, total=steps,
                                       values={k2: v for k2, v in rec.items() if k2 != "step"}))
    seconds = time.perf_counter() - t0
    info = {"seed": seed, "steps": steps, "p": p, "k": k, "lr": lr, "training_seconds": round(seconds, 1),
            "data_seconds": round(data_seconds, 1), "n_train_images": int(len(y)), "n_train_ids": cfg.num_ids,
            "n_real_images": int(real.sum()), "real_share": share, "torch": str(torch.__version__),
            "threads": torch.get_num_threads(), "history": history[-5:], "arch": cfg.to_dict()}
    return model.eval(), info


def strip_heads(model: DcalViT) -> DcalViT:
    """Drop the ID classifiers (training only) so the exported parameter count is the embedder's."""
    model.neck.classifier = torch.nn.Identity()
    if model.cfg.glca:
        model.glca_neck.classifier = torch.nn.Identity()
    return model


def export(model: DcalViT, out_dir: Path, card_fields: dict[str, Any]):
    """ONNX image → embedding with ORT parity, golden and latency; returns the card."""
    from .export import export_onnx

    strip_heads(model).eval()
    s = model.cfg.img_size
    example = torch.rand(2, 3, s, s) * 2 - 1
    fields = {"task": "retrieval.embed",
              "preprocess": {"size": s, "mean": [MEAN] * 3, "std": [STD] * 3, "crop": "resize",
                             "channels": "RGB", "scale": "x/255"},
              "arch": {"family": "DcalViT", **model.cfg.to_dict(), "embed_dim": model.cfg.embed_dim},
              **card_fields}
    return export_onnx(Embedder(model), example, out_dir, fields, output_name="embedding", dynamic_hw=False)


def train_job(job: JobSpec, on_event, cancel: CancelToken) -> str:
    """Job kind: train per job.params, export to job.out_dir (or params.export.out_dir)."""
    base = Path(job.params.get("base", "."))
    model, info = train(job.params, job.seed, base, on_event, cancel)
    out = Path(job.out_dir or job.params.get("export", {}).get("out_dir", "dcal-model"))
    card = export(model, out, {"id": job.params.get("export", {}).get("id", job.name or "retrieval-dcal-vit"),
                               "provenance": _provenance(info, job.params)})
    on_event(ProgressEvent("artifact", path=str(out), message=f"model {card.id} exported to {out}"))
    on_event(ProgressEvent("finished", path=str(out), values={"train_seconds": info["training_seconds"]}))
    return "finished"


def _provenance(info: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    data = params.get("data", {})
    syn = data.get("synthetic", {})
    return {"recipe": "recipe.toml", "model": "DcalViT" + (" (SA-only twin)" if params.get("twin") else ""),
            "seed": info["seed"], "data": syn.get("entry", "plugins.retrieval.synthetic:make_split"),
            "data_seed": syn.get("seed", 0), "steps": info["steps"], "batch_size": info["p"] * info["k"],
            "lr": info["lr"], "loss": "ID cross-entropy (BNNeck, label smoothing 0.1) + batch-hard triplet "
                                     "(margin 0.3), uncertainty-weighted over SA/GLCA/PWCA",
            "training_seconds": info["training_seconds"], "torch": info["torch"], "threads": info["threads"],
            "n_train_images": info["n_train_images"], "n_train_ids": info["n_train_ids"],
            "n_real_images": info["n_real_images"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "note": "trained on a shared 2-core CPU; training_seconds includes contention from other jobs"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--twin", action="store_true", help="the SA-only twin (no GLCA, no PWCA)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--id", default=None)
    args = ap.parse_args(argv)
    recipe_path = Path(args.recipe).resolve()
    recipe = tomllib.loads(recipe_path.read_text(encoding="utf-8"))
    over: dict[str, Any] = {"twin": args.twin}
    if args.steps:
        over["steps"] = args.steps
    if args.threads:
        over["threads"] = args.threads

    def show(ev: ProgressEvent) -> None:
        print(json.dumps({"step": ev.step, **{k: round(v, 4) for k, v in ev.values.items()}}), flush=True)

    model, info = train(recipe["params"], int(recipe.get("seed", 0)), recipe_path.parent, show, overrides=over)
    out = Path(args.out)
    torch.save({"state": model.state_dict(), "cfg": model.cfg.to_dict(), "info": info}, str(out) + ".pt")
    params = {**recipe["params"], **over}
    card = export(model, out, {"id": args.id or (recipe.get("name", "retrieval-dcal-vit")
                                                 + ("-twin" if args.twin else "")),
                               "provenance": _provenance(info, params)})
    print(json.dumps({"out": str(out), "params": card.params, "seconds": info["training_seconds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
