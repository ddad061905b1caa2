"""Ship the text-search model: copy a student exported by bench/clip_distill.py into
plugins/textsearch/models/<id> and write its card with what was measured — COCO validation recall of the student and
its teacher, the generated-scenes validation, zero-shot accuracy on the real imagen150 photos (`vitascope clip
classify --json`), training time, data licences and attribution.

    .venv/bin/python bench/clip_ship.py --model /tmp/clip3/textsearch-affinity-inherit \
        --distill bench/results/clip_distill.json \
        --zeroshot bench/results/clip_zeroshot_imagen150.json --zeroshot-key textsearch-affinity-inherit-v2t1 \
        --teacher-run bench/results/clip_distill_4L.json
(the shipped student's run loaded the teacher trained by the clip_distill_4L run with --teacher)"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.card import read_card, write_card  # noqa: E402
from app.core.zoo import open_folder  # noqa: E402

MODEL_ID = "textsearch-tinyclip"
DEST = ROOT / "plugins" / "textsearch" / "models" / MODEL_ID
COCO_SET = "COCO 2014 captions, validation split of this project (201 photos, 1,000 captions; never trained on)"
SCENES_SET = "bench/clip_scenes.make_scenes seed=99 (300 generated scenes, 3 captions each)"
IMAGEN_SET = "imagen150: 750 real ImageNet photos, 150 labels, 80 prompt templates (never trained on)"


def _rows(prefix: str, rec: dict, dataset: str, n: int) -> list[dict]:
    return [{"name": f"{prefix}_{way}_r{k}", "value": rec[way][k] / 100.0, "dataset": dataset, "seed": 0, "n": n}
            for way in ("t2i", "i2t") for k in ("1", "5", "10")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="student folder exported by bench/clip_distill.py")
    ap.add_argument("--student", default="affinity_inherit", help="its key in the distill JSON")
    ap.add_argument("--distill", required=True, help="JSON written by bench/clip_distill.py")
    ap.add_argument("--zeroshot", required=True, help="bench/results/clip_zeroshot_imagen150.json (top1, top5, n "
                                                     "per model, from `vitascope clip classify imagen150 --json`)")
    ap.add_argument("--zeroshot-key", default="textsearch-affinity-inherit")
    ap.add_argument("--teacher-run", default=None, help="the distill JSON of the run that trained the teacher, when "
                                                         "--distill loaded it (--teacher)")
    args = ap.parse_args()
    dist = json.loads(Path(args.distill).read_text())
    zs = json.loads(Path(args.zeroshot).read_text())[args.zeroshot_key]
    st, te, cfg = dist[args.student], dist["teacher"], dist["config"]
    teacher_train, teacher_steps = dist["teacher_train"], cfg["teacher_steps"]
    if "loaded" in teacher_train and args.teacher_run:
        run = json.loads(Path(args.teacher_run).read_text())
        teacher_train, teacher_steps = run["teacher_train"], run["config"]["teacher_steps"]
    if DEST.exists():
        shutil.rmtree(DEST)
    shutil.copytree(args.model, DEST)
    card = read_card(DEST)
    card.id = MODEL_ID
    card.version = "0.1.0"
    card.license = "MIT (weights); trained on COCO captions CC BY 4.0 and Flickr photos under their own licences"
    tr = st["train"]
    card.description = (
        f"TinyCLIP-style student (vision {cfg['student']['vision_width']}w/{cfg['student']['vision_layers']}L, "
        f"text {cfg['student']['text_width']}w/{cfg['student']['text_layers']}L, {cfg['student']['image_size']} px) "
        "distilled by affinity mimicking with manual weight inheritance from a small teacher CLIP trained here "
        f"from scratch on {cfg['coco_train_images']} real COCO photos and {cfg['scenes']} generated scenes. "
        "It knows colours, simple shapes, counts and positions of the generated scenes and only a little about "
        f"real photos: COCO text-to-image R@10 {st['coco_val']['t2i']['10']:.1f} % (chance 5 %), zero-shot "
        f"imagen150 top-1 {zs['top1']:.1f} % (chance 0.7 %). Convert an official CLIP/TinyCLIP checkpoint with "
        "`vitascope clip convert` for real search quality.")
    parity = [{**m, "dataset": "2 random images and 4 token rows (probe texts + random ids): torch vs onnxruntime",
               "seed": 0, "n": 4} for m in card.metrics if m["name"].startswith("parity_")]
    card.metrics = parity + (_rows("coco_val", st["coco_val"], COCO_SET, 1000)
                    + _rows("scenes_val", st["scenes_val"], SCENES_SET, 900)
                    + [{"name": "imagen150_zeroshot_top1", "value": zs["top1"] / 100.0, "dataset": IMAGEN_SET,
                        "seed": 0, "n": zs["n"]},
                       {"name": "imagen150_zeroshot_top5", "value": zs["top5"] / 100.0, "dataset": IMAGEN_SET,
                        "seed": 0, "n": zs["n"]}])
    card.provenance = {
        "recipe": "bench/clip_distill.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                      (("teacher_steps", teacher_steps),
                                                       ("student_steps", cfg["student_steps"]),
                                                       ("batch", cfg["batch"]), ("scenes", cfg["scenes"]),
                                                       ("student_vision_layers", cfg["student"]["vision_layers"]),
                                                       ("student_text_layers", cfg["student"]["text_layers"]))),
        "seeds": "torch 0 (teacher), 1 (students); scenes seed 1 (train), 99 (validation)",
        "data": f"COCO train split of this project ({cfg['coco_train_images']} photos x 5 captions) + "
                f"{cfg['scenes']} generated captioned scenes (bench/clip_scenes.py)",
        "data_licences": "COCO captions: CC BY 4.0 (Lin et al., 'Microsoft COCO: Common Objects in Context', "
                         "2014); COCO images: Flickr, each under its own licence. The photos are not shipped.",
        "teacher_training_seconds": teacher_train.get("seconds"), "teacher_steps": teacher_train.get("steps"),
        "student_training_seconds": tr.get("seconds"), "student_steps": tr.get("steps"),
        "machine": "2-core CPU, no GPU", "torch": "2.13.0+cpu",
    }
    card.extra["teacher"] = {"arch": cfg["teacher"], "coco_val": te["coco_val"], "scenes_val": te["scenes_val"],
                             "latency": te.get("onnx_latency", {}), "params": te["params"]}
    card.extra["comparison"] = {
        "note": "same student size, steps and data; one run of bench/clip_distill.py; COCO validation recall %",
        **{name: {"coco_val": dist[name]["coco_val"], "scenes_val_t2i": dist[name]["scenes_val"]["t2i"]}
           for name in ("affinity_inherit", "scratch_clip", "feature_kd") if name in dist}}
    write_card(DEST, card)
    open_folder(DEST)
    print(f"{DEST}: shipped; " + ", ".join(f"{m['name']} {m['value']:.3f}" for m in card.metrics[:3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
