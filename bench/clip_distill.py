"""TinyCLIP-style compression measured on this machine: train a small teacher CLIP from scratch on the real COCO
train captions (600 photos × 5) plus generated captioned scenes, then three students of the same size and steps —
affinity mimicking + manual weight inheritance, contrastive from scratch, feature distillation from scratch — and
report COCO validation text→image / image→text R@1/5/10 (201 photos, 1000 captions) and ONNX latency.

    OMP_NUM_THREADS=2 python bench/clip_distill.py --teacher-steps 600 --student-steps 300 \
        --out bench/results/clip_distill.json --export /tmp/clip-models
Data from ../shared is read here for training and evaluation only; nothing of it ships."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"

from app.train.clip_distill import embed_all, inherit, train  # noqa: E402
from app.train.clip_model import CLIP, ClipConfig  # noqa: E402
from bench.clip_scenes import make_scenes  # noqa: E402
from bench.results_json import report  # noqa: E402
from plugins.textsearch.evaluate import recall  # noqa: E402
from plugins.textsearch.preprocess import load_rgb, resize_crop, to_tensor  # noqa: E402
from plugins.textsearch.tokenizer import load_tokenizer  # noqa: E402

SIZE, CTX = 64, 24
TEACHER = ClipConfig(embed_dim=256, image_size=SIZE, patch_size=16, vision_width=128, vision_layers=4,
                     vision_heads=4, vision_mlp=512, context_length=CTX, text_width=128, text_heads=4, text_layers=4,
                     text_mlp=512)
STUDENT = ClipConfig(embed_dim=256, image_size=SIZE, patch_size=16, vision_width=64, vision_layers=4,
                     vision_heads=2, vision_mlp=256, context_length=CTX, text_width=128, text_heads=4, text_layers=2,
                     text_mlp=512)


def coco(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = json.loads((COCO / f"captions_{split}.json").read_text())
    names = list(dict.fromkeys(r["image"] for r in rows))
    index = {n: i for i, n in enumerate(names)}
    imgs = np.stack([to_tensor(resize_crop(load_rgb(COCO / "images" / n), SIZE)) for n in names])
    toks = load_tokenizer()([r["caption"] for r in rows], CTX)
    pairs = np.array([[index[r["image"]], j] for j, r in enumerate(rows)])
    return torch.from_numpy(imgs).half(), torch.from_numpy(toks), torch.from_numpy(pairs)


def scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from PIL import Image

    raw, caps = make_scenes(n, seed=seed, size=SIZE)
    imgs = np.stack([to_tensor(Image.fromarray(a)) for a in raw])
    flat = [c for cs in caps for c in cs]
    pairs = np.array([[i, j] for i, cs in enumerate(caps) for j in range(len(cs))])
    pairs[:, 1] = np.arange(len(flat))
    return torch.from_numpy(imgs).half(), torch.from_numpy(load_tokenizer()(flat, CTX)), torch.from_numpy(pairs)


def evaluate(model: CLIP, data) -> dict:
    imgs, toks, pairs = data
    img, txt = embed_all(model, imgs, toks)
    return recall((txt @ img.T).numpy(), pairs[:, 0].numpy())


def params(m: torch.nn.Module) -> dict:
    v = sum(p.numel() for n, p in m.named_parameters() if n.startswith("visual."))
    t = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("visual."))
    return {"vision": v, "text": t, "text_without_token_embedding": t - m.token_embedding.weight.numel()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher-steps", type=int, default=600)
    ap.add_argument("--student-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--scenes", type=int, default=4000)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds for the teacher (a safety stop)")
    ap.add_argument("--student-time-limit", type=float, default=None, help="seconds per student (a safety stop)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--export", default=None, help="write the teacher and student model folders here")
    ap.add_argument("--student-vision-layers", type=int, default=STUDENT.vision_layers)
    ap.add_argument("--student-text-layers", type=int, default=STUDENT.text_layers)
    ap.add_argument("--teacher", default=None, help="load a trained teacher state dict instead of training one")
    ap.add_argument("--save-teacher", default=None, help="save the trained teacher's state dict here")
    args = ap.parse_args()
    student_cfg = dataclasses.replace(STUDENT, vision_layers=args.student_vision_layers,
                                      text_layers=args.student_text_layers)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    tr_c, val_c = coco("train"), coco("val")
    tr_s = scenes(args.scenes, seed=1)
    val_s = scenes(300, seed=99)
    # one training pool: COCO photos (flippable) then scenes (left/right in their captions: not flipped)
    n_c = tr_c[0].shape[0]
    images = torch.cat([tr_c[0], tr_s[0]])
    tokens = torch.cat([tr_c[1], tr_s[1]])
    pairs = torch.cat([tr_c[2], tr_s[2] + torch.tensor([n_c, tr_c[1].shape[0]])])
    flip = torch.zeros(images.shape[0], dtype=torch.bool)
    flip[:n_c] = True
    print(f"data: {images.shape[0]} images, {tokens.shape[0]} captions ({time.perf_counter() - t0:.0f} s)", flush=True)

    def log(name):
        return lambda step, loss: print(f"{name} step {step} loss {loss:.4f} ({time.perf_counter() - t0:.0f} s)",
                                        flush=True)

    res: dict = {"config": {"teacher": TEACHER.to_dict(), "student": student_cfg.to_dict(), "batch": args.batch,
                            "teacher_steps": args.teacher_steps, "student_steps": args.student_steps,
                            "train_images": int(images.shape[0]), "train_captions": int(tokens.shape[0]),
                            "coco_train_images": n_c, "scenes": args.scenes}}
    teacher = CLIP(TEACHER)
    if args.teacher:
        teacher.load_state_dict(torch.load(args.teacher, weights_only=True))
        teacher.eval()
        res["teacher_train"] = {"loaded": args.teacher}
    else:
        res["teacher_train"] = train(teacher, images, tokens, pairs, args.teacher_steps, args.batch, 1e-3, "clip",
                                     flip=flip, log=log("teacher"), time_limit=args.time_limit)
    if args.save_teacher:
        torch.save(teacher.state_dict(), args.save_teacher)
    res["teacher"] = {"coco_val": evaluate(teacher, val_c), "scenes_val": evaluate(teacher, val_s),
                      "params": params(teacher)}
    print("teacher", res["teacher"], flush=True)
    t_img, t_txt = embed_all(teacher, images, tokens)
    students = {}
    for name, mode in (("affinity_inherit", "affinity"), ("scratch_clip", "clip"), ("feature_kd", "feature")):
        torch.manual_seed(1)
        s = inherit(teacher, student_cfg) if name == "affinity_inherit" else CLIP(student_cfg)
        run = train(s, images, tokens, pairs, args.student_steps, args.batch, 1e-3 if mode != "affinity" else 5e-4,
                    mode, teacher_img=t_img, teacher_txt=t_txt, seed=1, flip=flip, log=log(name),
                    time_limit=args.student_time_limit)
        res[name] = {"train": run, "coco_val": evaluate(s, val_c), "scenes_val": evaluate(s, val_s),
                     "params": params(s)}
        students[name] = s
        print(name, res[name], flush=True)
    if args.export:
        from app.train.clip_convert import write_folder

        out = Path(args.export)
        for name, m in (("teacher", teacher), *students.items()):
            mid = f"textsearch-{name.replace('_', '-')}"
            card = write_folder(m, out / mid, mid, {"trained": "bench/clip_distill.py", "data": "COCO train 600 "
                                                    "photos x 5 captions + generated scenes"},
                                license="MIT", latency_runs=30)
            res[name if name != "teacher" else "teacher"]["onnx_latency"] = card["latency"]
            res[name]["onnx_bytes"] = {a["role"]: a["bytes"] for a in card["artifacts"]}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    report(res, args.out)


if __name__ == "__main__":
    main()
